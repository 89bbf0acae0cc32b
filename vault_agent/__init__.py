"""vault-agent: a runtime for AI agents that live in a folder of Markdown.

The public API is re-exported here. Names are resolved on first use so that
`vault-agent --help` does not pay for importing the runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AgentBusy,
    AgentNotFound,
    ConfigError,
    EditConflict,
    InvalidAgentName,
    StorageError,
    VaultAgentError,
)

__version__ = "0.1.0"

_LAZY = {
    "Agent": ".runner",
    "RunResult": ".runner",
    "AgentFolder": ".vault.folder",
    "Vault": ".vault.folder",
    "Note": ".vault.notes",
}

if TYPE_CHECKING:
    from .runner import Agent, RunResult
    from .vault.folder import AgentFolder, Vault
    from .vault.notes import Note


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vault_agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Agent", "RunResult", "AgentBusy", "AgentFolder", "AgentNotFound", "ConfigError", "EditConflict", "InvalidAgentName", "Note",
    "StorageError", "Vault", "VaultAgentError", "__version__",
]
