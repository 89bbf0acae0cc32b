"""`vault-agent watch`: a real file watcher keeps indexes fresh while files are edited, debounced, dot-files ignored;
idle workers sleep, lines come out whole, and stopping is prompt even while a sync waits on an index lock."""

from __future__ import annotations

import os
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


class Watch:
    """`vault-agent watch` in a process of its own, its output lines collected as they come."""

    def __init__(self, vault: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "watch",
                                      "--quiet", "0.2", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.rstrip("\n"))

    def said(self, text: str) -> list[str]:
        return [line for line in self.err if text in line]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(5)
        return code


def indexed_ro(paths: AgentPaths) -> set[str]:
    """The indexed paths as the file on disk holds them, read without creating or syncing anything."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"{(paths.state / 'index.db').as_uri()}?mode=ro", uri=True)) as conn:
            return {row[0] for row in conn.execute("SELECT path FROM files")}
    except sqlite3.Error:
        return set()


def test_a_misnamed_or_broken_agent_folder_is_one_warning_and_the_others_stay_watched(tmp_path: Path) -> None:
    one = agent(tmp_path, "one")
    watch = Watch(tmp_path)
    try:
        assert eventually(lambda: "memory/x.md" not in indexed_ro(one) and (one.state / "index.db").exists())
        misnamed = tmp_path / "My Agent"
        misnamed.mkdir()
        (misnamed / "model.md").write_text("---\nprovider: replay\n---\n")
        broken = agent(tmp_path, "broken")
        (broken.root / ".vault-agent").write_text("not a folder")
        assert eventually(lambda: watch.said("'My Agent' is not a valid agent name")
                          and watch.said(f"{broken.state}: not a folder"), timeout_s=15)
        late = agent(tmp_path, "late")  # found by a later look for agents, which must not warn again
        assert eventually(lambda: watch.said("[late] now watching"), timeout_s=15)
        note(one, "plum", "Plum", "plum tart")
        note(late, "fig", "Fig", "fig jam")
        assert eventually(lambda: "memory/plum.md" in indexed_ro(one) and "memory/fig.md" in indexed_ro(late))
        assert watch.proc.poll() is None, watch.err
        assert len(watch.said("My Agent")) == 1 and len(watch.said("not a folder")) == 1, watch.err
        assert "rename the folder to my-agent" in watch.said("My Agent")[0]
        assert "move this file aside" in watch.said("not a folder")[0]
    finally:
        assert watch.stop() == 0, watch.err


def watching(roots: list[Path], **kwargs: object) -> tuple[threading.Thread, threading.Event, list[str], list[object]]:
    """watch_agents in a thread: (thread, stop, lines said, stats of each sync that worked)."""
    stop = threading.Event()
    said: list[str] = []
    syncs: list[object] = []
    watcher = threading.Thread(target=watch_agents, args=(roots, stop),
                               kwargs={"quiet_s": 0.2, "say": said.append,
                                       "on_sync": lambda name, stats: syncs.append(stats), **kwargs})
    watcher.start()
    return watcher, stop, said, syncs


def test_a_sync_that_failed_keeps_its_edits_and_is_retried_without_another_edit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from vault_agent.memory import catalog, watch

    monkeypatch.setattr(catalog, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(watch, "RETRY_S", 0.3)
    paths = agent(tmp_path)
    note(paths, "first", "First", "apples")
    watcher, stop, said, syncs = watching([paths.root])
    assert eventually(lambda: len(syncs) == 1)
    holder = sqlite3.connect(paths.state / "index.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's long write
        note(paths, "kiwi", "Kiwi", "kiwi fruit")
        assert eventually(lambda: any("sync failed" in line for line in said))
        time.sleep(1.0)  # several retries meanwhile, all failing the same way
        holder.execute("ROLLBACK")
        assert eventually(lambda: "memory/kiwi.md" in indexed_ro(paths))
        assert eventually(lambda: "[a] sync works again" in said)
        failed = [line for line in said if "sync failed" in line]
        assert len(failed) == 1 and "locked by another process" in failed[0] and "index.db" in failed[0], said
    finally:
        holder.close()
        stop.set()
        watcher.join(5)


# Holds the write lock of the index given as argument, as a long `vault-agent run` or `dream` can, until stdin closes.
_HOLD_INDEX = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
"""


