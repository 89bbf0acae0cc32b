"""File-change tracking for a long-lived process: which notes changed since the last sync.

A long-lived Agent (embedded in Python, chat, the daemon) would otherwise
stat every note before every run. With a tracker, a sync touches only what
the OS reported as changed. When the tracker cannot vouch for completeness
(not started, overflow, an error in its thread), `take()` returns None and
the caller does a full sync, so correctness never depends on it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


class ChangeTracker:
    """Collects paths (relative to the agent folder) of notes created, changed, moved or deleted."""

    def __init__(self, root: Path, watched: Path) -> None:
        self.root = root
        self.watched = watched
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._complete = False
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
        with self._lock:
            if is_dir:
                # A folder created, moved or deleted changes every note under it: only a full sync can tell.
                self._complete = False
            elif path.suffix == ".md":
                self._dirty.add(rel)

    def take(self) -> set[str] | None:
        """The changed paths since the last take, or None when a full sync is needed."""
        with self._lock:
            alive = self._observer is not None and self._observer.is_alive()
            if not (self._complete and alive):
                self._dirty.clear()
                if alive:
                    self._complete = True
                return None
            dirty, self._dirty = self._dirty, set()
            return dirty

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None
