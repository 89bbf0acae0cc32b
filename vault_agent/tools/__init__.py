"""Tools: registry, schemas, built-in tools, the runtime every call goes through."""
