"""`python -m vault_agent` runs the CLI."""

from .cli import main

main()
