"""vault-agent: a runtime for AI agents that live in a folder of Markdown."""

from .errors import (
    AgentBusy,
    AgentNotFound,
    ConfigError,
    EditConflict,
    InvalidAgentName,
    StorageError,
    VaultAgentError,
)
from .vault import AgentFolder, Note, Vault

__version__ = "0.1.0"

__all__ = [
    "AgentBusy", "AgentFolder", "AgentNotFound", "ConfigError", "EditConflict", "InvalidAgentName", "Note",
    "StorageError", "Vault", "VaultAgentError", "__version__",
]
