"""`vault-agent daemon` as a real subprocess against the fake model server: no overlap, a concurrency
limit, a failing agent paused into PAUSED.md, a clean exit on SIGTERM with every run logged."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vault_agent.ops import schedule as sched
from vault_agent.testing.fakellm import FakeLLMServer, Reply
from vault_agent.vault import chain, journal, runlog
from vault_agent.vault.folder import AgentFolder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM semantics are POSIX")

SLOW_S = 1.1  # each model call takes longer than the 1 s schedule: overlapping runs would show


def _agent(vault: Path, name: str, model_md: str, when: str = "every 1s") -> AgentFolder:
    root = vault / name
    (root / "persona").mkdir(parents=True)
    (root / "persona" / "IDENTITY.md").write_text(f"# {name}\n")
    (root / "model.md").write_text(model_md)
    (root / "tools.md").write_text("---\ntools: []\n---\n")
    (root / "schedule.md").write_text(f"---\nschedule:\n  - id: tick\n    when: {when}\n"
                                      f"    work_item: Check in, {name}.\n---\n")
    return AgentFolder(root)


def _runs(folder: AgentFolder) -> list[dict]:
    return list(runlog.iter_runs(folder.read_log().records))


def _interval(r: dict) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime.fromisoformat(r["started"]), dt.datetime.fromisoformat(r["ts"])


def test_daemon_runs_two_agents_without_overlap_pauses_a_failing_one_and_stops_on_sigterm(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    with FakeLLMServer() as server:
        server.default = Reply("checked", input_tokens=50, output_tokens=5, delay_s=SLOW_S)
        good = f"---\nprovider: anthropic\nmodel: claude-sonnet-5\nbase_url: {server.anthropic_base_url}\n---\n"
        alpha, beta = _agent(vault, "alpha", good), _agent(vault, "beta", good)
        broken = _agent(vault, "broken", "---\nprovider: nonsense\nmodel: x\n---\n")
        env = {**os.environ, "ANTHROPIC_API_KEY": "test-key"}
        proc = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "daemon",
                                 "--max-concurrent", "2", "--pause-after", "2"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                    len(_runs(alpha)) >= 3 and len(_runs(beta)) >= 3 and (broken.root / "PAUSED.md").exists()):
                time.sleep(0.2)
            # SIGTERM just after a model call arrives (it takes SLOW_S): mid-run, whatever the gaps between runs.
            seen, deadline = len(server.requests), time.monotonic() + 10
            while len(server.requests) == seen and time.monotonic() < deadline:
                time.sleep(0.01)
            stopped_at = dt.datetime.now().astimezone()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "daemon: stopped" in err and "Traceback" not in err
    every_run: list[tuple[dt.datetime, dt.datetime]] = []
    for folder in (alpha, beta):
        runs = _runs(folder)
        assert len(runs) >= 3 and all(r["status"] == "ok" for r in runs), runs
        assert all(r["trigger"] == "schedule:tick" for r in runs)
        spans = sorted(_interval(r) for r in runs)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, f"{folder.name}: a run started before the previous one ended"
        every_run += spans
        # Every run the daemon started ended in a record and a journal entry, the last one after SIGTERM too.
        entries = [e for p in sorted(folder.paths.journal.rglob("*.md")) for e in journal.parse_day(p.read_text())]
        assert [e.run_id for e in entries] == [r["run_id"] for r in runs]
        assert chain.verify(runlog.day_files(folder.paths.log)).ok
    # Runs back to back: SIGTERM came mid-run, and the daemon let that run finish and log before exiting.
    assert max(end for _, end in every_run) > stopped_at
    # The vault-wide limit: never more than 2 runs at once.
    for start, _ in every_run:
        assert sum(1 for s, e in every_run if s <= start < e) <= 2
    broken_runs = _runs(broken)
    assert [r["status"] for r in broken_runs] == ["error", "error"], "paused after 2 failures, then left alone"
    info = sched.pause_info(broken)
    assert info is not None and info["failures"] == 2 and info["last_run_id"] == broken_runs[-1]["run_id"]
    assert "unknown provider" in info["last_error"]
    assert "[broken] paused after 2 failed runs" in err


def test_a_second_daemon_for_the_same_vault_refuses_in_one_line(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    _agent(vault, "alpha", "---\nprovider: anthropic\nmodel: claude-sonnet-5\n---\n", when="daily at 03:00")
    first = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "daemon"],
                             stderr=subprocess.PIPE, text=True)
    try:
        assert first.stderr is not None and "daemon: watching" in first.stderr.readline()
        second = subprocess.run([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "daemon"],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        assert "another vault-agent daemon is running" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


def test_a_run_still_going_after_the_grace_period_is_interrupted_and_logged(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    with FakeLLMServer() as server:
        server.default = Reply("too late", delay_s=1.0)
        slow = _agent(vault, "slowpoke", f"---\nprovider: anthropic\nmodel: claude-sonnet-5\n"
                                         f"base_url: {server.anthropic_base_url}\n---\n")
        proc = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "daemon",
                                 "--grace", "0.2"], env={**os.environ, "ANTHROPIC_API_KEY": "test-key"},
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not server.requests:
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0 and "interrupted at shutdown" in err
    [run] = _runs(slow)
    assert run["status"] == "interrupted" and run["trigger"] == "schedule:tick"
