"""The one exception hierarchy of vault-agent, and the one-line warnings it collects.

Every error a user can cause carries the file it concerns and the fix, so the
CLI can print a single line instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class VaultAgentError(Exception):
    """Base class: a problem vault-agent can explain in one line."""

    def __init__(self, message: str, *, path: Path | str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.fix = fix

    def one_line(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{where}{self.message}{fix}"

    def __str__(self) -> str:
        return self.one_line()


class ConfigError(VaultAgentError):
    """A configuration or format file cannot be used as written."""


class AgentNotFound(VaultAgentError):
    """No agent folder with that name in the vault."""


class InvalidAgentName(VaultAgentError):
    """An agent name breaks the naming rules in spec/layout.md."""


class AgentBusy(VaultAgentError):
    """Another run of the same agent holds the run lock."""


class StorageError(VaultAgentError):
    """A file could not be written safely (disk full, permissions, ...)."""


class IndexDamaged(StorageError):
    """The derived search index file is damaged: building it again from the files repairs it."""


class UnknownSearchType(VaultAgentError):
    """A search was limited to a type that is neither a note type, a kind, nor one the notes use."""


class EditConflict(VaultAgentError):
    """A person changed a file while a run was going to replace it."""


@dataclass(frozen=True)
class Finding:
    """One problem found while reading the vault: a warning or an error, never a crash."""

    level: str  # "error" | "warning" | "info"
    path: Path | None
    message: str
    fix: str | None = None

    def one_line(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        fix = f" — fix: {self.fix}" if self.fix else ""
        return f"{self.level.upper()} {where}{self.message}{fix}"
