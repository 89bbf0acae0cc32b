"""The agent folder on disk: layout, formats, crash-safe storage. Imports nothing above it."""

from .config import AgentConfig, ModelConfig, ModelRef, Persona, ToolsConfig
from .folder import AgentFolder, Vault
from .journal import JournalEntry
from .layout import AgentPaths, resolve_vault_root
from .notes import Note, NoteWrite

__all__ = [
    "AgentConfig", "AgentFolder", "AgentPaths", "JournalEntry", "ModelConfig", "ModelRef", "Note",
    "NoteWrite", "Persona", "ToolsConfig", "Vault", "resolve_vault_root",
]