def test_an_agent_whose_sync_waits_on_its_index_lock_holds_back_no_other(tmp_path: Path) -> None:
    one, two = agent(tmp_path, "one"), agent(tmp_path, "two")
    watcher, stop, said, syncs = watching([one.root, two.root])
    try:
        assert eventually(lambda: len(syncs) == 2)  # both first syncs
        # Leaving the block closes the holder's stdin: it ends, and its lock with it.
        with subprocess.Popen([sys.executable, "-c", _HOLD_INDEX, str(one.state / "index.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            note(one, "kiwi", "Kiwi", "kiwi fruit")
            time.sleep(1.0)  # the edit has settled: one's sync now waits on the lock, for up to 30 s
            note(two, "fig", "Fig", "fig jam")
            assert eventually(lambda: "memory/fig.md" in indexed_ro(two), timeout_s=5)
            assert "memory/kiwi.md" not in indexed_ro(one)  # still waiting meanwhile
        assert eventually(lambda: "memory/kiwi.md" in indexed_ro(one))  # the wait ends in a sync, not a failure
        assert not [line for line in said if "failed" in line], said
    finally:
        stop.set()
        watcher.join(5)
    assert not watcher.is_alive()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("vault-agent-watch-")]

def test_a_long_lived_agent_whose_sync_failed_syncs_the_same_edits_next_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from vault_agent.errors import StorageError
    from vault_agent.memory import catalog
    from vault_agent.runner import Agent

    monkeypatch.setattr(catalog, "BUSY_TIMEOUT_MS", 200)
    paths = agent(tmp_path)
    note(paths, "first", "First", "apples")
    with Agent(paths.root, env={"ANTHROPIC_API_KEY": "x"}, watch=True) as live:
        live.context("apples")
        holder = sqlite3.connect(paths.state / "index.db", isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            note(paths, "kiwi", "Kiwi", "kiwi fruit")
            time.sleep(0.3)  # for the OS to report the edit to the Agent's tracker

            def fails() -> bool:
                try:
                    live.context("kiwi")
                except StorageError:
                    return True
                return False

            assert eventually(fails)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        live.context("kiwi")
        assert "memory/kiwi.md" in indexed_ro(paths)


def test_an_index_deleted_or_overwritten_while_watching_is_built_again_whole(tmp_path: Path) -> None:
    paths = agent(tmp_path)
    for i in range(3):
        note(paths, f"n{i}", f"N{i}", "apples")
    watcher, stop, said, syncs = watching([paths.root])
    try:
        assert eventually(lambda: len(syncs) == 1)
        for suffix in ("", "-wal", "-shm"):  # documented as safe to delete at any time
            Path(f"{paths.state / 'index.db'}{suffix}").unlink(missing_ok=True)
        note(paths, "kiwi", "Kiwi", "kiwi fruit")
        everything = {"memory/n0.md", "memory/n1.md", "memory/n2.md", "memory/kiwi.md"}
        assert eventually(lambda: indexed_ro(paths) == everything)
        db = paths.state / "index.db"
        with open(db, "r+b") as f:
            f.seek(4096)
            f.write(os.urandom(max(db.stat().st_size - 4096, 8192)))
        note(paths, "fig", "Fig", "fig jam")
        assert eventually(lambda: indexed_ro(paths) == everything | {"memory/fig.md"})
        assert not [line for line in said if "failed" in line], said
    finally:
        stop.set()
        watcher.join(5)


@pytest.mark.parametrize("named", [False, True], ids=["every-agent", "one-agent"])
def test_a_deleted_agent_is_dropped_and_watched_again_once_it_is_back(tmp_path: Path, named: bool) -> None:
    import shutil

    one, two = agent(tmp_path, "one"), agent(tmp_path, "two")
    watch = Watch(tmp_path, *(["two"] if named else []))
    try:
        assert eventually(lambda: (two.state / "index.db").exists() and (named or (one.state / "index.db").exists()))
        backup = tmp_path.parent / f"{tmp_path.name}-two"
        shutil.copytree(two.root, backup)
        shutil.rmtree(two.root)
        assert eventually(lambda: watch.said(f"[two] stopped watching: {two.root}"), timeout_s=15), watch.err
        shutil.copytree(backup, two.root)
        assert eventually(lambda: watch.said("[two] now watching"), timeout_s=15)
        note(two, "quince", "Quince", "quince jelly")
        assert eventually(lambda: "memory/quince.md" in indexed_ro(two))
    finally:
        assert watch.stop() == 0, watch.err


def test_what_is_wrong_with_a_note_is_said_once_and_again_when_its_file_changes(tmp_path: Path) -> None:
    paths = agent(tmp_path)
    bad = paths.memory / "bad.md"
    bad.write_text("---\ntype: [oops\n---\nbody\n")
    watcher, stop, said, syncs = watching([paths.root])
    try:
        assert eventually(lambda: len(syncs) == 1)
        assert [line for line in said if "bad.md" in line and "invalid YAML" in line] == said and len(said) == 1
        note(paths, "good", "Good", "fine")
        assert eventually(lambda: len(syncs) == 2)
        assert len(said) == 1
        bad.write_text("---\ntype: [oops\n---\nbody, edited\n")
        assert eventually(lambda: len(syncs) == 3)
        assert len(said) == 2 and "bad.md" in said[1]
    finally:
        stop.set()
        watcher.join(5)


def test_watching_a_vault_folder_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "vault_agent.cli", "--vault", str(tmp_path / "nowhere"), "watch"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr == f"error: {tmp_path / 'nowhere'}: vault folder does not exist (fix: create an agent with: " \
                         "vault-agent init NAME, or pass --vault DIR)\n"


def test_a_file_written_without_pause_does_not_hold_back_the_sync_of_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import watch

    monkeypatch.setattr(watch, "MAX_WAIT_S", 1.0)
    paths = agent(tmp_path)
    busy = note(paths, "busy", "Busy", "log line")
    watcher, stop, said, syncs = watching([paths.root], quiet_s=0.5)
    try:
        assert eventually(lambda: len(syncs) == 1)
        note(paths, "other", "Other", "unrelated")
        deadline = time.monotonic() + 8
        while "memory/other.md" not in indexed_ro(paths) and time.monotonic() < deadline:
            with busy.open("a") as f:  # more often than the quiet time: never settles
                f.write("more\n")
            time.sleep(0.1)
        assert "memory/other.md" in indexed_ro(paths)
    finally:
        stop.set()
        watcher.join(5)


def test_sigterm_stops_watch_during_a_first_index_keeping_its_committed_batches(tmp_path: Path) -> None:
    import sqlite3
    from contextlib import closing

    big, small = agent(tmp_path, "a-big"), agent(tmp_path, "b-small")
    for i in range(6000):  # twelve batches: the signal comes while they are written
        (big.memory / f"n{i}.md").write_text(f"---\ntype: reference\nname: N{i}\n---\nbody {i}\n")
    note(small, "one", "One", "one")
    watch = Watch(tmp_path)
    try:
        assert eventually(lambda: len(indexed_ro(big)) > 0, timeout_s=30)
        # Synced by a worker of its own, the small agent did not wait for the big one's first index.
        assert eventually(lambda: indexed_ro(small) == {"memory/one.md"}) and len(indexed_ro(big)) < 6000
    finally:
        code = watch.stop()
    assert code == 0, watch.err
    done = indexed_ro(big)
    assert 0 < len(done) < 6000 and len(done) % 500 == 0  # whole batches, and no more after the signal
    with closing(sqlite3.connect(f"{(big.state / 'index.db').as_uri()}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def _wake_ups(thread: threading.Thread) -> int:
    """How many times `thread` has gone to sleep and been woken since it started (Linux's /proc)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("voluntary_ctxt_switches"))


def test_an_idle_watch_worker_sleeps_until_a_change_instead_of_waking_periodically(tmp_path: Path) -> None:
    if not Path("/proc/self/task").is_dir():
        pytest.skip("no /proc/self/task to count a thread's wake-ups: not Linux")
    one, two = agent(tmp_path, "one"), agent(tmp_path, "two")
    watcher, stop, said, syncs = watching([one.root, two.root])
    try:
        assert eventually(lambda: len(syncs) == 2)  # both first syncs: nothing more to do
        workers = [t for t in threading.enumerate() if t.name in ("vault-agent-watch-one", "vault-agent-watch-two")]
        assert len(workers) == 2
        before = [_wake_ups(w) for w in workers]
        time.sleep(1.0)  # the span measured, not a wait for something: a worker waking every 50 ms does 20 times
        woken = [_wake_ups(w) - n for w, n in zip(workers, before)]
        assert max(woken) <= 2, woken  # at most the end of the loop that followed the first sync
        note(one, "kiwi", "Kiwi", "kiwi fruit")  # and a change still wakes it
        assert eventually(lambda: "memory/kiwi.md" in indexed_ro(one))
    finally:
        stop.set()
        watcher.join(5)
    assert not watcher.is_alive()


def test_each_look_for_new_agents_lists_the_vault_folder_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typing import Any

    from click.testing import CliRunner

    from vault_agent.cli import main
    from vault_agent.memory import watch

    agent(tmp_path, "one")
    listed: list[str] = []

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(path: Any = ".") -> Any:
            if isinstance(path, (str, os.PathLike)) and Path(path).resolve() == tmp_path.resolve():
                listed.append(threading.current_thread().name)
            return real(path)
        return call

    monkeypatch.setattr(os, "listdir", counting(os.listdir))
    monkeypatch.setattr(os, "scandir", counting(os.scandir))
    monkeypatch.setattr(watch, "POLL_S", 0.05)
    per_look: list[int] = []
    real_watch = watch.watch_agents

    def watch_counting(roots: list[Path], stop: threading.Event, *, discover: Callable[[], list[Path]],
                       **kwargs: Any) -> None:
        def look() -> list[Path]:  # the CLI's own discover, with the listings it makes counted
            listed.clear()
            found = discover()
            per_look.append(len(listed))
            if len(per_look) == 3:
                stop.set()
            return found

        real_watch(roots, stop, discover=look, **kwargs)

    monkeypatch.setattr(watch, "watch_agents", watch_counting)
    out = CliRunner().invoke(main, ["--vault", str(tmp_path), "watch"])
    assert out.exit_code == 0, out.output
    assert per_look == [1, 1, 1]


class _Overlaps:
    """A callback that notices being called while another call of it has not returned: each call waits, inside,
    for a second one to come in (which proves an overlap) or for half a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self.most = 0  # the most calls inside at once
        self.calls = 0
        self._second = threading.Event()

    def __call__(self, *args: object) -> None:
        with self._lock:
            self.calls += 1
            self._inside += 1
            self.most = max(self.most, self._inside)
            if self._inside > 1:
                self._second.set()
        self._second.wait(0.5)
        with self._lock:
            self._inside -= 1


def test_lines_of_several_workers_are_said_one_at_a_time(tmp_path: Path) -> None:
    roots = []
    for name in ("one", "two", "three"):
        paths = agent(tmp_path, name)
        (paths.memory / "bad.md").write_text("---\ntype: [oops\n---\nbody\n")  # a finding said by its first sync
        roots.append(paths.root)
    callback = _Overlaps()
    stop = threading.Event()
    watcher = threading.Thread(target=watch_agents, args=(roots, stop),
                               kwargs={"quiet_s": 0.2, "say": callback, "on_sync": callback})
    watcher.start()
    try:
        assert eventually(lambda: callback.calls == 6)  # a finding and a sync of each agent
    finally:
        stop.set()
        watcher.join(10)
    assert callback.most == 1


def test_watch_on_a_terminal_writes_whole_lines_only(tmp_path: Path) -> None:
    import pty

    vault = tmp_path / "vault"
    for name in ("a", "b"):
        paths = agent(vault, name)
        for i in range(501):  # more than a batch: the first index says how far it got
            (paths.memory / f"n{i}.md").write_text(f"---\ntype: reference\nname: N{i}\n---\nbody {i}\n")
        (paths.memory / "bad.md").write_text("---\ntype: [oops\n---\nbody\n")
    reader_fd, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "watch", "--quiet", "0.2"],
                            stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(reader_fd, 4096)
            except OSError:  # EIO: the watch has ended and closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert eventually(lambda: b"a: indexed 502 files" in b"".join(chunks)
                          and b"b: indexed 502 files" in b"".join(chunks), timeout_s=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        reader.join(5)
        os.close(reader_fd)
    assert code == 0
    lines = b"".join(chunks).decode().split("\r\n")  # a terminal ends each line with \r\n
    assert not [line for line in lines if "\r" in line], lines  # none rewritten in place, none taking in another
    for name in ("a", "b"):
        assert f"{name}: indexing 502 new or changed files (0 done)" in lines
        assert len([line for line in lines if line.startswith(f"{name}: indexed 502 files in ")]) == 1
        assert len([line for line in lines if f"{name}/memory/bad.md" in line]) == 1


def test_sigterm_stops_watch_at_once_while_a_sync_waits_on_the_index_lock_and_the_next_sync_catches_up(
        tmp_path: Path) -> None:
    import sqlite3
    from contextlib import closing

    vault = tmp_path / "vault"
    paths = agent(vault)
    note(paths, "first", "First", "apples")
    watch = Watch(vault)
    try:
        assert eventually(lambda: indexed_ro(paths) == {"memory/first.md"})
        with subprocess.Popen([sys.executable, "-c", _HOLD_INDEX, str(paths.state / "index.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            staged = tmp_path / "wiki"
            staged.mkdir()
            for i in range(501):
                (staged / f"p{i}.md").write_text(f"# P{i}\n\npage {i}\n")
            staged.rename(paths.root / "wiki")  # one event, one sync of 501 new files: it says so, then waits
            assert eventually(lambda: watch.said("a: indexing 501 new or changed files (0 done)"))
            started = time.monotonic()
            watch.proc.send_signal(signal.SIGTERM)
            code = watch.proc.wait(timeout=5)  # not the 30 s the lock could still be waited for
            took = time.monotonic() - started
    finally:
        if watch.proc.poll() is None:
            watch.proc.kill()
        watch.stop()
    assert code == 0 and took < 5, watch.err
    assert not watch.said("failed"), watch.err
    assert indexed_ro(paths) == {"memory/first.md"}  # nothing of the batch it waited to write
    with closing(sqlite3.connect(f"{(paths.state / 'index.db').as_uri()}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    with Catalog(paths) as cat:  # what the next watch or run does first
        assert cat.sync().added == 501
    assert len(indexed_ro(paths)) == 502


def _in_a_timed_sleep(pid: int) -> bool:
    """Whether the main thread of process `pid` sleeps for a time (Linux's /proc): how a wait for a lock that
    is tried again and again shows from outside."""
    return Path(f"/proc/{pid}/wchan").read_text() == "hrtimer_nanosleep"


def test_ctrl_c_stops_an_index_command_at_once_while_it_waits_on_the_index_lock(tmp_path: Path) -> None:
    if not Path(f"/proc/{os.getpid()}/wchan").is_file():
        pytest.skip("no /proc/PID/wchan to see where a process waits: not Linux")
    paths = agent(tmp_path)
    Catalog(paths).close()  # the index exists: what is waited for is the lock to write the first batch
    for i in range(501):
        note(paths, f"n{i}", f"N{i}", "pears")
    with subprocess.Popen([sys.executable, "-c", _HOLD_INDEX, str(paths.state / "index.db")],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        proc = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(tmp_path), "index", "a"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            assert proc.stderr.readline() == "a: indexing 501 new or changed files (0 done)\n"
            assert eventually(lambda: _in_a_timed_sleep(proc.pid))  # done reading: waiting for the lock
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=5)  # not the 30 s the lock could still be waited for
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert code != 0 and took < 5
    assert indexed_ro(paths) == set()
