"""The vault and one agent folder in it: the single entry point to the files.

Everything above the vault package (runner, tools, memory, ops) reads and
writes an agent's files through AgentFolder, which holds the locks and keeps
every write atomic.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import AgentNotFound, Finding
from . import index_md, journal, placeholders, runlog
from .atomic import append_line, remove_stale_temps
from .chain import ChainWriter, link
from .config import AgentConfig, load_config
from .layout import AgentPaths, check_agent_name, is_agent_folder, misnamed_agent, resolve_vault_root
from .lock import mark_logged, note_spent, run_lock, write_lock
from .notes import Note, NoteDirectory, NoteStore, NoteWrite, ScanDirectory


@dataclass(frozen=True)
class RunLockHolder:
    """What the holder of an agent's run lock keeps in the lock's owner file as it goes, so that the next taker
    can log it if it is killed (lock.run_lock)."""

    lock: Path

    def spent(self, spent: dict[str, Any]) -> None:
        """What it has spent so far, and the model call it has in flight: a killed run's record says it, and the
        cost caps count it."""
        note_spent(self.lock, spent)

    def logged(self) -> None:
        """Its record is written: killed before releasing the lock, it is not logged again."""
        mark_logged(self.lock)


class AgentFolder:
    """One agent: its paths, config, notes, journal and log."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.paths = AgentPaths(Path(root).expanduser().resolve())
        if not self.paths.root.is_dir():
            raise AgentNotFound("no agent folder here", path=self.paths.root,
                                fix=f"create it with: vault-agent init {self.paths.root.name}")
        self.notes = NoteStore(self.paths)
        self._chain = ChainWriter(self.paths.log)
        # The leak scan for everything this folder writes (notes, journal, log); the runner sets it.
        # Injected, so the vault package needs nothing from security/ (one direction of dependency).
        self.redact: Callable[[str], str] | None = None

    def __repr__(self) -> str:
        return f"AgentFolder({str(self.paths.root)!r})"

    @property
    def name(self) -> str:
        return self.paths.name

    @property
    def root(self) -> Path:
        return self.paths.root

    def load_config(self) -> AgentConfig:
        return load_config(self.paths)

    # --- locks -----------------------------------------------------------
    @contextmanager
    def run_lock(self, *, timeout: float, run_id: str, on_killed: Callable[[dict[str, Any]], None],
                 started: _dt.datetime | None = None, trigger: str = "",
                 work_item: str = "") -> Iterator[RunLockHolder]:
        """Hold the run lock for `run_id`. Its owner file says who holds it (run_id, since: when the run started,
        pid, trigger, the work item as one line, leak-scanned), so that `on_killed` can log a run found killed
        holding it (lock.run_lock); required, so that no taker replaces such an owner file unseen.

        Yields the holder's voice in its owner file (RunLockHolder): what it has spent so far, and that its record
        is written.
        """
        owner = {"run_id": run_id, "since": runlog.ts_string(started or runlog.now_ts()), "trigger": trigger,
                 "work_item": journal.one_line(work_item, runlog.WORK_ITEM_CHARS)}
        if self.redact is not None:
            owner = _scrubbed(owner, self.redact)
        with run_lock(self.paths.run_lock, timeout=timeout, owner=owner, on_killed=on_killed) as holder_killed:
            placeholders.clear_leftovers(self.root)  # of a killed run: no command of this agent runs now
            if holder_killed:  # only then can a write have been cut off: no walk through memory/ on every run
                remove_stale_temps([self.paths.memory, self.paths.journal, self.paths.state])
            yield RunLockHolder(self.paths.run_lock)

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        with write_lock(self.paths.write_lock):
            yield

    # --- notes -----------------------------------------------------------
    def scan_notes(self) -> list[Note]:
        return self.notes.scan()

    def save_note(self, meta: dict[str, Any], body: str, *, version_tag: str,
                  notes: list[Note] | None = None, directory: NoteDirectory | None = None) -> NoteWrite:
        """Create the note, or update the one with the same type and name; INDEX follows.

        `directory` finds the existing note and lists INDEX entries without
        reading every note (the derived catalog does this); without it, `notes`
        or a scan of memory/ serves.
        """
        if self.redact is not None:
            meta, body = _scrubbed(meta, self.redact), self.redact(body)
        with self.write_lock():
            if directory is None:
                directory = ScanDirectory(self.notes, notes if notes is not None else self.notes.scan())
            existing = directory.find(str(meta.get("type", "")), str(meta.get("name", "")))
            if existing is None:
                result = self.notes.create(meta, body)
            else:
                result = self.notes.update(existing, meta, body, version_tag=version_tag)
            if result.action in ("created", "updated"):
                directory.saved(result.note)
            if result.action != "unchanged":
                index_md.write_index(self.paths.index_md, directory.entries(), title=f"{self.name} — memory index",
                                     inside=self.root)
        return result

    def rewrite_index(self, notes: list[Note] | None = None) -> bool:
        with self.write_lock():
            return index_md.write_index(self.paths.index_md, notes if notes is not None else self.notes.scan(),
                                        title=f"{self.name} — memory index", inside=self.root)

    # --- journal and log -------------------------------------------------
    def append_journal(self, entry: journal.JournalEntry) -> Path:
        path = self.paths.journal_day(entry.ts.date())
        if self.redact is not None:
            entry = dataclasses.replace(entry, **_scrubbed(
                {k: v for k, v in vars(entry).items() if isinstance(v, (str, list))}, self.redact))
        with self.write_lock():
            journal.append_entry(path, entry, self.name)
        return path

    def append_log(self, records: list[dict[str, Any]], day: _dt.date | None = None) -> Path:
        """Append a run record and its tool-call children as whole lines, under the write lock.

        Each line carries prev_hash and seq, chaining it to the line before
        (vault/chain.py). The tip is cached per instance; only when another
        writer appended since is the newest day file's tail read back.
        """
        requested = self.paths.log_day(day or runlog.now_ts().date())
        if self.redact is not None:
            records = [_scrubbed(r, self.redact) for r in records]
        with self.write_lock():
            path, tip = self._chain.prepare(requested)
            for line in link(records, tip, runlog.encode):
                append_line(path, line)
            self._chain.written(path, tip)
        return path

    def read_log(self, since: _dt.date | None = None) -> runlog.LogRead:
        return runlog.read_since(self.paths.log, since)


