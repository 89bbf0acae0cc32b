"""`vault-agent watch`: a real file watcher keeps indexes fresh while files are edited, debounced, dot-files ignored."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from memory_helpers import agent, note

from vault_agent.memory.catalog import Catalog
from vault_agent.memory.search import search
from vault_agent.memory.watch import watch_agents
from vault_agent.vault.layout import AgentPaths


def eventually(check: Callable[[], bool], timeout_s: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def indexed_paths(paths: AgentPaths) -> set[str]:
    with Catalog(paths) as cat:
        return {row[0] for row in cat.conn.execute("SELECT path FROM files")}


def test_an_edit_is_indexed_once_the_burst_settles_and_dot_files_are_ignored(tmp_path: Path) -> None:
    paths = agent(tmp_path)
    note(paths, "first", "First", "apples")
    stop = threading.Event()
    syncs: list[object] = []
    watcher = threading.Thread(target=watch_agents, args=([paths.root], stop),
                               kwargs={"quiet_s": 0.3, "on_sync": lambda name, stats: syncs.append(stats)})
    watcher.start()
    try:
        assert eventually(lambda: len(syncs) == 1)  # the initial full sync
        for i in range(5):  # an editor saving as the person types: one sync for the burst
            note(paths, "kiwi", "Kiwi", "kiwi fruit " * (i + 1))
            time.sleep(0.05)
        (paths.memory / ".kiwi.md.3f2a.tmp").write_text("half-written")
        (paths.root / "log").mkdir()
        (paths.root / "log" / "notes.md").write_text("not indexed")
        assert eventually(lambda: "memory/kiwi.md" in indexed_paths(paths))
        time.sleep(0.5)
        assert len(syncs) == 2
        assert indexed_paths(paths) == {"memory/first.md", "memory/kiwi.md"}
        with Catalog(paths) as cat:
            assert "kiwi fruit kiwi fruit kiwi fruit kiwi fruit kiwi fruit" in \
                cat.conn.execute("SELECT body FROM docs_fts WHERE name = 'Kiwi'").fetchone()[0]
        (paths.memory / "first.md").unlink()
        assert eventually(lambda: indexed_paths(paths) == {"memory/kiwi.md"})
    finally:
        stop.set()
        watcher.join(5)
    assert not watcher.is_alive()


def test_a_long_first_sync_of_a_watched_agent_reports_its_progress(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import catalog

    monkeypatch.setattr(catalog, "BATCH_FILES", 2)
    paths = agent(tmp_path, "big")
    for i in range(5):
        note(paths, f"n{i}", f"N{i}", "pears")
    stop = threading.Event()
    seen: list[tuple[str, int, int]] = []

    def progress_for(name: str) -> Callable[[int, int], None]:
        return lambda done, total: seen.append((name, done, total))

    watcher = threading.Thread(target=watch_agents, args=([paths.root], stop),
                               kwargs={"quiet_s": 0.2, "progress_for": progress_for})
    watcher.start()
    try:
        assert eventually(lambda: ("big", 5, 5) in seen)
        assert seen == [("big", 0, 5), ("big", 2, 5), ("big", 4, 5), ("big", 5, 5)]
    finally:
        stop.set()
        watcher.join(5)


def test_the_watch_command_follows_every_agent_and_stops_on_sigterm(tmp_path: Path) -> None:
    one, two = agent(tmp_path, "one"), agent(tmp_path, "two")
    proc = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(tmp_path), "watch",
                             "--quiet", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert eventually(lambda: (one.state / "index.db").exists() and (two.state / "index.db").exists())
        time.sleep(0.5)  # the watcher is up once both initial syncs are done
        note(one, "plum", "Plum", "plum tart")
        (two.root / "wiki").mkdir()
        (two.root / "wiki" / "pears.md").write_text("# Pears\n\nPoached pears.\n")

        def found(paths: AgentPaths, word: str) -> bool:
            with Catalog(paths) as cat:
                return bool(search(cat, word))

        assert eventually(lambda: found(one, "plum") and found(two, "poached"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "watching one, two" in err and "[one] 1 added" in out


def test_watch_without_a_name_picks_up_an_agent_created_while_it_runs(tmp_path: Path) -> None:
    agent(tmp_path, "first")
    proc = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(tmp_path), "watch",
                             "--quiet", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert eventually(lambda: (tmp_path / "first" / ".vault-agent" / "index.db").exists())
        late = agent(tmp_path, "late")
        assert eventually(lambda: (late.state / "index.db").exists(), timeout_s=15)
        time.sleep(0.5)
        note(late, "quince", "Quince", "quince jelly")

        def found() -> bool:
            with Catalog(late) as cat:
                return bool(search(cat, "quince"))

        assert eventually(found, timeout_s=15)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_a_tracker_stopped_from_its_own_observer_thread_ends_without_error(tmp_path: Path) -> None:
    # What happens when the garbage collector finalizes an Agent while the observer thread runs a handler.
    from watchdog.events import FileSystemEventHandler

    from vault_agent.memory.watch import ChangeTracker

    paths = agent(tmp_path)
    tracker = ChangeTracker(paths.root, paths.root)
    assert tracker.start()
    observer = tracker._observer
    errors: list[BaseException] = []
    stopped = threading.Event()

    class StopFromInside(FileSystemEventHandler):
        def on_any_event(self, event: object) -> None:
            if not stopped.is_set():
                try:
                    tracker.stop()
                except BaseException as exc:  # the failure under test, reported to the main thread
                    errors.append(exc)
                stopped.set()

    observer.schedule(StopFromInside(), str(paths.root), recursive=True)
    note(paths, "tea", "Tea", "Green tea, no sugar.")
    assert stopped.wait(8) and errors == []
    observer.join(timeout=5)
    assert not observer.is_alive() and tracker.take() is None


def test_a_tracker_stopped_from_the_inotify_reader_thread_ends_without_error(tmp_path: Path) -> None:
    # The same from the thread that reads inotify and calls each watch's callback (watchdog's InotifyFD):
    # stopping the observer there joins that very thread. Linux only: elsewhere watchdog has no such thread.
    from vault_agent.memory.watch import ChangeTracker

    paths = agent(tmp_path)
    tracker = ChangeTracker(paths.root, paths.root)
    assert tracker.start()
    observer = tracker._observer
    reader = getattr(observer, "_inotify_fd", None)
    if reader is None:
        tracker.stop()
        pytest.skip(f"{type(observer).__name__} reads no inotify: not Linux")
    group = next(iter(observer.emitters))._inotify
    errors: list[BaseException] = []
    stopped = threading.Event()
    on_event = group.on_event

    def stop_from_inside(event: object) -> None:
        if not stopped.is_set():
            try:
                assert threading.current_thread() is reader
                tracker.stop()
            except BaseException as exc:  # the failure under test, reported to the main thread
                errors.append(exc)
            stopped.set()
        on_event(event)

    group.on_event = stop_from_inside
    note(paths, "tea", "Tea", "Green tea, no sugar.")
    assert stopped.wait(8) and errors == []
    observer.join(timeout=5)
    reader.join(timeout=5)
    assert not observer.is_alive() and not reader.is_alive() and tracker.take() is None


def test_closing_a_tracker_mid_read_prints_no_error_but_other_watchdog_errors_still_show(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Stopping an observer while its inotify thread sits between two reads makes watchdog log an ERROR and
    # return as if nothing happened; the thread's next read after stop() is that moment, made on purpose.
    import logging

    from vault_agent.memory.watch import ChangeTracker

    paths = agent(tmp_path)
    tracker = ChangeTracker(paths.root, paths.root)
    assert tracker.start()
    emitter = next(iter(tracker._observer.emitters))
    if not hasattr(emitter, "_inotify"):
        tracker.stop()
        pytest.skip(f"{type(emitter).__name__} reads no inotify: not Linux")
    tracker.stop()
    with caplog.at_level(logging.ERROR, logger="watchdog.observers.inotify"):
        emitter.queue_events(0)
        logging.getLogger("watchdog.observers.inotify").error("a real inotify failure")
    assert [r.getMessage() for r in caplog.records] == ["a real inotify failure"]


def test_a_negative_quiet_time_is_refused_before_anything_is_watched(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from vault_agent.cli import main

    agent(tmp_path, "one")
    out = CliRunner().invoke(main, ["--vault", str(tmp_path), "watch", "one", "--quiet", "-1"])
    assert out.exit_code == 2 and "Invalid value for '--quiet': -1.0 is not in the range 0<=x<=3600" in out.output
    assert not (tmp_path / "one" / ".vault-agent" / "index.db").exists()
