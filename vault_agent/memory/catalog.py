"""The derived index in .vault-agent/index.db: note properties and search tables, in step with the files.

The files are the truth; this is a cache that makes listing 10k notes cost a
stat per file instead of a parse per file, and searching them cost a few
milliseconds. It covers memory notes, wiki pages, journal entries and skills
(sources.py). It syncs incrementally (a file is re-read only when its inode,
size or mtime changed, and re-indexed only when its content hash changed),
commits in batches so a kill keeps what was done, survives concurrent runs
(WAL, BEGIN IMMEDIATE, busy timeout), and is rebuilt from scratch when it is
missing, from another schema version, or damaged. Layout: spec/index-db.md.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import stat as stat_mod
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial, wraps
from hashlib import blake2b, sha1
from pathlib import Path
from typing import Any, TypeVar

from ..errors import Finding, IndexDamaged, StorageError
from ..vault.atomic import content_hash
from ..vault.layout import AgentPaths, state_not_a_folder
from ..vault.notes import MAX_NOTE_BYTES, Note, Superseded, bad_name, link_key, parse_note, read_note, superseded
from ..vault.reading import Beneath, inode, link_inside, read_inside, utf8_name
from .readahead import read_in_order
from .query import expansions
from .related import TOKENIZE, index_text, table_digest
from .sources import (
    SOURCE_FOLDERS,
    Doc,
    journal_docs,
    kind_in,
    kind_of,
    note_doc,
    page_doc,
)

SCHEMA_VERSION = 12
BUSY_TIMEOUT_MS = 30_000  # how long a write waits for another process's write to finish
# A write finding another process's under way tries again after 1 ms, then waits twice as long each time, up to
# this: what SQLite's own busy wait does, which no other thread can cut short (sqlite3_interrupt does not reach it).
_LOCK_RETRY_MAX_S = 0.1
BATCH_FILES = 500  # files per transaction: a kill loses at most one batch of work
# After re-indexing this many files, FTS5's segments are merged into one: at 100k notes that makes
# every later search ~10% cheaper for ~3% of the build. Smaller indexes search fast enough as they are.
OPTIMIZE_AFTER = 20_000
# The mtime_ns a sync knows a file that could not be read by: no stat matches it, so every sync reads it
# again (making a note readable, with chmod, changes neither its inode, size nor mtime).
UNREAD = -1
# Rows of single-term rankings kept (term_ranking): ~1,000 rankings of ~120 rows, or fewer of the deeper ones a
# search within a read grant asks for when unreadable documents outrank the rest (up to MATCH_BUDGET rows).
_RANKED_ROWS_MAX = 120_000
FTS_COLUMNS = ("name", "description", "tags", "body", "type", "links", "dates", "related")
# The indexed columns hold the text as related.index_text prepares it (runs of Chinese, Japanese, Korean or
# Thai letters as overlapping pairs, "ß" as "ss"); `original` the body as written when that differs, else NULL.
_FTS_TABLE = f"""CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    name, description, tags, body, type, links, dates, related, original UNINDEXED,
    tokenize = "{TOKENIZE}"
)"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,      -- relative to the agent folder, POSIX separators
    kind TEXT NOT NULL,         -- memory | wiki | journal | skill | archive
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT                   -- sha256 of the bytes; NULL when unreadable
);
CREATE TABLE IF NOT EXISTS notes (
    path TEXT PRIMARY KEY,      -- memory notes only
    type TEXT,
    stem TEXT,
    name TEXT,
    name_key TEXT,              -- NFC + casefold of name: "same type and name" means the same note
    description TEXT,
    pinned INTEGER NOT NULL DEFAULT 0,
    updated TEXT,               -- ISO date: updated, else created
    expires TEXT,               -- ISO date
    supersedes TEXT,            -- JSON list of stems/names this note replaces
    superseded_by TEXT,         -- the stem/name that replaced this note, by its own mark ('' names none)
    hash TEXT,                  -- sha256 of the bytes; NULL when unreadable
    summary TEXT,               -- Note.summary() as JSON; NULL when unreadable
    findings TEXT NOT NULL      -- JSON list of [level, message, fix]
);
CREATE INDEX IF NOT EXISTS notes_by_rank ON notes(pinned DESC, updated DESC, path);
CREATE INDEX IF NOT EXISTS notes_by_type_rank ON notes(type, pinned DESC, updated DESC, path);
CREATE INDEX IF NOT EXISTS notes_by_name ON notes(type, name_key);
CREATE INDEX IF NOT EXISTS notes_superseding ON notes(path) WHERE supersedes != '[]';
CREATE INDEX IF NOT EXISTS notes_marked ON notes(path) WHERE superseded_by IS NOT NULL;
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY,     -- = docs_fts.rowid
    path TEXT NOT NULL,
    anchor TEXT NOT NULL,       -- a journal entry's run id; '' for a whole file
    kind TEXT NOT NULL,
    type TEXT NOT NULL,         -- the note type for memory notes, else the kind
    stem TEXT NOT NULL,
    stem_key TEXT NOT NULL,     -- NFC + casefold: how [[links]] resolve
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    pinned INTEGER NOT NULL,
    updated TEXT,
    expires TEXT,
    links TEXT NOT NULL,        -- JSON list of linked stems
    hash TEXT NOT NULL          -- sha1 of name, description and body: the embedding cache key
);
CREATE INDEX IF NOT EXISTS docs_by_path ON docs(path);
CREATE INDEX IF NOT EXISTS docs_by_stem ON docs(stem_key);
{_FTS_TABLE};
-- The body as written, for whatever shows or embeds it (docs keeps the name and description as written).
CREATE VIEW IF NOT EXISTS docs_text(id, body) AS SELECT rowid, coalesce(original, body) FROM docs_fts;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,       -- 'files': _digest of the stats the files table was last synced to in full;
                                -- 'related': related.table_digest() of the table the related column was made with
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,         -- docs.hash: unchanged text is never embedded twice
    vec BLOB NOT NULL,          -- float32, L2-normalised
    PRIMARY KEY (model, hash)
);
"""


@dataclass(frozen=True)
class IndexRow:
    """What INDEX.md lists of a note."""

    stem: str
    name: str
    type: str
    description: str


@dataclass
class SyncStats:
    added: int = 0
    changed: int = 0  # content changed: re-indexed
    removed: int = 0
    unchanged: int = 0
    touched: int = 0  # stat changed, content did not: no re-index
    skipped: int = 0  # read but left out of search (unreadable, invalid frontmatter ...): findings() say why


Stat = tuple[int, int, int]
_T = TypeVar("_T")
Progress = Callable[[int, int], None]  # (files re-read so far, files to re-read)
Pause = Callable[[float], None]  # sleeps that many seconds, or raises to stop waiting


def _table_of(conn: sqlite3.Connection) -> str | None:
    """The digest of the related-terms table the index's related column was made with."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'related'").fetchone()
    return row[0] if row else None


