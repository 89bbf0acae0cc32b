"""The derived note catalog in .vault-agent/index.db: parsed note properties, kept in step with the files.

The files are the truth; this is a cache that makes listing 10k notes cost a
stat per file instead of a parse per file. It syncs incrementally (a file is
re-read only when its inode, size or mtime changed), survives concurrent runs
(WAL, BEGIN IMMEDIATE, busy timeout), and is rebuilt from scratch when it is
missing, from another schema version, or damaged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Finding
from ..vault.layout import AgentPaths
from ..vault.notes import MAX_NOTE_BYTES, Note, read_note

SCHEMA_VERSION = 5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    path TEXT PRIMARY KEY,      -- relative to the agent folder, POSIX separators
    type TEXT,
    stem TEXT,
    name TEXT,
    name_key TEXT,              -- NFC + casefold of name: "same type and name" means the same note
    description TEXT,
    pinned INTEGER NOT NULL DEFAULT 0,
    updated TEXT,               -- ISO date: updated, else created
    expires TEXT,               -- ISO date
    supersedes TEXT,            -- JSON list of stems/names this note replaces
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT,                  -- sha256 of the bytes; NULL when unreadable
    summary TEXT,               -- Note.summary() as JSON; NULL when unreadable
    findings TEXT NOT NULL      -- JSON list of [level, message, fix]
);
CREATE INDEX IF NOT EXISTS notes_by_rank ON notes(pinned DESC, updated DESC, path);
CREATE INDEX IF NOT EXISTS notes_by_type_rank ON notes(type, pinned DESC, updated DESC, path);
CREATE INDEX IF NOT EXISTS notes_by_name ON notes(type, name_key);
"""


@dataclass(frozen=True)
class IndexRow:
    """What INDEX.md lists of a note."""

    stem: str
    name: str
    type: str
    description: str


def name_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


@dataclass
class SyncStats:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0


