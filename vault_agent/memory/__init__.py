"""Memory: the derived index under .vault-agent/ (note catalog, search), recall, and consolidation (dream)."""