def _connect_db(db_path: Path) -> sqlite3.Connection:
    # Not parents=True: a sync racing the deletion of its agent folder must not bring the folder back.
    db_path.parent.mkdir(exist_ok=True)
    # One connection may serve several threads of a long-lived Agent, which serializes their use.
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except BaseException:
        conn.close()
        raise
    return conn


# Errors of the disk or of other processes, not of the index file: throwing the index away would not help.
_ENVIRONMENTAL = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_PERM",
                  "SQLITE_IOERR", "SQLITE_NOMEM")


def _environmental(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(_ENVIRONMENTAL)


def _busy(exc: sqlite3.Error) -> bool:
    """Whether `exc` says that another connection holds the lock asked for."""
    return (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_BUSY")


def _damaged(exc: BaseException) -> bool:
    """Whether `exc` says that the index file itself is damaged (pages overwritten, a torn copy ...)."""
    return isinstance(exc, IndexDamaged) or isinstance(exc, sqlite3.DatabaseError) and \
        (getattr(exc, "sqlite_errorname", "") or "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def _index_error(db_path: Path, exc: OSError | sqlite3.Error) -> StorageError:
    """The one-line error for an index that cannot be opened or written. The files are never touched by it:
    the index keeps its last committed state and the next sync goes on from there."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    agent = db_path.parent.parent.name
    if not db_path.parent.parent.is_dir():
        return StorageError("the agent folder is gone", path=db_path.parent.parent,
                            fix="restore the folder, or stop what still uses the agent")
    misplaced = state_not_a_folder(db_path.parent)
    if misplaced is not None:
        return misplaced
    if _damaged(exc):
        return IndexDamaged(f"the search index is damaged ({_reason(exc)})", path=db_path,
                            fix=f"run: vault-agent index {agent} --rebuild")
    # SQLite reports a full disk as SQLITE_FULL, or as an I/O error when the WAL index cannot grow.
    if name.startswith("SQLITE_FULL") or getattr(exc, "errno", None) == errno.ENOSPC or \
            (name.startswith("SQLITE_IOERR") and _nearly_full(db_path.parent)):
        return StorageError("disk full while writing the search index; the notes are untouched", path=db_path,
                            fix="free some disk space and run again")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or \
            getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"cannot write the search index ({_reason(exc)})", path=db_path,
                            fix="make the agent folder writable: the index lives in its .vault-agent/ folder")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StorageError("the search index stayed locked by another process for 30 s", path=db_path,
                            fix="try again once the other vault-agent command or run has finished")
    return StorageError(f"the search index failed ({_reason(exc)})", path=db_path,
                        fix=f"run: vault-agent index {agent} --rebuild")


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _reason(exc: OSError | sqlite3.Error) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def heals(read: Callable[..., _T]) -> Callable[..., _T]:
    """Catalog.healing around each call of `read`, a read of the index whose first argument is the Catalog."""
    @wraps(read)
    def healed(catalog: Catalog, *args: Any, **kwargs: Any) -> _T:
        return catalog.healing(lambda: read(catalog, *args, **kwargs))

    return healed


@dataclass
class _Read:
    """One stale file, read outside the write transaction."""

    rel: str
    kind: str
    st: Stat
    hash: str | None
    touch_only: bool = False
    still_unread: bool = False  # unreadable now as at the last sync: its rows stand
    note_row: tuple[Any, ...] | None = None
    docs: list[Doc] | None = None
    related: list[str] | None = None  # per doc, what the index's related column holds (query.expansions)


class Catalog:
    """Parsed note summaries and the search index of one agent, synced from its files."""

    def __init__(self, paths: AgentPaths, *, progress: Progress | None = None, pause: Pause = time.sleep) -> None:
        """`progress(done, total)`: told before and after each batch when a sync re-reads more files than
        one batch holds (a first index, a checkout of many files), so a person is not left waiting in silence.
        `pause(seconds)`: how a write waits between two tries while another process writes; raising there
        gives up the wait (a watch being stopped does), with nothing written."""
        self.paths = paths
        self.progress = progress
        self.pause = pause
        self.db_path = paths.state / "index.db"
        self._ino: int | None = None  # the inode of the file self.conn has open
        self.conn = self._open()
        self._known: dict[str, Stat] | None = None
        self._unnamed: list[str] = []  # what the last full sync left out for a name that is not UTF-8
        self._data_version = -1
        self._stats: SearchStats | None = None
        self._healing = False  # inside a healing(): reads nested in it leave the healing to it

    def _open(self) -> sqlite3.Connection:
        try:
            found = inode(self.db_path)
            try:
                return self._connect()
            except sqlite3.DatabaseError as exc:
                if _environmental(exc):
                    raise
                # Derived state: a damaged index is thrown away and rebuilt from the files.
                self._discard(found)
                return self._connect(check=False)
        except (OSError, sqlite3.Error) as exc:
            raise _index_error(self.db_path, exc) from None

    def _connect(self, check: bool = True) -> sqlite3.Connection:
        conn = _connect_db(self.db_path)
        try:
            self._ino = inode(self.db_path)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if check and (version not in (0, SCHEMA_VERSION) or (version and _table_of(conn) != table_digest())):
                self._discard(self._ino)
                conn.close()
                conn, version = _connect_db(self.db_path), 0
                self._ino = inode(self.db_path)
            if version != SCHEMA_VERSION:
                # Only then: setting user_version is a write, and a reader must not queue behind a writer.
                conn.executescript(_SCHEMA)
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('related', ?)", (table_digest(),))
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            if check:
                conn.execute("SELECT count(*) FROM files").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _discard(self, ino: int | None) -> None:
        """Delete the index file (and its -wal and -shm) if it is still the file with inode `ino`.

        Another process may have found the same file damaged and put a new one in its place already: that
        one stays. Callers that have the old file open call this before closing it, so that its inode
        cannot have been given to the new file. A process still using the old file follows the new one
        at its next sync (_follow).
        """
        if inode(self.db_path) != ino:
            return
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{self.db_path}{suffix}")
            except FileNotFoundError:
                pass

    def _follow(self) -> bool:
        """Open the index file anew if it is not the one self.conn has open: another process discarded it
        as damaged, or a person deleted it. Whether it did."""
        if inode(self.db_path) == self._ino:
            return False
        self._reopen()
        return True

    def _reopen(self) -> None:
        self.conn.close()
        self.conn = self._open()
        self._known = None
        self._stats = None

    def _rebuild_damaged(self) -> SyncStats:
        """Throw the damaged index file away and build a new one from the files. Once: a new file found
        damaged as well is one error line (IndexDamaged), never a loop."""
        try:
            self._discard(self._ino)
        except OSError as exc:  # a read-only .vault-agent/
            raise _index_error(self.db_path, exc) from None
        self._reopen()
        try:
            return self._sync(None)
        except sqlite3.Error as exc:
            raise _index_error(self.db_path, exc) from None

    def healing(self, read: Callable[[], _T]) -> _T:
        """read() of the index; when it finds the file damaged, the index is built again from the files and
        read() runs once more (a second failure is one error line). Nested (a healed read calling another),
        only the outermost heals: an index still damaged after its rebuild is not rebuilt once per level."""
        if self._healing:
            return read()
        self._healing = True
        try:
            try:
                return read()
            except (sqlite3.DatabaseError, IndexDamaged) as exc:
                if not _damaged(exc):
                    raise
            self._rebuild_damaged()
            try:
                return read()
            except sqlite3.Error as exc:
                raise _index_error(self.db_path, exc) from None
        finally:
            self._healing = False

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def writing(self, *, wait: bool = True) -> Iterator[None]:
        """One write transaction, taken up front (BEGIN IMMEDIATE) so that two writers queue, never deadlock.

        While another process writes, it waits up to BUSY_TIMEOUT_MS (`wait`
        False: not at all). A full disk, a read-only folder or a lock held too
        long is raised as a StorageError (_index_error); the transaction is rolled back either way.
        """
        try:
            self._begin(BUSY_TIMEOUT_MS / 1000 if wait else 0.0)
        except sqlite3.Error as exc:
            raise _index_error(self.db_path, exc) from None
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:  # SQLite may have rolled back already, e.g. on a full disk
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _index_error(self.db_path, exc) from None
            raise

    def _begin(self, patience_s: float) -> None:
        """BEGIN IMMEDIATE, tried again after each self.pause while another process writes, for `patience_s`."""
        deadline = time.monotonic() + patience_s
        delay = 0.001
        self.conn.execute("PRAGMA busy_timeout=0")  # the waiting is done here, where self.pause can end it
        try:
            while True:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    left = deadline - time.monotonic()
                    if not _busy(exc) or left <= 0:
                        raise
                self.pause(min(delay, left))
                delay = min(2 * delay, _LOCK_RETRY_MAX_S)
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def rebuild(self) -> SyncStats:
        """Empty the index and build it again from the files.

        Emptied in one transaction rather than by deleting the file, which
        another process may have open. Embeddings are kept: they are keyed by
        content and cost money to make again. A damaged file cannot be emptied: it is discarded.
        """
        self._follow()
        try:
            with self.writing():
                for table in ("files", "notes", "docs"):
                    self.conn.execute(f"DELETE FROM {table}")
                self.conn.execute("DELETE FROM meta WHERE key != 'related'")  # the table it was made with, still
                # Deleting an FTS5 table's rows one by one costs as much as indexing them; dropping it is instant.
                self.conn.execute("DROP TABLE docs_fts")
                self.conn.execute(_FTS_TABLE)
        except IndexDamaged:
            return self._rebuild_damaged()
        self._known = None
        self._stats = None
        return self.sync()

    def sync(self, only: set[str] | None = None) -> SyncStats:
        """Bring the index in step with the files: re-read only files whose stat changed.

        `only`: the paths (relative to the agent folder) a ChangeTracker saw
        change; then nothing else is even stat'ed. Without it every indexed
        file is stat'ed (a full sync). A damaged index file is discarded and built again from the files.
        """
        if self._follow():
            only = None  # a new file (empty, if a person deleted the old one) needs more than what changed
        try:
            return self._sync(only)
        except (sqlite3.DatabaseError, IndexDamaged) as exc:
            if not _damaged(exc):
                raise
        return self._rebuild_damaged()

    def _sync(self, only: set[str] | None) -> SyncStats:
        stats = SyncStats()
        digest = None
        if only is None:
            on_disk: dict[str, Stat] = {}
            self._unnamed = []
            for folder in SOURCE_FOLDERS:
                _stat_tree(self.paths.root, str(self.paths.root / folder), f"{folder}/", on_disk, self._unnamed)
            if self._current_known() is None:
                # A new connection would load every file's stat from the table to compare (a fifth of a
                # no-change sync at 10k notes); the digest of the last full sync says "nothing changed" at once.
                digest = _digest(on_disk)
                if digest is not None and digest == self._stored_digest():
                    stats.unchanged = len(on_disk)
                    self._known, self._data_version = on_disk, self._version()
                    return stats
        seen = self._version()
        known = self._known_state()
        if only is not None:
            on_disk = {rel: st for rel, st in known.items() if rel not in only}
            for rel in only:
                if kind_of(rel) is None or not utf8_name(rel) or \
                        link_inside(self.paths.root, self.paths.root / rel) is None:
                    continue
                try:
                    st = os.stat(self.paths.root / rel)
                except OSError:
                    continue
                if stat_mod.S_ISREG(st.st_mode):
                    on_disk[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
        stale = sorted(rel for rel, st in on_disk.items() if known.get(rel) != st)
        removed = [rel for rel in known if rel not in on_disk]
        stats.unchanged = len(on_disk) - len(stale)
        unread: list[str] = []
        if stale or removed:
            self._known = None  # until every batch is in, the cached state would be wrong
            unread = self._apply(stale, removed, on_disk, known, stats)
            if stats.added + stats.changed >= OPTIMIZE_AFTER:
                self._optimize()
        # A stored digest always describes the table (every write drops it): with nothing written it still holds.
        # None beside a file that could not be read: the next sync must read it again, whatever the digest says.
        if only is None and not unread and (stale or removed or self._stored_digest() is None):
            digest = digest or _digest(on_disk)
            if digest is not None:
                self._store_digest(digest, seen)
        for rel in unread:
            ino, size, _ = on_disk[rel]
            on_disk[rel] = (ino, size, UNREAD)
        self._known = on_disk
        self._data_version = self._version()
        return stats

    def _apply(self, stale: list[str], removed: list[str], on_disk: dict[str, Stat], known: dict[str, Stat],
               stats: SyncStats) -> list[str]:
        """Re-read the stale files and write what they hold, batch by batch; the files that could not be read."""
        old_hashes = self._hashes([rel for rel in stale if rel in known])
        if removed:
            self._write([], removed)
        stats.removed = len(removed)
        progress = self.progress if len(stale) > BATCH_FILES else None
        batches = [[(rel, on_disk[rel], old_hashes.get(rel, "")) for rel in stale[start:start + BATCH_FILES]]
                   for start in range(0, len(stale), BATCH_FILES)]
        done = 0
        unread: list[str] = []
        with closing(read_in_order(batches, partial(_read_batch, self.paths.root))) as read:
            for reads in read:
                if progress is not None:
                    progress(done, len(stale))
                done += len(reads)
                written = [r for r in reads if not r.still_unread]
                if written:
                    self._write(written, [])
                for r in reads:
                    if r.hash is None:
                        unread.append(r.rel)
                    if r.touch_only:
                        stats.touched += 1
                    elif not r.docs:
                        stats.skipped += 1
                    elif r.rel in known:
                        stats.changed += 1
                    else:
                        stats.added += 1
        if progress is not None:
            progress(len(stale), len(stale))
        return unread

    def _optimize(self) -> None:
        with self.writing():
            self.conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('optimize')")

    def _hashes(self, rels: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for rel in rels:
            row = self.conn.execute("SELECT hash FROM files WHERE path = ?", (rel,)).fetchone()
            if row is not None:
                out[rel] = row[0]
        return out

    def _write(self, reads: list[_Read], removed: list[str]) -> None:
        reindexed = [(r.rel,) for r in reads if not r.touch_only]
        gone = [(rel,) for rel in removed]
        with self.writing():
            self.conn.execute("DELETE FROM meta WHERE key = 'files'")
            self.conn.executemany("UPDATE files SET ino = ?, size = ?, mtime_ns = ? WHERE path = ?",
                                  [(*r.st, r.rel) for r in reads if r.touch_only])
            for rows in (reindexed, gone):
                self.conn.executemany("DELETE FROM docs_fts WHERE rowid IN (SELECT id FROM docs WHERE path = ?)", rows)
                self.conn.executemany("DELETE FROM docs WHERE path = ?", rows)
            self.conn.executemany("DELETE FROM notes WHERE path = ?", gone)
            self.conn.executemany("DELETE FROM files WHERE path = ?", gone)
            self.conn.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)",
                                  [(r.rel, r.kind, *r.st, r.hash) for r in reads if not r.touch_only])
            self.conn.executemany("INSERT OR REPLACE INTO notes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                  [r.note_row for r in reads if r.note_row is not None])
            self._insert_docs([(r.rel, d, t) for r in reads if r.docs for d, t in zip(r.docs, r.related or ())])
        self._stats = None  # this connection's own commits do not move data_version

    def _insert_docs(self, docs: list[tuple[str, Doc, str]]) -> None:
        if not docs:
            return
        # Ids are taken inside the write transaction, so two writers never hand out the same one.
        next_id = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM docs").fetchone()[0]
        rows, fts = [], []
        for i, (rel, d, related) in enumerate(docs, next_id):
            digest = sha1(f"{d.name}\n{d.description}\n{d.body}".encode("utf-8")).hexdigest()
            rows.append((i, rel, d.anchor, d.kind, d.type, d.stem, link_key(d.stem), d.name, d.description,
                         int(d.pinned), d.updated, d.expires,
                         json.dumps(d.links, ensure_ascii=False) if d.links else "[]", digest))
            tags = " ".join(d.tags + d.aliases)
            indexed = [index_text(text) for text in (d.name, d.description, tags, d.body, d.type, " ".join(d.links),
                                                      " ".join(d.dates), related)]
            fts.append((i, *indexed, d.body if indexed[3] != d.body else None))
        self.conn.executemany("INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        self.conn.executemany(f"INSERT INTO docs_fts(rowid, {', '.join(FTS_COLUMNS)}, original) "
                              "VALUES (?,?,?,?,?,?,?,?,?,?)", fts)

    def _version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def search_stats(self) -> SearchStats:
        """What searches keep of the index as it is now: term counts and rankings. Kept until the index
        changes; a search asks once and uses it throughout (the check costs a query)."""
        version = self._version()
        if self._stats is None or self._stats.version != version:
            self._stats = SearchStats(self.conn, version)
        return self._stats

    @heals
    def document_count(self) -> int:
        """How many search documents the index holds."""
        return self.search_stats().document_count()

    @heals
    def types(self) -> list[str]:
        """Every type and kind the search documents have, sorted: what a search can be limited to."""
        return [t for (t,) in self.conn.execute("SELECT type FROM docs UNION SELECT kind FROM docs ORDER BY 1")]

    def _current_known(self) -> dict[str, Stat] | None:
        # PRAGMA data_version changes only when another connection commits: until
        # then the state this connection last synced is still what the table holds.
        return self._known if self._known is not None and self._data_version == self._version() else None

    def _stored_digest(self) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'files'").fetchone()
        return row[0] if row else None

    def _store_digest(self, digest: str, seen: int) -> None:
        """Record that the files table now holds exactly the stats `digest` sums up.

        `seen`: PRAGMA data_version when the sync read the table. Every other
        write to the table forgets the digest in its own transaction (_write),
        and none is stored once another connection has written since `seen`:
        a digest is only ever left beside the state it describes. Best effort:
        a sync that changed nothing must not wait for another process's write
        or fail on a read-only folder; it is stored next time.
        """
        try:
            with self.writing(wait=False):
                if self._version() == seen:
                    self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('files', ?)", (digest,))
        except StorageError:
            pass

    def _known_state(self) -> dict[str, Stat]:
        current = self._current_known()
        if current is not None:
            return current
        return {path: (ino, size, mtime_ns) for path, ino, size, mtime_ns in self.conn.execute(
            f"SELECT path, ino, size, CASE WHEN hash IS NULL THEN {UNREAD} ELSE mtime_ns END FROM files")}

    def summaries(self, note_type: str | None = None) -> list[dict[str, Any]]:
        """Note summaries (as `vault-agent notes --json` prints them), in path order."""
        return json.loads(self.summaries_json(note_type))

    @heals
    def summaries_json(self, note_type: str | None = None) -> str:
        """The same as a JSON array, joined from the stored JSON without decoding it."""
        sql = "SELECT summary FROM notes WHERE summary IS NOT NULL"
        args: tuple[str, ...] = ()
        if note_type:
            sql += " AND type = ?"
            args = (note_type.lower(),)
        return "[" + ", ".join(r[0] for r in self.conn.execute(sql + " ORDER BY path", args)) + "]"

    @heals
    def candidates(self, *, today: str, limit: int,
                   readable: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
        """Live notes (not expired, not superseded), pinned first, then most recently updated; `readable`:
        only notes whose path it accepts, `limit` of them whenever there are that many."""
        superseded = self.superseded()
        rows = self.conn.execute(
            "SELECT path, stem, name, type, pinned, updated, description FROM notes WHERE summary IS NOT NULL "
            "AND (expires IS NULL OR expires >= ?) ORDER BY pinned DESC, updated DESC, path", (today,))
        out: list[dict[str, Any]] = []
        for path, stem, name, note_type, pinned, updated, description in rows:
            if len(out) == limit:
                break
            if not superseded.covers(path, stem, name) and (readable is None or readable(path)):
                out.append({"path": path, "stem": stem, "name": name, "type": note_type, "pinned": bool(pinned),
                            "updated": updated, "description": description})
        return out

    @heals
    def superseded(self) -> Superseded:
        """The notes that are replaced (notes.Superseded), worked out once per state of the index."""
        return self.search_stats().superseded()

    @heals
    def find_note(self, note_type: str, name: str) -> Note | None:
        """The note with this type and name, read from its file (None when there is none)."""
        row = self.conn.execute("SELECT path, hash FROM notes WHERE type = ? AND name_key = ? ORDER BY path LIMIT 1",
                                (note_type.lower(), link_key(name))).fetchone()
        if row is None:
            return None
        note, _ = read_note(self.paths.root / row[0], inside=self.paths.root)
        if note is not None:
            # The hash as of the last sync (the run's start): if the file differs now, a
            # person edited it during the run, and the writer must not overwrite that edit.
            note.hash = row[1]
        return note

    @heals
    def index_entries(self) -> list[IndexRow]:
        rows = self.conn.execute("SELECT stem, name, type, description FROM notes WHERE summary IS NOT NULL")
        return [IndexRow(stem, name, note_type, description or "") for stem, name, note_type, description in rows]

    @heals
    def count_by_type(self) -> dict[str, int]:
        # Unreadable files have type NULL: grouping on the indexed column alone needs no table scan.
        return {t: n for t, n in self.conn.execute("SELECT type, count(*) FROM notes GROUP BY type") if t}

    def index_lines(self, note_type: str, *, today: str) -> Iterator[tuple[str, str, str, str, bool]]:
        """(path, stem, name, description, pinned) of one type's live notes, pinned and most recent first.

        Lazily, in the order of an index: the caller reads as many as it shows (a generator, so a damaged
        index is healed by the caller's `healing`, not here).
        """
        superseded = self.superseded()
        rows = self.conn.execute(
            "SELECT path, stem, name, description, pinned FROM notes WHERE summary IS NOT NULL AND type = ? "
            "AND (expires IS NULL OR expires >= ?) ORDER BY pinned DESC, updated DESC, path", (note_type, today))
        for path, stem, name, description, pinned in rows:
            if not superseded.covers(path, stem, name):
                yield path, stem, name, description or "", bool(pinned)

    @heals
    def findings(self, *, left_out: bool = False) -> list[Finding]:
        """What is wrong with the notes, note by note, and the names the last full sync could not index;
        `left_out`: only about files that are not in the index."""
        out: list[Finding] = []
        sql = "SELECT path, findings FROM notes WHERE findings != '[]'"
        for rel, raw in self.conn.execute(f"{sql} AND summary IS NULL ORDER BY path" if left_out else
                                          f"{sql} ORDER BY path"):
            for level, message, fix in json.loads(raw):
                out.append(Finding(level, self.paths.root / rel, message, fix))
        return out + [bad_name(self.paths.root / rel) for rel in self._unnamed]


class SearchStats:
    """Term counts, single-term rankings and the superseded notes of one state of the index (PRAGMA
    data_version `version`).

    Computing them is most of a search: counting scans a term's matches, and
    BM25 scores every matching document to find the best, ~2 µs each. The same
    terms come back question after question (related terms above all: half the
    terms of the bench's 252 questions at 100k notes had been ranked before).
    """

    def __init__(self, conn: sqlite3.Connection, version: int) -> None:
        self.conn = conn
        self.version = version
        self._counts: dict[str, int] = {}
        self._rankings: dict[tuple[str, str, str | None, tuple[str, ...], int], list[tuple[int, float]]] = {}
        self._ranked_rows = 0  # in self._rankings, each counting one more
        self._superseded: Superseded | None = None

    def superseded(self) -> Superseded:
        """Which notes are replaced (asked by every recall, INDEX section and search mark)."""
        if self._superseded is None:
            rows = self.conn.execute(
                "SELECT path, supersedes, NULL FROM notes WHERE supersedes != '[]' UNION ALL "
                "SELECT path, '[]', superseded_by FROM notes WHERE superseded_by IS NOT NULL ORDER BY path")
            self._superseded = superseded((path, json.loads(refs), mark) for path, refs, mark in rows)
        return self._superseded

    def document_count(self) -> int:
        found = self._counts.get("")
        if found is None:
            found = self._counts[""] = self.conn.execute("SELECT count(*) FROM docs").fetchone()[0]
        return found

    def document_frequency(self, fts_term: str, cap: int) -> int:
        """How many documents match one FTS5 term, counted up to `cap` + 1 (counting is what costs)."""
        found = self._counts.get(fts_term)
        if found is None:
            # A prefix term matches every document its whole word does, so when the word alone is over the cap
            # the prefix is too. Counting the prefix costs the most: FTS5 merges the doclists of every word it
            # starts before the first match ("draft*": 7 ms at 100k notes, "draft": 1 ms).
            if fts_term.endswith('"*') and self.document_frequency(fts_term[:-1], cap) > cap:
                found = cap + 1
            else:
                found = self.conn.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM docs_fts WHERE docs_fts MATCH ? LIMIT ?)",
                    (fts_term, cap + 1)).fetchone()[0]
            self._counts[fts_term] = found
        return found

    def term_ranking(self, fts_term: str, weights: str, type: str | None, limit: int,
                     kinds: tuple[str, ...] = ()) -> list[tuple[int, float]]:
        """The `limit` best documents for one FTS5 term, as (id, bm25) with these column weights (bm25 is
        negative, lower is better); `type`: only documents of this type or kind (lowercase); `kinds`: only
        documents of these kinds (recall: journal entries repeating the work item must not fill the ranking)."""
        key = (fts_term, weights, type, kinds, limit)
        found = self._rankings.get(key)
        if found is None:
            if type or kinds:
                where = (" AND ? IN (docs.type, docs.kind)" if type else "") + \
                    (f" AND docs.kind IN ({','.join('?' * len(kinds))})" if kinds else "")
                found = self.conn.execute(
                    f"SELECT docs_fts.rowid, bm25(docs_fts, {weights}) AS s FROM docs_fts JOIN docs "
                    f"ON docs.id = docs_fts.rowid WHERE docs_fts MATCH ?{where} ORDER BY s LIMIT ?",
                    (fts_term, *([type] if type else []), *kinds, limit)).fetchall()
            else:
                found = self.conn.execute(
                    f"SELECT rowid, bm25(docs_fts, {weights}) AS s FROM docs_fts WHERE docs_fts MATCH ? "
                    "ORDER BY s LIMIT ?", (fts_term, limit)).fetchall()
            kept = len(found) + 1  # an empty ranking is kept too
            if self._ranked_rows + kept > _RANKED_ROWS_MAX:
                self._rankings.clear()
                self._ranked_rows = 0
            self._rankings[key] = found
            self._ranked_rows += kept
        return found


def _read_batch(root: Path, batch: list[tuple[str, Stat, str | None]]) -> list[_Read]:
    """Read and parse one batch of stale files: (path relative to `root`, stat, hash when last indexed)."""
    with Beneath(root) as beneath:
        reads = [_read_file(root, rel, st, old_hash, beneath) for rel, st, old_hash in batch]
    # Worked out here, in a read-ahead helper when there is one, rather than by the writer while it holds the lock.
    related = iter(expansions([f"{d.name}\n{d.description}" for r in reads for d in r.docs or ()]))
    for r in reads:
        r.related = [next(related) for _ in r.docs or ()]
    return reads


def _read_file(root: Path, rel: str, st: Stat, old_hash: str | None, beneath: Beneath) -> _Read:
    """One stale file, read and parsed; only its stat is updated when its bytes hash to `old_hash`."""
    kind = kind_of(rel) or "memory"
    path = root / rel
    data = _read_bytes(root, path, beneath)
    if data is None and old_hash is None:  # (a new file's old_hash is "")
        return _Read(rel, kind, st, None, still_unread=True)
    digest = content_hash(data) if data is not None else None
    if digest is not None and digest == old_hash:
        return _Read(rel, kind, st, digest, touch_only=True)
    if kind == "memory":
        if data is None:  # unreadable or too large: read_note says why
            note, findings = read_note(path, max_bytes=MAX_NOTE_BYTES, inside=root)
        else:
            note, findings = parse_note(path, data)
        summary = note.summary() if note else None
        return _Read(rel, kind, st, digest, note_row=_note_row(rel, note, findings, summary),
                     docs=[note_doc(note, summary=summary)] if note and summary else [])
    if data is None:
        return _Read(rel, kind, st, digest, docs=[])
    if kind == "journal":
        return _Read(rel, kind, st, digest, docs=journal_docs(path, data))
    doc = page_doc(path, data, kind)
    return _Read(rel, kind, st, digest, docs=[doc] if doc else [])


def _note_row(rel: str, note: Note | None, findings: list[Finding],
              summary: dict[str, Any] | None) -> tuple[Any, ...]:
    if note is None or summary is None:
        return (rel, None, None, None, None, None, 0, None, None, "[]", None, None, None, _findings_json(findings))
    supersedes = note.supersedes
    return (rel, summary["type"], note.stem, summary["name"], link_key(summary["name"]), summary["description"],
            int(summary["pinned"]), summary["updated"] or summary["created"], summary["expires"],
            json.dumps(supersedes, ensure_ascii=False) if supersedes else "[]", note.superseded_by, note.hash,
            json.dumps({**summary, "path": rel}, ensure_ascii=False), _findings_json(findings))


def _findings_json(findings: list[Finding]) -> str:
    return json.dumps([[f.level, f.message, f.fix] for f in findings], ensure_ascii=False) if findings else "[]"


def _read_bytes(root: Path, path: Path, beneath: Beneath) -> bytes | None:
    """The bytes of `path` in the agent folder `root` (read_inside), or None when it cannot be read, is not a
    regular file, links where it may not or is over the note size limit."""
    try:
        return read_inside(root, path, MAX_NOTE_BYTES, beneath)
    except OSError:
        return None


# Where the OS allows it, each file is stat'ed by name inside its open folder instead of by its full path:
# no walk down the path for every file, which was a fifth of a no-change sync at 10k notes.
_BY_FD = os.scandir in os.supports_fd


def _digest(state: dict[str, Stat]) -> str | None:
    """A hash of every path and stat in `state`, in its order (a walk of unchanged folders repeats it); None
    when a number does not fit in 64 bits."""
    try:
        numbers = array("q", [n for st in state.values() for n in st])
    except OverflowError:
        return None
    return blake2b(f"{len(state)}\0{chr(0).join(state)}".encode("utf-8", "surrogateescape") + numbers.tobytes(),
                   digest_size=16).hexdigest()


def _stat_tree(root: Path, folder: str, prefix: str, out: dict[str, Stat], unnamed: list[str],
               dir_fd: int | None = None) -> None:
    """Add rel path -> (inode, size, mtime_ns) of the regular files under `folder` that sources.kind_of indexes;
    to `unnamed`, the paths of those files and folders whose name is not UTF-8 (utf8_name), left out.

    `root`: the agent folder, whose rule for links applies (link_inside).
    `folder`: a path, or with `dir_fd` a name inside that open folder. Plain
    strings and DirEntry.stat: at 10k notes, Path objects alone would cost
    more than the whole warm sync.
    """
    try:
        # O_NOFOLLOW: a folder turned into a link since it was listed is not walked into.
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd) if _BY_FD else None
    except OSError:  # missing, not a folder, a link, or not readable (`vault-agent doctor` names it)
        return
    kind = kind_in(prefix)
    try:
        try:
            entries = os.scandir(folder if fd is None else fd)
        except OSError:
            return
        with entries:
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if not utf8_name(name):
                        if is_dir or kind(name) is not None:
                            unnamed.append(prefix + name)
                    elif is_dir:
                        _stat_tree(root, entry.path if fd is None else name, f"{prefix}{name}/", out, unnamed,
                                   dir_fd=fd)
                    elif kind(name) is not None:
                        if entry.is_symlink() and link_inside(root, root / (prefix + name)) is None:
                            continue
                        st = entry.stat()
                        if stat_mod.S_ISREG(st.st_mode):  # a pipe named note.md would hang its reader
                            out[prefix + name] = (st.st_ino, st.st_size, st.st_mtime_ns)
                except OSError:
                    continue
    finally:
        if fd is not None:
            os.close(fd)


def check_index(paths: AgentPaths) -> Finding | None:
    """What SQLite's quick_check finds wrong with the agent's index file, if anything. Read-only: for doctor,
    which changes nothing; the next sync repairs it."""
    db_path = paths.state / "index.db"
    if not db_path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True)) as conn:
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            return None  # cannot be checked from here (locked, not readable ...): a sync says why
        problem = _reason(exc)
    if problem == "ok":
        return None
    problem = problem.splitlines()[-1]  # its first line is "*** in database main ***"
    return Finding("warning", db_path, f"the search index is damaged ({problem})",
                   f"run: vault-agent index {paths.name} --rebuild (it is built again from the files)")


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