def _scrubbed(value: Any, redact: Callable[[str], str]) -> Any:
    """`value` with every text inside it (dict values, list items) passed through `redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, redact) for v in value]
    return value


@dataclass
class Vault:
    """A folder of agent folders."""

    root: Path

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_vault_root(root)

    def agent_names(self) -> list[str]:
        """The agents: folders holding model.md or persona/, named by the rules (findings() names the others)."""
        return self.agents_and_misnamed()[0]

    def misnamed(self) -> list[Finding]:
        """A warning for each agent folder whose name breaks the rules: one bad folder must not stop commands
        about every agent."""
        return self.agents_and_misnamed()[1]

    def agents_and_misnamed(self) -> tuple[list[str], list[Finding]]:
        """agent_names() and misnamed() from one listing of the vault folder (`watch` asks every 2 s)."""
        folders = self._agent_folders()
        warnings = {p: misnamed_agent(p) for p in folders}
        return [p.name for p in folders if warnings[p] is None], [f for f in warnings.values() if f is not None]

    def _agent_folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if not p.name.startswith(".") and is_agent_folder(p))

    def agent_path(self, name: str) -> Path:
        return self.root / check_agent_name(name)

    def agent(self, name: str) -> AgentFolder:
        path = self.agent_path(name)
        if not is_agent_folder(path):
            known = ", ".join(self.agent_names()) or "none yet"
            raise AgentNotFound(f"no agent named {name!r} in the vault (agents: {known})", path=self.root,
                                fix=f"create it with: vault-agent init {name}")
        return AgentFolder(path)

    def findings(self) -> list[Finding]:
        if not self.root.is_dir():
            return [Finding("error", self.root, "vault folder does not exist",
                            "create an agent with: vault-agent init NAME")]
        return self.misnamed()
