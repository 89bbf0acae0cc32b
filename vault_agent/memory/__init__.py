"""Memory: the derived index under .vault-agent/ (note catalog, search) and recall."""