def connect(db_path: Path) -> sqlite3.Connection:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    # One connection may serve several threads of a long-lived Agent, which serializes their use.
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Catalog:
    """Parsed note summaries of one agent, synced from memory/."""

    def __init__(self, paths: AgentPaths) -> None:
        self.paths = paths
        self.db_path = paths.state / "index.db"
        self.conn = self._open()
        self._known: dict[str, tuple[int, int, int]] | None = None
        self._data_version = -1

    def _open(self) -> sqlite3.Connection:
        try:
            conn = connect(self.db_path)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                conn.close()
                self._discard()
                conn = connect(self.db_path)
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("SELECT count(*) FROM notes").fetchone()
            return conn
        except sqlite3.DatabaseError:
            # Derived state: a damaged index is thrown away and rebuilt from the files.
            self._discard()
            conn = connect(self.db_path)
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return conn

    def _discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{self.db_path}{suffix}")
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sync(self, only: set[str] | None = None) -> SyncStats:
        """Bring the catalog in step with memory/: re-read only files whose stat changed.

        `only`: the paths a ChangeTracker saw change; then nothing else is even
        stat'ed. Without it every note is stat'ed (a full sync).
        """
        stats = SyncStats()
        known = self._known_state()
        if only is None:
            on_disk = _stat_notes(self.paths.memory, "memory/")
        else:
            on_disk = {rel: st for rel, st in known.items() if rel not in only}
            for rel in only:
                try:
                    st = os.stat(self.paths.root / rel)
                except OSError:
                    continue
                on_disk[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
        upserts: list[tuple[Any, ...]] = []
        for rel, st in on_disk.items():
            if known.get(rel) == st:
                stats.unchanged += 1
                continue
            note, findings = read_note(self.paths.root / rel, max_bytes=MAX_NOTE_BYTES)
            summary = {**note.summary(), "path": rel} if note else None
            upserts.append((rel, note.type if note else None, note.stem if note else None,
                            note.name if note else None, name_key(note.name) if note else None,
                            note.description if note else None, int(bool(note and note.pinned)),
                            _iso(note.updated or note.created) if note else None,
                            _iso(note.expires) if note else None,
                            json.dumps(note.supersedes, ensure_ascii=False) if note else "[]",
                            *st, note.hash if note else None,
                            json.dumps(summary, ensure_ascii=False) if summary else None,
                            json.dumps([[f.level, f.message, f.fix] for f in findings], ensure_ascii=False)))
            if rel in known:
                stats.changed += 1
            else:
                stats.added += 1
        removed = [(rel,) for rel in known if rel not in on_disk]
        stats.removed = len(removed)
        if upserts or removed:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany("INSERT OR REPLACE INTO notes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", upserts)
                self.conn.executemany("DELETE FROM notes WHERE path = ?", removed)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        self._known = on_disk
        self._data_version = self._version()
        return stats

    def _version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def _known_state(self) -> dict[str, tuple[int, int, int]]:
        # PRAGMA data_version changes only when another connection commits: until
        # then the state this connection last synced is still what the table holds.
        if self._known is not None and self._data_version == self._version():
            return self._known
        return {row[0]: tuple(row[1:]) for row in  # type: ignore[misc]
                self.conn.execute("SELECT path, ino, size, mtime_ns FROM notes")}

    def summaries(self, note_type: str | None = None) -> list[dict[str, Any]]:
        """Note summaries (as `vault-agent notes --json` prints them), in path order."""
        return json.loads(self.summaries_json(note_type))

    def summaries_json(self, note_type: str | None = None) -> str:
        """The same as a JSON array, joined from the stored JSON without decoding it."""
        sql = "SELECT summary FROM notes WHERE summary IS NOT NULL"
        args: tuple[str, ...] = ()
        if note_type:
            sql += " AND type = ?"
            args = (note_type.lower(),)
        return "[" + ", ".join(r[0] for r in self.conn.execute(sql + " ORDER BY path", args)) + "]"

    def candidates(self, *, today: str, limit: int) -> list[dict[str, Any]]:
        """Live notes (not expired, not superseded), pinned first, then most recently updated."""
        superseded = self.superseded()
        rows = self.conn.execute(
            "SELECT path, stem, name, type, pinned, updated, summary FROM notes WHERE summary IS NOT NULL "
            "AND (expires IS NULL OR expires >= ?) ORDER BY pinned DESC, updated DESC, path LIMIT ?",
            (today, limit + len(superseded)))
        out = []
        for path, stem, name, note_type, pinned, updated, summary in rows:
            if stem in superseded or (name or "").casefold() in superseded:
                continue
            out.append({"path": path, "stem": stem, "name": name, "type": note_type, "pinned": bool(pinned),
                        "updated": updated, **{k: v for k, v in json.loads(summary).items() if k == "description"}})
        return out[:limit]

    def superseded(self) -> set[str]:
        """Stems and (casefolded) names that some note says it supersedes."""
        out: set[str] = set()
        for (raw,) in self.conn.execute("SELECT supersedes FROM notes WHERE supersedes != '[]'"):
            for ref in json.loads(raw):
                out.add(ref)
                out.add(ref.casefold())
        return out

    def find_note(self, note_type: str, name: str) -> Note | None:
        """The note with this type and name, read from its file (None when there is none)."""
        row = self.conn.execute("SELECT path, hash FROM notes WHERE type = ? AND name_key = ? ORDER BY path LIMIT 1",
                                (note_type.lower(), name_key(name))).fetchone()
        if row is None:
            return None
        note, _ = read_note(self.paths.root / row[0])
        if note is not None:
            # The hash as of the last sync (the run's start): if the file differs now, a
            # person edited it during the run, and the writer must not overwrite that edit.
            note.hash = row[1]
        return note

    def index_entries(self) -> list[IndexRow]:
        rows = self.conn.execute("SELECT stem, name, type, description FROM notes WHERE summary IS NOT NULL")
        return [IndexRow(stem, name, note_type, description or "") for stem, name, note_type, description in rows]

    def count_by_type(self) -> dict[str, int]:
        # Unreadable files have type NULL: grouping on the indexed column alone needs no table scan.
        return {t: n for t, n in self.conn.execute("SELECT type, count(*) FROM notes GROUP BY type") if t}

    def index_lines(self, note_type: str, limit: int) -> list[tuple[str, str, str, bool]]:
        """(stem, name, description, pinned) of one type's notes, pinned and most recent first."""
        rows = self.conn.execute(
            "SELECT stem, name, summary, pinned FROM notes WHERE summary IS NOT NULL AND type = ? "
            "ORDER BY pinned DESC, updated DESC, path LIMIT ?", (note_type, limit))
        return [(stem, name, json.loads(summary).get("description", ""), bool(pinned))
                for stem, name, summary, pinned in rows]

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        for rel, raw in self.conn.execute("SELECT path, findings FROM notes WHERE findings != '[]' ORDER BY path"):
            for level, message, fix in json.loads(raw):
                out.append(Finding(level, self.paths.root / rel, message, fix))
        return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _stat_notes(folder: Path, prefix: str) -> dict[str, tuple[int, int, int]]:
    """rel path -> (inode, size, mtime_ns) for memory/**/*.md, as notes.iter_note_paths selects them.

    Plain strings and DirEntry.stat: at 10k notes, Path objects alone would
    cost more than the whole warm sync.
    """
    out: dict[str, tuple[int, int, int]] = {}
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return out
    with entries:
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    out.update(_stat_notes(Path(entry.path), f"{prefix}{name}/"))
                elif name.endswith(".md") and not (name == "INDEX.md" and prefix == "memory/"):
                    st = entry.stat()
                    out[prefix + name] = (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                continue
    return out


class CatalogDirectory:
    """A NoteDirectory backed by the catalog: finding a note or listing INDEX reads no other note."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def find(self, note_type: str, name: str) -> Note | None:
        return self.catalog.find_note(note_type, name)

    def entries(self) -> list[IndexRow]:
        return self.catalog.index_entries()

    def saved(self, note: Note) -> None:
        self.catalog.sync(only={note.path.relative_to(self.catalog.paths.root).as_posix()})
