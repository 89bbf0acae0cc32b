"""`vault-agent dream` as a real subprocess stopped by a real signal: Ctrl-C or SIGTERM while it is still
planning leaves its interrupted record and a one-line message, never "Aborted!"."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from memory_helpers import agent, files_snapshot, journal_entry, note

import vault_agent
from vault_agent.vault import journal, runlog
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.layout import AgentPaths

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT and SIGTERM semantics are POSIX")

TEA = ("Maya drinks green tea in the afternoon, no sugar, and never after six in the evening. She buys it loose "
       "from the Tea Company on the Haarlemmerstraat and brews it for three minutes at eighty degrees.")
# The child stops in the middle of planning (the notes are read, MinHash is next) until its stdin is closed:
# the test's signal then arrives at a known point, without a sleep racing the plan.
PAUSED_IN_PLAN = """
import sys
from vault_agent.cli import main
from vault_agent.memory import dream

similar_pairs = dream.similar_pairs

def paused(*args, **kwargs):
    print("planning", flush=True)
    sys.stdin.readline()
    return similar_pairs(*args, **kwargs)

dream.similar_pairs = paused
main(sys.argv[1:], prog_name="vault-agent")
"""


@pytest.fixture
def paths(tmp_path: Path) -> AgentPaths:
    """An agent with something for every step: duplicates, an expired note, a past journal day."""
    paths = agent(tmp_path)
    note(paths, "tea", "Prefers green tea", TEA, type="user", extra="updated: 2026-03-01\n")
    note(paths, "tea-copy", "Tea", TEA, type="user", extra="updated: 2026-01-01\n")
    note(paths, "voucher", "Dentist voucher", "Half-price cleaning.", extra="expires: 2020-06-30\n")
    journal_entry(paths, dt.datetime.combine(dt.date.today() - dt.timedelta(days=1), dt.time(9)), "r1", "Plan")
    return paths


def child(*args: str) -> subprocess.Popen[str]:
    # The package of this checkout, wherever pytest runs from.
    pythonpath = str(Path(vault_agent.__file__).resolve().parents[1])
    return subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": pythonpath})


def run_records(paths: AgentPaths) -> list[dict]:
    return list(runlog.iter_runs(AgentFolder(paths.root).read_log().records))


def journal_statuses(paths: AgentPaths) -> list[str]:
    return [e.status for p in sorted(paths.journal.rglob("*.md")) for e in journal.parse_day(p.read_text())]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_dream_stopped_while_planning_is_logged_as_interrupted_and_changes_nothing(
        paths: AgentPaths, sig: signal.Signals) -> None:
    memory = files_snapshot(paths.memory)
    proc = child("-c", PAUSED_IN_PLAN, "--vault", str(paths.root.parent), "dream", "a")
    assert proc.stdout is not None and proc.stdout.readline() == "planning\n"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert [line for line in err.splitlines() if line] == [
        "interrupted (the dream was logged as interrupted, with the steps it had done)"]
    assert "Aborted!" not in err and "Traceback" not in err and "todo:" not in out  # no plan was made
    [record] = run_records(paths)
    assert (record["status"], record["work_item"], record["error"]) == (
        "interrupted", "consolidate memory (dream)", "interrupted by the user")
    assert (record["dream"], record["notes_written"]) == ([], [])
    assert journal_statuses(paths) == ["ok", "interrupted"]  # the day it would have summarized, and the dream
    assert files_snapshot(paths.memory) == memory


def test_a_dry_run_stopped_while_planning_says_so_in_one_line_and_writes_nothing(paths: AgentPaths) -> None:
    before = files_snapshot(paths.root)
    proc = child("-c", PAUSED_IN_PLAN, "--vault", str(paths.root.parent), "dream", "a", "--dry-run")
    assert proc.stdout is not None and proc.stdout.readline() == "planning\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert [line for line in err.splitlines() if line] == ["interrupted (a dry run: nothing was changed or logged)"]
    assert files_snapshot(paths.root) == before and not paths.state.exists()

