"""Context: canonical load order, token budgets, prompt rendering."""
