"""File-change tracking for long-lived processes: which indexed files changed since the last sync.

A long-lived Agent (embedded in Python, chat, the daemon) would otherwise
stat every note before every run. With a tracker, a sync touches only what
the OS reported as changed. When the tracker cannot vouch for completeness
(not started, overflow, an error in its thread), `take()` returns None and
the caller does a full sync, so correctness never depends on it.

`watch_agents` is `vault-agent watch`: it keeps the indexes of agents fresh
while a person edits in Obsidian, syncing once the edits have settled. Its
workers sleep until the OS reports a change: idle, it wakes only every
POLL_S, to look for agents new or gone.
Dot-files and dot-folders (temp files, .vault-agent/, .obsidian/) and files
the index does not cover are ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, ParamSpec

from ..errors import Finding, VaultAgentError
from ..vault.layout import AgentPaths, is_agent_folder
from ..vault.reading import inode
from .catalog import Catalog, Progress, SyncStats
from .sources import SOURCE_FOLDERS, kind_of


class ChangeTracker:
    """Collects paths (relative to the agent folder) of indexed files created, changed, moved or deleted."""

    def __init__(self, root: Path, watched: Path, wake: threading.Event | None = None) -> None:
        """`wake`: set at the first change after a take(), for a thread that sleeps until there is one."""
        self.root = root
        self.watched = watched
        self._wake = wake
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._complete = False
        self._pending = False  # something changed since the last take()
        self._first_event = 0.0  # time.monotonic() of the first relevant event since the last take()
        self._last_event = 0.0  # and of the last one
        self._observer: Any = None

    def start(self) -> bool:
        """Start watching; False when file watching is unavailable here (then callers do full syncs)."""
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return False
        tracker = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed_no_write") or (
                        event.is_directory and event.event_type == "modified"):
                    return  # a folder's "modified" only echoes changes to files inside it
                for raw in (event.src_path, getattr(event, "dest_path", "")):
                    if raw:
                        tracker._mark(Path(raw.decode() if isinstance(raw, bytes) else raw), event.is_directory)

        _quiet_stop_race()
        try:  # a folder deleted meanwhile fails here: callers drop it, nothing makes it anew
            observer = Observer()
            observer.schedule(_Handler(), str(self.watched), recursive=True)
            observer.daemon = True
            observer.start()
        except OSError:
            return False
        self._observer = observer
        with self._lock:
            self._complete = True
        return True

    def _mark(self, path: Path, is_dir: bool) -> None:
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            return
        parts = rel.split("/")
        if parts[0] not in SOURCE_FOLDERS or any(p.startswith(".") for p in parts):
            return  # log/, .vault-agent/, .obsidian/, temp files: nothing the index reads
        with self._lock:
            if is_dir:
                # A folder created, moved or deleted changes every file under it: only a full sync can tell.
                self._complete = False
            elif kind_of(rel) is not None:
                self._dirty.add(rel)
            else:
                return
            self._last_event = time.monotonic()
            first = not self._pending
            if first:
                self._pending, self._first_event = True, self._last_event
        # Only the first: a thread woken by it sleeps until the changes would settle, and looks again then.
        if first and self._wake is not None:
            self._wake.set()

    def settles_in(self, quiet_s: float, max_wait_s: float = float("inf")) -> float | None:
        """Seconds until the changes since the last take() settle if nothing more changes (0: they have), None
        when there are none. Settled: nothing more changed for `quiet_s` seconds (edits come in bursts), or the
        first change is `max_wait_s` old (a file written to without pause must not hold back the others)."""
        with self._lock:
            if not self._pending:
                return None
            settle_at = min(self._last_event + quiet_s, self._first_event + max_wait_s)
            return max(settle_at - time.monotonic(), 0.0)

    def take(self) -> set[str] | None:
        """The changed paths since the last take, or None when a full sync is needed."""
        with self._lock:
            self._pending = False
            alive = self._observer is not None and self._observer.is_alive()
            if not (self._complete and alive):
                self._dirty.clear()
                if alive:
                    self._complete = True
                return None
            dirty, self._dirty = self._dirty, set()
            return dirty

    def restore(self, taken: set[str] | None) -> None:
        """Give back what take() returned, for a sync that failed: the next take() returns it again (None: the
        next take() asks for a full sync)."""
        with self._lock:
            if taken is None:
                self._complete = False
            else:
                self._dirty |= taken

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is None:
            return
        from watchdog.utils import BaseThread

        if isinstance(threading.current_thread(), BaseThread):
            # The garbage collector can finalize an Agent in any thread, watchdog's own among them; stopping
            # the observer joins those threads, and a thread cannot join itself: leave it to another thread.
            threading.Thread(target=_halt, args=(observer,), daemon=True).start()
        else:
            _halt(observer)


# watchdog logs this at ERROR when an observer is stopped while its inotify thread is between two reads:
# the thread then returns as if there were no events (gorakhargosh/watchdog#963), so closing an Agent
# would print an error line for nothing wrong.
_STOP_RACE = "InotifyEmitter.queue_events() called when the thread is inactive"


class _DropStopRace(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _STOP_RACE


def _quiet_stop_race() -> None:
    logger = logging.getLogger("watchdog.observers.inotify")
    if not any(isinstance(f, _DropStopRace) for f in logger.filters):
        logger.addFilter(_DropStopRace())


def _halt(observer: Any) -> None:
    observer.stop()
    observer.join(timeout=2)


MAX_WAIT_S = 5.0  # the longest a change waits for its sync while edits go on
POLL_S = 2.0  # how often agents are looked for, and synced in full where the OS reports no changes
RETRY_S = 2.0  # how long after a failed sync it is tried again


class _Ended(BaseException):
    """Raised between two batches of a sync whose watch has ended, or in its wait for the index lock. Not an
    Exception: the handler of failed syncs must not take it for one."""


_P = ParamSpec("_P")


def _one_at_a_time(call: Callable[_P, None], lock: threading.Lock) -> Callable[_P, None]:
    """`call`, run while holding `lock`: what several workers print comes out line by line, never mixed."""
    def locked(*args: _P.args, **kwargs: _P.kwargs) -> None:
        with lock:
            call(*args, **kwargs)

    return locked


class _Followed:
    """One watched agent, synced by a worker thread of its own: a sync that waits on this agent's index lock,
    or is long, holds back no other agent. Also its change tracker, its index (None until opened, and after
    a failure) and what was last said about it. The worker starts with the object; end() ends it."""

    def __init__(self, root: Path, progress: Progress | None, quiet_s: float, say: Callable[[str], None],
                 on_sync: Callable[[str, SyncStats], None] | None) -> None:
        self.root = root
        self.name = root.name
        self.ino = inode(root)
        self.progress = progress
        self.quiet_s = quiet_s
        self.say = say
        self.on_sync = on_sync
        self.wake = threading.Event()  # set by a change, and by end(): the worker sleeps on it
        self.tracker = ChangeTracker(root, root, self.wake)
        self.live = False  # whether the OS reports this agent's changes (the worker starts the tracker)
        self.catalog: Catalog | None = None
        self.failure: str | None = None  # the one-line reason the last sync failed, until one works
        self.retry_at = 0.0
        self.shown: set[tuple[str, str, str]] = set()  # findings already printed
        self.ended = threading.Event()
        # A daemon: should a sync sit out SQLite's busy timeout at the end, a second Ctrl-C still ends the process.
        self.worker = threading.Thread(target=self._work, name=f"vault-agent-watch-{self.name}", daemon=True)
        self.worker.start()

    def end(self) -> None:
        """Tell the worker to end: at once when it sleeps or waits for the index lock, else once the batch it
        is writing is in."""
        self.ended.set()
        self.wake.set()

    def _work(self) -> None:
        """A full sync, then one each time the edits settle, until `ended`; asleep in between. The tracker and
        the index are closed here, by the one thread that uses them."""
        try:
            self.live = self.tracker.start()
            self.sync(None)
            synced = time.monotonic()
            while not self.ended.is_set():
                self.wake.clear()  # before looking: a change or end() from here on cuts the wait below short
                wait_s = self._until_due(synced)
                if wait_s is None or wait_s > 0:
                    self.wake.wait(wait_s)
                    continue
                synced = time.monotonic()
                self.sync(self.tracker.take())
        except _Ended:
            pass  # the index keeps the batches committed so far: the next sync, of this watch or not, goes on
        finally:
            self.close()

    def _until_due(self, synced: float) -> float | None:
        """Seconds until the next sync is due (0 or less: now), None when not before a change."""
        now = time.monotonic()
        if self.failure is not None:
            return self.retry_at - now
        if not self.live:  # no OS events (e.g. the inotify watch limit reached): a full sync every POLL_S instead
            return synced + POLL_S - now
        return self.tracker.settles_in(self.quiet_s, MAX_WAIT_S)

    def _progress(self, done: int, total: int) -> None:
        """Catalog's progress callback, called between two batches of a long sync: where an ended watch stops it."""
        if self.ended.is_set():
            raise _Ended
        if self.progress is not None:
            self.progress(done, total)

    def _pause(self, seconds: float) -> None:
        """Catalog's pause between two tries for the index lock another process holds: an ended watch stops
        waiting there, at once, rather than for up to BUSY_TIMEOUT_MS."""
        if self.ended.wait(seconds):
            raise _Ended

    def sync(self, only: set[str] | None) -> None:
        try:
            if self.catalog is None:
                self.catalog = Catalog(AgentPaths(self.root), progress=self._progress, pause=self._pause)
            stats = self.catalog.sync(only)
            findings = self.catalog.findings() if self._wrote(stats) else None
        except Exception as exc:  # a locked or full disk must not end the watcher, nor lose the edits
            self.tracker.restore(None)  # a full sync finds whatever this one did not write
            self.close_catalog()  # opened anew: a replaced, damaged or unreachable file is followed
            reason = exc.one_line() if isinstance(exc, VaultAgentError) else \
                f"{self.root / '.vault-agent' / 'index.db'}: {type(exc).__name__}: {exc}"
            if reason != self.failure and self.gone() is None:  # else it is dropped, with one line why
                self.say(f"[{self.name}] sync failed, retrying every {RETRY_S:g} s: {reason}")
            self.failure, self.retry_at = reason, time.monotonic() + RETRY_S
            return
        if self.failure is not None:
            self.say(f"[{self.name}] sync works again")
            self.failure = None
        if findings is not None:
            self._show(findings, only)
        if self.on_sync is not None:
            self.on_sync(self.name, stats)

    @staticmethod
    def _wrote(stats: SyncStats) -> bool:
        return bool(stats.added or stats.changed or stats.removed or stats.skipped)

    def _show(self, findings: list[Finding], only: set[str] | None) -> None:
        """Print each finding once: when it first shows, and again when its file changed and still has it."""
        shown: set[tuple[str, str, str]] = set()
        for f in findings:
            rel = f.path.relative_to(self.root).as_posix() if f.path is not None else ""
            key = (rel, f.level, f.message)
            if key not in self.shown or (only is not None and rel in only):
                self.say(f.one_line())
            shown.add(key)
        self.shown = shown

    def gone(self) -> str | None:
        """Why this agent cannot be followed any more, if so: its folder deleted, replaced or no longer an agent."""
        if not self.root.is_dir():
            return f"{self.root} is gone"
        if inode(self.root) != self.ino:
            return f"{self.root} was replaced"
        if not is_agent_folder(self.root):
            return f"{self.root} holds no model.md or persona/ any more"
        return None

    def close_catalog(self) -> None:
        catalog, self.catalog = self.catalog, None
        if catalog is not None:
            catalog.close()

    def close(self) -> None:
        self.tracker.stop()
        self.close_catalog()


