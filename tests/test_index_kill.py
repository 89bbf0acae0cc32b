"""A SIGKILL at any moment of indexing, or several writers at once, leave an index that syncs to the right answer."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from memory_helpers import agent, note

from vault_agent.memory.catalog import Catalog
from vault_agent.memory.search import search

QUERIES = ["invoice", "dentist teeth", "topic 7", "garden"]
WORDS = "invoice dentist garden budget travel review kitchen meeting teeth client".split()


def corpus(paths, n: int, version: int) -> None:
    rng = random.Random(version)
    for i in range(n):
        body = " ".join(rng.choices(WORDS, k=30)) + f" topic {i % 50} v{version}"
        note(paths, f"n{i}", f"Note {i}", body, description=f"{WORDS[i % len(WORDS)]} {i}")


def results(cat: Catalog) -> list[list[tuple[str, float]]]:
    return [[(h.path, round(h.score, 6)) for h in search(cat, q, limit=15)] for q in QUERIES]


def index_cmd(vault: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "index", "a", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def index_and_kill(vault: Path, delay_s: float) -> bool:
    """Run `vault-agent index a` and SIGKILL it after delay_s; True when it was killed before finishing."""
    proc = index_cmd(vault)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    return proc.wait() == -signal.SIGKILL


def test_a_kill_during_indexing_leaves_a_usable_index(tmp_path: Path) -> None:
    paths = agent(tmp_path)
    rng = random.Random(os.getpid())
    corpus(paths, 1000, version=99)
    started = time.monotonic()
    assert index_cmd(tmp_path, "--rebuild").wait() == 0
    full_s = time.monotonic() - started  # interpreter start-up included: kills land at random points after it
    killed = 0
    for round_no in range(4):
        corpus(paths, 1000, version=round_no)  # every round re-indexes every note
        if round_no == 0:
            (paths.state / "index.db").unlink()  # and the first builds from nothing
        killed += index_and_kill(tmp_path, rng.uniform(0.35, 0.95) * full_s)
        db = sqlite3.connect(paths.state / "index.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        with Catalog(paths) as cat:
            results(cat)  # searching what is there works, whatever state the kill left
            cat.sync()
            assert cat.conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check')") is not None
            synced = results(cat)
            counts = cat.conn.execute("SELECT (SELECT count(*) FROM docs), (SELECT count(*) FROM docs_fts), "
                                      "(SELECT count(*) FROM files)").fetchone()
        with Catalog(paths) as cat:
            cat.rebuild()
            assert results(cat) == synced
        assert counts == (1000, 1000, 1000)
    assert killed >= 2  # most kills landed while indexing was still going on


def test_two_processes_indexing_while_a_person_edits_leave_a_consistent_index(tmp_path: Path) -> None:
    paths = agent(tmp_path)
    corpus(paths, 600, version=1)
    procs = [index_cmd(tmp_path, "--rebuild"), index_cmd(tmp_path), index_cmd(tmp_path)]
    for i in range(0, 600, 7):  # a person editing meanwhile
        note(paths, f"n{i}", f"Note {i}", f"edited while indexing {i}")
    assert [p.wait() for p in procs] == [0, 0, 0]
    with Catalog(paths) as cat:
        cat.sync()
        synced = results(cat)
        assert cat.conn.execute("SELECT count(*) FROM docs").fetchone()[0] == 600
        assert search(cat, "edited while indexing 595")[0].path == "memory/n595.md"
    with Catalog(paths) as cat:
        cat.rebuild()
        assert results(cat) == synced
