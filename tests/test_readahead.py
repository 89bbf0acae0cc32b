"""A long sync reads ahead in forked helper processes: same index, any helper failure falls back, none outlives its caller.

Real forks throughout. usable_cores is set to 2 (two helpers) so that they
run on any machine, however many cores it has.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from memory_helpers import agent, journal_entry, note, page

from vault_agent.memory import catalog, readahead
from vault_agent.memory.catalog import Catalog
from vault_agent.vault.layout import AgentPaths

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="helpers are forked on Linux only")

TABLES = ("files", "notes", "docs", "docs_fts")


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "usable_cores", lambda: 2)
    monkeypatch.setattr(catalog, "BATCH_FILES", 7)


def vault(tmp_path: Path) -> AgentPaths:
    """60 notes (9 batches of 7), one with broken frontmatter, a wiki page, a journal day and a named pipe."""
    paths = agent(tmp_path)
    for i in range(60):
        note(paths, f"n{i:02d}", f"Note {i}", f"Body of note {i} about the boiler [[n{(i + 1) % 60:02d}]]",
             description=f"note number {i}", extra="pinned: true\n" if i % 9 == 0 else "")
    (paths.memory / "broken.md").write_text("---\nname: [unclosed\n---\nbody\n", encoding="utf-8")
    os.mkfifo(paths.memory / "pipe.md")
    page(paths, "wiki/boiler.md", "# Boiler\n\nServiced every spring.\n")
    journal_entry(paths, dt.datetime(2026, 11, 2, 9, 30), "r1", "Check the boiler", did="Booked a service")
    return paths


def record_pids(monkeypatch: pytest.MonkeyPatch, log: Path,
                also: Callable[[str], None] = lambda rel: None) -> None:
    """Every file read appends the reading process's pid to `log` (and runs `also` on its path)."""
    read = catalog._read_file

    def reading(root: Path, rel: str, *args: object) -> object:
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        also(rel)
        return read(root, rel, *args)

    monkeypatch.setattr(catalog, "_read_file", reading)


def readers(log: Path) -> set[int]:
    return {int(line) for line in log.read_text().split()}


def build(paths: AgentPaths) -> dict[str, list[tuple[object, ...]]]:
    """Index the agent from nothing; every row of the index."""
    for db_file in paths.state.glob("index.db*"):
        db_file.unlink()
    with Catalog(paths) as cat:
        stats = cat.sync()
    # 60 notes, the wiki page and the journal day; the broken note is indexed as a finding, left out of search
    assert (stats.added, stats.skipped) == (62, 1)
    db = sqlite3.connect(paths.state / "index.db")
    try:
        return {t: db.execute(f"SELECT rowid, * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        db.close()


def serial_build(paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[object, ...]]]:
    with monkeypatch.context() as m:
        m.setattr(readahead, "usable_cores", lambda: 1)
        return build(paths)


def test_a_long_sync_read_by_a_helper_writes_the_same_index_as_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = vault(tmp_path)
    expected = serial_build(paths, monkeypatch)
    log = tmp_path / "pids"
    record_pids(monkeypatch, log)
    assert build(paths) == expected
    assert len(readers(log)) == 2 and os.getpid() not in readers(log)  # the two helpers read it all


def test_a_sync_of_few_batches_forks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = agent(tmp_path)
    for i in range(7 * (readahead.HELP_AFTER - 1)):
        note(paths, f"n{i}", f"Note {i}", "body")
    log = tmp_path / "pids"
    record_pids(monkeypatch, log)
    with Catalog(paths) as cat:
        assert cat.sync().added == 7 * (readahead.HELP_AFTER - 1)
    assert readers(log) == {os.getpid()}


def test_a_helper_that_dies_mid_sync_costs_only_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = vault(tmp_path)
    expected = serial_build(paths, monkeypatch)
    caller = os.getpid()

    def die_in_a_helper(rel: str) -> None:
        if rel == "memory/n30.md" and os.getpid() != caller:
            os._exit(3)

    log = tmp_path / "pids"
    record_pids(monkeypatch, log, die_in_a_helper)
    assert build(paths) == expected
    assert len(readers(log)) == 3 and os.getpid() in readers(log)  # two helpers, then the caller


def test_a_batch_a_helper_fails_on_is_read_again_by_the_caller_who_gets_any_error_itself() -> None:
    caller = os.getpid()

    def flaky(batch: int) -> int:
        if batch == 5 and os.getpid() != caller:
            raise OSError("only in the helper")
        return batch * 10

    assert list(readahead.read_in_order(range(9), flaky)) == [k * 10 for k in range(9)]

    def broken(batch: int) -> int:
        if batch == 5:
            raise ValueError("batch 5 is bad")
        return batch

    results = readahead.read_in_order(range(9), broken)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="batch 5 is bad"):
        next(results)


CALLER = """
import os, sys, time
from vault_agent.memory import readahead
readahead.usable_cores = lambda: 2

def slow(batch):
    time.sleep(0.2)
    return batch

for k in readahead.read_in_order(range(1000), slow):
    if k == 2:
        import multiprocessing
        print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
"""


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":  # exited, waiting to be reaped
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["SIGKILL to the caller", "Ctrl-C to the whole process group"])
def test_no_helper_outlives_its_caller(tmp_path: Path, how: str) -> None:
    script = tmp_path / "caller.py"
    script.write_text(textwrap.dedent(CALLER))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout is not None
    helpers = [int(p) for p in proc.stdout.readline().split()]
    assert len(helpers) == 2
    if how.startswith("SIGKILL"):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    else:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert err.decode().count("KeyboardInterrupt") == 1  # the caller's own; the helper ignores Ctrl-C
    for helper in helpers:
        assert gone_within(helper, 5), f"helper {helper} still running after {how}"
