"""File-change tracking for long-lived processes: which indexed files changed since the last sync.

A long-lived Agent (embedded in Python, chat, the daemon) would otherwise
stat every note before every run. With a tracker, a sync touches only what
the OS reported as changed. When the tracker cannot vouch for completeness
(not started, overflow, an error in its thread), `take()` returns None and
the caller does a full sync, so correctness never depends on it.

`watch_agents` is `vault-agent watch`: it keeps the indexes of agents fresh
while a person edits in Obsidian, syncing once the edits have settled.
Dot-files and dot-folders (temp files, .vault-agent/, .obsidian/) and files
the index does not cover are ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..vault.layout import AgentPaths
from .catalog import Catalog, Progress, SyncStats
from .sources import SOURCE_FOLDERS, kind_of


class ChangeTracker:
    """Collects paths (relative to the agent folder) of indexed files created, changed, moved or deleted."""

    def __init__(self, root: Path, watched: Path) -> None:
        self.root = root
        self.watched = watched
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._complete = False
        self._pending = False  # something changed since the last take()
        self._last_event = 0.0  # time.monotonic() of the last relevant event
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

        self.watched.mkdir(parents=True, exist_ok=True)
        _quiet_stop_race()
        try:
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
            self._pending = True
            self._last_event = time.monotonic()

    def settled(self, quiet_s: float) -> bool:
        """True when something changed and nothing more has for `quiet_s` seconds (edits come in bursts)."""
        with self._lock:
            return self._pending and time.monotonic() - self._last_event >= quiet_s

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


POLL_S = 2.0


def watch_agents(roots: list[Path], stop: threading.Event, *, quiet_s: float = 0.5,
                 on_sync: Callable[[str, SyncStats | None], None] | None = None,
                 discover: Callable[[], list[Path]] | None = None,
                 progress_for: Callable[[str], Progress] | None = None) -> None:
    """Keep each agent's index in step with its files until `stop` is set.

    Every agent gets a full sync first, then a sync of what changed each time
    its files have been quiet for `quiet_s` (debounced: an editor saving
    every keystroke costs one sync). `on_sync(agent, stats)` reports each
    sync; stats is None when a sync failed (it is retried on the next change).
    `discover`, called every POLL_S, returns the agents to follow, so agents
    created while watching are picked up. `progress_for(agent)`: the
    Catalog progress callback for that agent's syncs.
    """
    watched: dict[Path, tuple[Catalog, ChangeTracker, bool]] = {}

    def follow(root: Path) -> None:
        catalog = Catalog(AgentPaths(root), progress=progress_for(root.name) if progress_for is not None else None)
        tracker = ChangeTracker(root, root)
        watched[root] = (catalog, tracker, tracker.start())
        _sync(root.name, catalog, None, on_sync)

    try:
        for root in roots:
            follow(root)
        polled = time.monotonic()
        while not stop.wait(0.05):
            # Without OS events (e.g. the inotify watch limit reached), a full sync every POLL_S instead.
            poll = time.monotonic() - polled >= POLL_S
            for root, (catalog, tracker, live) in list(watched.items()):
                if tracker.settled(quiet_s) or (poll and not live):
                    _sync(root.name, catalog, tracker.take(), on_sync)
            if poll:
                for root in discover() if discover is not None else []:
                    if root not in watched:
                        follow(root)
                polled = time.monotonic()
    finally:
        for catalog, tracker, _ in watched.values():
            tracker.stop()
            catalog.close()


def _sync(name: str, catalog: Catalog, only: set[str] | None,
          on_sync: Callable[[str, SyncStats | None], None] | None) -> None:
    try:
        stats: SyncStats | None = catalog.sync(only)
    except Exception:  # a locked or full disk must not end the watcher; the next change retries
        stats = None
    if on_sync is not None:
        on_sync(name, stats)