def watch_agents(roots: list[Path], stop: threading.Event, *, quiet_s: float = 0.5,
                 on_sync: Callable[[str, SyncStats], None] | None = None,
                 discover: Callable[[], list[Path]] | None = None,
                 progress_for: Callable[[str], Progress] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
    """Keep each agent's index in step with its files until `stop` is set.

    Every agent gets a full sync first, then a sync of what changed each time
    its files have been quiet for `quiet_s` (debounced: an editor saving
    every keystroke costs one sync), or MAX_WAIT_S after the first unsynced
    change. `on_sync(agent, stats)` reports each sync that worked. `say(line)`
    gets the lines for a person: a failed sync (once per distinct reason; it
    is retried every RETRY_S with nothing lost), the findings about notes
    (once each), and agents that start or stop being watched after the first.
    `discover`, called every POLL_S, returns the agents to follow (default:
    `roots`); an agent whose folder is deleted or replaced is dropped and
    followed again when it is back. `progress_for(agent)`: the Catalog
    progress callback for that agent's syncs.

    Each agent is synced by a thread of its own, which calls these callbacks,
    one call at a time across all threads: one waiting on its index lock (up
    to 30 s) or busy with a first index holds back no other. Between syncs
    it sleeps until a change. Once `stop` is set (or Ctrl-C), each finishes
    the batch it is writing, or stops waiting for its index lock at once
    (what it had still to write, the next sync of the agent finds), and all
    have ended when this returns.
    """
    lock = threading.Lock()
    tell = _one_at_a_time(say if say is not None else lambda line: None, lock)
    synced = _one_at_a_time(on_sync, lock) if on_sync is not None else None
    watched: dict[Path, _Followed] = {}
    dropped: list[_Followed] = []  # ended, and maybe still finishing a sync: joined before returning

    def look(announce: bool) -> None:
        for root, followed in list(watched.items()):
            why = followed.gone()
            if why is not None:
                del watched[root]
                followed.end()
                dropped.append(followed)
                tell(f"[{root.name}] stopped watching: {why} (watched again once it is back)")
        dropped[:] = [followed for followed in dropped if followed.worker.is_alive()]
        for root in discover() if discover is not None else roots:
            if root not in watched and is_agent_folder(root):
                if announce:
                    tell(f"[{root.name}] now watching")
                progress = _one_at_a_time(progress_for(root.name), lock) if progress_for else None
                watched[root] = _Followed(root, progress, quiet_s, tell, synced)

    try:
        look(announce=False)
        while not stop.wait(POLL_S):
            look(announce=True)
    finally:
        followers = [*watched.values(), *dropped]
        for followed in followers:
            followed.end()  # all at once: each worker finishes its batch, none waits on another
        for followed in followers:
            followed.worker.join()
