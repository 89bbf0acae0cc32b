"""Where things live: vault root resolution, agent name rules, the agent folder's paths.

See spec/layout.md.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import Finding, InvalidAgentName, StorageError

ENV_HOME = "VAULT_AGENT_HOME"
DEFAULT_HOME = "~/vault-agents"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PERSONA_FILES = ("IDENTITY.md", "SOUL.md", "USER.md")
NOTE_TYPES = ("user", "feedback", "project", "decision", "reference")


def resolve_vault_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--vault, then $VAULT_AGENT_HOME, then ~/vault-agents."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    return Path(DEFAULT_HOME).expanduser().resolve()


def check_agent_name(name: str) -> str:
    """Agent names are lowercase ASCII letters, digits, '-' and '_', 1-63 chars, starting alphanumeric.

    They appear in crontab lines, launchd labels and URLs, hence the strict set.
    """
    if not _NAME.match(name):
        raise InvalidAgentName(
            f"invalid agent name {name!r}",
            fix="use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )
    return name


def misnamed_agent(path: Path) -> Finding | None:
    """The warning for an agent folder whose name is not an agent name (commands leave such a folder out)."""
    if _NAME.match(path.name):
        return None
    suggested = re.sub(r"[^a-z0-9_-]+", "-", path.name.lower()).strip("-_")[:63]
    rename = f"rename the folder to {suggested}" if _NAME.match(suggested) else "rename the folder"
    return Finding("warning", path, f"{path.name!r} is not a valid agent name, so this agent is left out",
                   f"{rename} (1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit)")


def is_agent_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "model.md").is_file() or (path / "persona").is_dir())


def state_not_a_folder(state: Path) -> StorageError | None:
    """The one-line error when an agent's .vault-agent is a file (or anything but a folder), else None: neither
    its index nor its locks can be made then, and saying "cannot create the lock file" would point elsewhere."""
    if state.exists() and not state.is_dir():
        return StorageError("not a folder", path=state,
                            fix="move this file aside: vault-agent makes the folder anew and keeps its index and "
                                "locks in it")
    return None


@dataclass(frozen=True)
class AgentPaths:
    """The fixed paths inside one agent folder."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def persona(self) -> Path:
        return self.root / "persona"

    @property
    def model_md(self) -> Path:
        return self.root / "model.md"

    @property
    def tools_md(self) -> Path:
        return self.root / "tools.md"

    @property
    def memory(self) -> Path:
        return self.root / "memory"

    @property
    def index_md(self) -> Path:
        return self.memory / "INDEX.md"

    @property
    def wiki(self) -> Path:
        return self.root / "wiki"

    @property
    def skills(self) -> Path:
        return self.root / "skills"

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def state(self) -> Path:
        """Derived state: safe to delete, rebuilt from the files."""
        return self.root / ".vault-agent"

    @property
    def run_lock(self) -> Path:
        return self.state / "run.lock"

    @property
    def write_lock(self) -> Path:
        return self.state / "write.lock"

    @property
    def versions(self) -> Path:
        return self.state / "versions"

    @property
    def conflicts(self) -> Path:
        return self.state / "conflicts"

    @property
    def aliases_asked(self) -> Path:
        return self.state / "aliases-asked.json"

    def journal_day(self, day: _dt.date) -> Path:
        return self.journal / f"{day:%Y-%m}" / f"{day:%Y-%m-%d}.md"

    def log_day(self, day: _dt.date) -> Path:
        return self.log / f"{day:%Y-%m}" / f"{day:%Y-%m-%d}.jsonl"
