"""`vault-agent run` as a real subprocess against the fake model server, stopped by a real signal.

SIGTERM (what cron, launchd and systemd send) is logged as Ctrl-C is. SIGKILL cannot be caught: the next run
to take the lock logs the killed run from the owner file it left, once, and never a second time for a run
killed after writing its own record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import pytest
from memory_helpers import note
from security_kit import KEY, store_secret

import vault_agent
from vault_agent.models.pricing import worst_case_usd
from vault_agent.ops import doctor
from vault_agent.ops.consolidate import run_dream
from vault_agent.runner import DID_FROM_RECORD, Agent
from vault_agent.testing.fakellm import FakeLLMServer, Hang, Reply, ToolUse
from vault_agent.vault import chain, journal, runlog
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.lock import is_locked, mark_logged, run_lock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM and SIGKILL semantics are POSIX")

ENV = {"ANTHROPIC_API_KEY": "test-key", "VAULT_AGENT_MASTER_KEY": KEY}
# Stops the child right after the run's record and journal entry are written, its owner file marked logged or not
# yet (PAUSES), until its stdin is closed: the test's SIGKILL then lands after the run logged itself and before it
# released the lock.
PAUSED_AFTER_LOGGING = """
import sys
from vault_agent.cli import main
from vault_agent.vault import folder

mark_logged = folder.mark_logged

def paused(path):
    MARK_FIRST
    print("logged", flush=True)
    sys.stdin.readline()
    MARK_LAST

folder.mark_logged = paused
main(sys.argv[1:], prog_name="vault-agent")
"""
# The two moments after the record is written: its owner file marked logged, or not yet.
PAUSES = {"marked": PAUSED_AFTER_LOGGING.replace("MARK_FIRST", "mark_logged(path)").replace("MARK_LAST", ""),
          "unmarked": PAUSED_AFTER_LOGGING.replace("MARK_FIRST", "").replace("MARK_LAST", "mark_logged(path)")}

# Stops the child as its run is about to write its journal entry, its log record written, until its stdin is
# closed: the test's SIGKILL then lands between the two.
PAUSED_BEFORE_JOURNAL = """
import sys
from vault_agent.cli import main
from vault_agent.vault.folder import AgentFolder

append_journal = AgentFolder.append_journal

def paused(self, entry):
    print("logged", flush=True)
    sys.stdin.readline()
    return append_journal(self, entry)

AgentFolder.append_journal = paused
main(sys.argv[1:], prog_name="vault-agent")
"""

# Stops a dream after its steps are on disk, as it brings the index up to date, until its stdin is closed: the
# test's SIGKILL then lands after the dream changed memory/ and before it wrote its record.
PAUSED_AFTER_APPLYING = """
import sys
from vault_agent.cli import main
from vault_agent.memory import dream
from vault_agent.memory.catalog import Catalog

apply, sync = dream.apply, Catalog.sync
applied = []

def noted(*args, **kwargs):
    applied.append(True)
    return apply(*args, **kwargs)

def paused(self, *args, **kwargs):
    if applied:
        print("applied", flush=True)
        sys.stdin.readline()
    return sync(self, *args, **kwargs)

dream.apply, Catalog.sync = noted, paused
main(sys.argv[1:], prog_name="vault-agent")
"""


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


@pytest.fixture
def folder(tmp_path: Path, server: FakeLLMServer) -> AgentFolder:
    root = tmp_path / "vault" / "tester"
    (root / "persona").mkdir(parents=True)
    (root / "persona" / "IDENTITY.md").write_text("# Tester\n")
    (root / "model.md").write_text(f"---\nprovider: anthropic\nmodel: claude-sonnet-5\n"
                                   f"base_url: {server.anthropic_base_url}\ntimeout_s: 30\n---\n")
    (root / "tools.md").write_text("---\ntools: []\n---\n")
    (root / "schedule.md").write_text("---\nschedule:\n  - id: tick\n    when: daily at 03:00\n"
                                      "    work_item: Check in.\n---\n")
    return AgentFolder(root)


def child(folder: AgentFolder, *args: str) -> subprocess.Popen[str]:
    # The package of this checkout, wherever pytest runs from.
    pythonpath = str(Path(vault_agent.__file__).resolve().parents[1])
    env = {**os.environ, **ENV, "PYTHONPATH": pythonpath, "VAULT_AGENT_HOME": str(folder.root.parent)}
    return subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def in_model_call(server: FakeLLMServer, proc: subprocess.Popen[str]) -> None:
    """Wait until the run's model call reached the server: the run holds its lock and is mid-run."""
    deadline = time.monotonic() + 30
    while not server.requests and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.requests, proc.communicate(timeout=5)


def said(proc: subprocess.Popen[str], word: str) -> bool:
    """Wait until the child prints `word` on a line of its own (after what the command prints, a dream's plan)."""
    assert proc.stdout is not None
    return any(line == f"{word}\n" for line in iter(proc.stdout.readline, ""))


def run_records(folder: AgentFolder) -> list[dict]:
    return list(runlog.iter_runs(folder.read_log().records))


def entries(folder: AgentFolder) -> list[journal.ParsedEntry]:
    return [e for p in sorted(folder.paths.journal.rglob("*.md")) for e in journal.parse_day(p.read_text())]


def doctor_on_the_lock(folder: AgentFolder) -> list[str]:
    """What `vault-agent doctor` says about the agent's run lock."""
    done = subprocess.run([sys.executable, "-m", "vault_agent.cli", "--vault", str(folder.root.parent), "doctor",
                           "tester"], capture_output=True, text=True, timeout=60, env={**os.environ, **ENV})
    return [line for line in done.stdout.splitlines() if "run.lock" in line]


def owner_file(folder: AgentFolder) -> Path:
    return folder.paths.run_lock.with_name("run.lock.owner.json")


def logged_after_kill(folder: AgentFolder, server: FakeLLMServer, spent: object) -> dict:
    """The record the next run writes for a run SIGKILLed with this `spent` in its run lock's owner file."""
    owner = {"run_id": "20261121T090000-abcdef", "since": "2026-11-21T09:00:00.123+01:00", "pid": 1,
             "trigger": "cli", "work_item": "Check in.", "spent": spent}
    folder.paths.state.mkdir(parents=True, exist_ok=True)
    owner_file(folder).write_text(json.dumps(owner))
    server.script(Reply("done"))
    assert Agent(folder.root, env=ENV).run("Second").status == "ok"
    return run_records(folder)[0]


@pytest.mark.parametrize(("command", "trigger", "code", "said"), [
    (["run", "tester", "-m", "Check in."], "cli", 130, "interrupted (the run was logged as interrupted)"),
    (["schedule", "fire", "tester", "tick"], "schedule:tick", 130, "interrupted (the run was logged as interrupted)"),
    (["chat", "tester"], "chat", 0, "(interrupted; the run was logged)"),
], ids=["run", "schedule-fire", "chat"])
def test_sigterm_mid_run_is_logged_as_interrupted_as_ctrl_c_is(folder: AgentFolder, server: FakeLLMServer,
                                                                command: list[str], trigger: str, code: int,
                                                                said: str) -> None:
    server.script(Hang(30))
    proc = child(folder, "-m", "vault_agent.cli", *command)
    assert proc.stdin is not None
    proc.stdin.write("Check in.\n/cost\n")  # chat's first turn, and a command it must not get to; run reads none
    proc.stdin.flush()
    in_model_call(server, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert said in out + err and "Traceback" not in err and "Aborted!" not in err
    assert "this chat:" not in out  # SIGTERM ended the chat, where Ctrl-C would go on to the next line
    [record] = run_records(folder)
    assert (record["status"], record["trigger"], record["error"]) == ("interrupted", trigger, "interrupted by the user")
    assert [(e.run_id, e.status) for e in entries(folder)] == [(record["run_id"], "interrupted")]
    assert not owner_file(folder).exists()


def test_a_run_killed_mid_run_is_logged_as_killed_once_by_the_next_runs(folder: AgentFolder,
                                                                         server: FakeLLMServer) -> None:
    store_secret(folder.root.parent, "door_code", "castle-hunter-2291")
    server.script(Hang(30))
    proc = child(folder, "-m", "vault_agent.cli", "run", "tester", "-m", "Open with castle-hunter-2291\nthen report.")
    in_model_call(server, proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    owner = json.loads(owner_file(folder).read_text())
    # The owner file names the run well enough for its record, without a stored secret's value.
    assert owner["trigger"] == "cli" and owner["pid"] == proc.pid
    assert owner["work_item"] == "Open with [REDACTED:secret:door_code] then report."
    assert run_records(folder) == []

    # Two runs at once find the same owner file: the one that gets the lock first logs it, the other finds none.
    server.default = Reply("done")
    racers = [child(folder, "-m", "vault_agent.cli", "run", "tester", "-m", f"Racer {i}.") for i in range(2)]
    for racer in racers:
        _, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
    killed, *ok = run_records(folder)
    assert (killed["run_id"], killed["status"], killed["trigger"]) == (owner["run_id"], "killed", "cli")
    assert (killed["work_item"], killed["started"]) == (owner["work_item"], owner["since"])
    assert "killed before it finished" in killed["error"] and killed["error.type"] == "killed"
    assert killed["latency_ms"] is None  # unknown: it ended unseen
    # Its model call was in flight: counted, at the most it can cost, as genai-prices prices the model.
    calling = owner["spent"]["in_flight"]
    upper_bound = round(worst_case_usd("anthropic", "claude-sonnet-5", calling["input_tokens"],
                                       calling["max_output_tokens"]), 6)
    assert (killed["iterations"], killed["cost_usd"], killed[runlog.OUTPUT_TOKENS]) == (1, upper_bound, 0)
    assert sorted(r["work_item"] for r in ok) == ["Racer 0.", "Racer 1."] and {r["status"] for r in ok} == {"ok"}
    first_entry, *later = entries(folder)
    assert (first_entry.run_id, first_entry.status, first_entry.trigger) == (owner["run_id"], "killed", "cli")
    assert first_entry.fields["asked"] == [owner["work_item"]]
    assert first_entry.fields["cost"][0].startswith(f"${upper_bound:.4f} · 0 in · 0 out")
    assert "killed before it finished" in first_entry.fields["problem"][0]
    assert [e.run_id for e in later] == [r["run_id"] for r in ok]
    verdict = chain.verify(runlog.day_files(folder.paths.log))
    assert verdict.ok and not verdict.problems
    assert not owner_file(folder).exists()
    written = [p.read_text() for p in folder.root.rglob("*") if p.suffix in (".md", ".jsonl", ".json")]
    assert written and not any("castle-hunter-2291" in text for text in written)


# A model call in flight as the runner notes it in the owner file.
IN_FLIGHT = {"provider": "anthropic", "model": "claude-sonnet-5", "input_tokens": 10, "max_output_tokens": 4096}


def priced_model_md(server: FakeLLMServer, daily_usd: float) -> str:
    return (f"---\nprovider: anthropic\nmodel: claude-sonnet-5\nbase_url: {server.anthropic_base_url}\n"
            f"timeout_s: 30\nmax_output_tokens: 50000\ncost:\n  daily_usd: {daily_usd}\n"
            "prices:\n  claude-sonnet-5: {input: 1.0, output: 1.0}\n---\n")


def test_a_run_killed_in_a_model_call_is_logged_with_that_call_at_its_upper_bound_which_the_caps_count(
        folder: AgentFolder, server: FakeLLMServer) -> None:
    (folder.root / "model.md").write_text(priced_model_md(server, 5.0))
    (folder.root / "tools.md").write_text("---\ntools: [memory_search]\n---\n")
    # $1 per million tokens: the first call costs $0.92; the second hangs until the kill, and could have cost
    # $0.05 (its output limit) and its input.
    server.script(Reply(tool_calls=[ToolUse("memory_search", {"query": "week"})], input_tokens=900_000,
                        output_tokens=20_000), Hang(30))
    proc = child(folder, "-m", "vault_agent.cli", "run", "tester", "-m", "Plan the week.")
    deadline = time.monotonic() + 30
    while len(server.requests) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.requests) == 2, proc.communicate(timeout=5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    spent = json.loads(owner_file(folder).read_text())["spent"]
    calling = spent["in_flight"]
    assert spent["model_calls"] == 1 and calling["max_output_tokens"] == server.requests[1].body["max_tokens"] == 50_000
    assert (calling["provider"], calling["model"]) == ("anthropic", "claude-sonnet-5") and calling["input_tokens"] > 0
    upper_bound = round(0.92 + (calling["input_tokens"] + 50_000) / 1_000_000, 6)

    # The person lowers the daily cap to $1: the $0.92 spent and the next call's reserve fit under it, with the
    # call in flight at its upper bound they do not.
    (folder.root / "model.md").write_text(priced_model_md(server, 1.0))
    refused = Agent(folder.root, env=ENV).run("Second.")
    killed, second = run_records(folder)
    assert (killed["status"], killed["cost_usd"], killed["iterations"]) == ("killed", upper_bound, 2)
    assert (killed[runlog.INPUT_TOKENS], killed[runlog.OUTPUT_TOKENS]) == (900_000, 20_000)  # what was reported
    assert (killed[runlog.PROVIDER], killed[runlog.REQUEST_MODEL]) == ("anthropic", "claude-sonnet-5")
    assert "in model call 2: this record counts the calls before it as spent and the one in flight at its " \
           f"upper bound (its {calling['input_tokens']:,} input tokens, 50,000 output tokens allowed" in killed["error"]
    assert (refused.status, second["status"], second["error.type"]) == ("refused", "refused", "cap_daily")
    entry = entries(folder)[0]
    assert entry.status == "killed" and entry.fields["cost"][0].startswith(
        f"${upper_bound:.4f} · 900,000 in · 20,000 out")


def test_a_run_killed_in_its_recall_words_call_is_logged_with_that_call_at_its_upper_bound(
        folder: AgentFolder, server: FakeLLMServer) -> None:
    (folder.root / "model.md").write_text(priced_model_md(server, 5.0).removesuffix("---\n") + "recall_words: true\n---\n")
    server.script(Hang(30))
    proc = child(folder, "-m", "vault_agent.cli", "run", "tester", "-m", "Who cuts my hair?")
    in_model_call(server, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    calling = json.loads(owner_file(folder).read_text())["spent"]["in_flight"]
    # The words call's own output limit, not model.md's 50,000: that is what it could have cost.
    assert calling["max_output_tokens"] == server.requests[0].body["max_tokens"] == 64
    server.script(Reply("hair barber"), Reply("done"))
    assert Agent(folder.root, env=ENV).run("Second.").status == "ok"
    killed, second = run_records(folder)
    assert (killed["status"], killed["iterations"]) == ("killed", 1)
    assert killed["cost_usd"] == round((calling["input_tokens"] + 64) / 1_000_000, 6)
    assert (second["iterations"], second["recall_words"]) == (2, "hair barber")


def test_a_run_killed_between_model_calls_is_logged_with_their_spend(folder: AgentFolder,
                                                                      server: FakeLLMServer) -> None:
    # What SIGKILL leaves while a tool runs (a kill in a model call is shown with a real process above).
    spent = {"model_calls": 2, "cost_usd": 0.25, "usage": {"input_tokens": 1000, "output_tokens": 200},
             "provider": "anthropic", "request_model": "claude-sonnet-5", "response_model": "claude-sonnet-5"}
    killed = logged_after_kill(folder, server, spent)
    assert (killed["status"], killed["cost_usd"], killed["iterations"], killed[runlog.OUTPUT_TOKENS]) == (
        "killed", 0.25, 2, 200)
    assert "after 2 model call(s), whose spend this record counts (no call noted in flight)" in killed["error"]


def test_a_call_in_flight_to_a_model_nobody_prices_leaves_the_killed_runs_cost_unknown(
        folder: AgentFolder, server: FakeLLMServer) -> None:
    spent = {"model_calls": 1, "cost_usd": 0.25, "usage": {"input_tokens": 1000}, "provider": "anthropic",
             "in_flight": {**IN_FLIGHT, "model": "claude-nobody-prices-9"}}
    killed = logged_after_kill(folder, server, spent)
    assert (killed["status"], killed["cost_usd"], killed["iterations"]) == ("killed", None, 2)
    assert "in model call 2" in killed["error"] and "at its upper bound" in killed["error"]


def test_a_replay_killed_in_its_call_is_logged_as_spending_nothing(folder: AgentFolder,
                                                                    server: FakeLLMServer) -> None:
    spent = {"model_calls": 0, "cost_usd": 0.0, "usage": {}, "provider": "replay",
             "in_flight": {**IN_FLIGHT, "provider": "replay", "model": "demo"}}
    killed = logged_after_kill(folder, server, spent)
    assert (killed["status"], killed["cost_usd"], killed["iterations"]) == ("killed", 0.0, 1)


@pytest.mark.parametrize("pause", PAUSES)
def test_a_run_killed_after_logging_but_before_releasing_the_lock_is_not_logged_twice(
        folder: AgentFolder, server: FakeLLMServer, pause: str) -> None:
    server.script(Reply("first done"), Reply("second done"))
    proc = child(folder, "-c", PAUSES[pause], "run", "tester", "-m", "First.")
    assert proc.stdout is not None and proc.stdout.readline() == "logged\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert owner_file(folder).exists()  # killed holding the lock
    [first] = run_records(folder)
    assert doctor_on_the_lock(folder) == []  # logged: nothing for the next run to do

    second = Agent(folder.root, env=ENV).run("Second")
    assert [(r["run_id"], r["status"]) for r in run_records(folder)] == [(first["run_id"], "ok"),
                                                                        (second.run_id, "ok")]
    assert [e.status for e in entries(folder)] == ["ok", "ok"]
    assert not owner_file(folder).exists()


@pytest.mark.parametrize("command", ["run", "dream"])
def test_a_run_killed_between_its_log_record_and_its_journal_entry_gets_that_entry_from_the_record(
        folder: AgentFolder, server: FakeLLMServer, command: str) -> None:
    capture = "```capture\ntype: decision\nname: Ship on Fridays\nbody: Fridays it is.\n```"
    server.script(Reply(f"Shipped.\n\n{capture}", input_tokens=1200, output_tokens=80, cache_read_tokens=300),
                  Reply("second done"))
    note(folder.paths, "voucher", "Dentist voucher", "Half-price cleaning.", extra="expires: 2020-06-30\n")
    args = ["run", "tester", "-m", "Ship it."] if command == "run" else ["dream", "tester"]
    proc = child(folder, "-c", PAUSED_BEFORE_JOURNAL, *args)
    assert said(proc, "logged"), proc.communicate(timeout=5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    [first] = run_records(folder)
    assert owner_file(folder).exists() and entries(folder) == []  # killed holding the lock, its record written

    second = Agent(folder.root, env=ENV).run("Second")
    assert [(r["run_id"], r["status"]) for r in run_records(folder)] == [(first["run_id"], "ok"),
                                                                        (second.run_id, "ok")]  # not logged twice
    entry, after = entries(folder)
    assert (entry.run_id, entry.status, entry.trigger, entry.fields["asked"]) == (
        first["run_id"], "ok", "cli" if command == "run" else "dream", [first["work_item"]])
    assert entry.time == first["started"][11:19] and after.run_id == second.run_id
    assert entry.fields["did"] == [DID_FROM_RECORD]  # the reply, which said what it did, is in neither
    if command == "run":  # the entry the run would have written, but for its Did
        assert entry.fields["notes"] == ["[[ship-on-fridays]]"]
        assert entry.fields["cost"][0].startswith(f"${first['cost_usd']:.4f} · 1,200 in · 80 out · 300 cache read "
                                                  "· anthropic:claude-sonnet-5 · ")
    else:  # it archived the voucher: no note written, no model call
        assert "notes" not in entry.fields and entry.fields["cost"][0].startswith(
            "$0.0000 · 0 in · 0 out · 0 cache read · no model call · ")
    assert not owner_file(folder).exists()


def test_a_dream_killed_after_changing_memory_but_before_logging_is_logged_as_killed_by_the_next_run(
        folder: AgentFolder, server: FakeLLMServer) -> None:
    voucher = note(folder.paths, "voucher", "Dentist voucher", "Half-price cleaning.", extra="expires: 2020-06-30\n")
    server.script(Reply("second done"))
    proc = child(folder, "-c", PAUSED_AFTER_APPLYING, "dream", "tester")
    assert said(proc, "applied"), proc.communicate(timeout=5)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    owner = json.loads(owner_file(folder).read_text())  # the dream still held the run lock
    assert not voucher.exists() and run_records(folder) == []  # archived, unlogged

    second = Agent(folder.root, env=ENV).run("Second")
    killed, ok = run_records(folder)
    assert (killed["run_id"], killed["status"], killed["trigger"], killed["work_item"]) == (
        owner["run_id"], "killed", "dream", "consolidate memory (dream)")
    assert (ok["run_id"], ok["status"]) == (second.run_id, "ok")
    assert [e.status for e in entries(folder)] == ["killed", "ok"]
    assert not owner_file(folder).exists()


@pytest.mark.parametrize("pause", PAUSES)
def test_a_dream_killed_after_logging_but_before_releasing_the_lock_is_not_logged_twice(
        folder: AgentFolder, server: FakeLLMServer, pause: str) -> None:
    note(folder.paths, "voucher", "Dentist voucher", "Half-price cleaning.", extra="expires: 2020-06-30\n")
    server.script(Reply("second done"))
    proc = child(folder, "-c", PAUSES[pause], "dream", "tester")
    assert said(proc, "logged"), proc.communicate(timeout=5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert owner_file(folder).exists()  # its record was written while it held the lock
    [dreamt] = run_records(folder)
    assert (dreamt["status"], dreamt["work_item"]) == ("ok", "consolidate memory (dream)")
    assert any(step.startswith("archived memory/voucher.md") for step in dreamt["dream"])

    second = Agent(folder.root, env=ENV).run("Second")
    assert [(r["run_id"], r["status"]) for r in run_records(folder)] == [(dreamt["run_id"], "ok"),
                                                                        (second.run_id, "ok")]
    assert [e.status for e in entries(folder)] == ["ok", "ok"]
    assert not owner_file(folder).exists()


@pytest.mark.parametrize("pause", PAUSES)
def test_a_tool_call_killed_after_logging_but_before_releasing_the_lock_is_not_logged_as_killed(
        folder: AgentFolder, server: FakeLLMServer, pause: str) -> None:
    server.script(Reply("second done"))
    proc = child(folder, "-c", PAUSES[pause], "tools", "call", "tester", "memory_search",
                 "--json", '{"query": "tea"}')
    assert said(proc, "logged"), proc.communicate(timeout=5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    owner = json.loads(owner_file(folder).read_text())

    second = Agent(folder.root, env=ENV).run("Second")
    assert [(r["run_id"], r["kind"]) for r in folder.read_log().records] == [(owner["run_id"], "tool_call"),
                                                                            (second.run_id, "run")]
    assert [e.run_id for e in entries(folder)] == [second.run_id]
    assert not owner_file(folder).exists()


@pytest.mark.parametrize("taker", ["dream", "tools call"])
def test_a_dream_or_a_tool_call_taking_the_lock_logs_a_killed_run_too(folder: AgentFolder, taker: str) -> None:
    # What SIGKILL leaves (shown with real processes above): the owner file, and the lock free.
    owner = {"run_id": "20261121T090000-abcdef", "since": "2026-11-21T09:00:00.123+01:00", "pid": 1,
             "trigger": "schedule:tick", "work_item": "Check in."}
    folder.paths.state.mkdir(parents=True, exist_ok=True)
    owner_file(folder).write_text(json.dumps(owner))
    agent = Agent(folder.root, env=ENV)
    if taker == "dream":
        note(folder.paths, "voucher", "Dentist voucher", "Half-price cleaning.", extra="expires: 2020-06-30\n")
        assert run_dream(agent).status == "ok"
    else:
        agent.call_tool("memory_search", {"query": "tea"})
    killed = run_records(folder)[0]
    assert (killed["run_id"], killed["status"], killed["trigger"], killed["work_item"]) == (
        owner["run_id"], "killed", "schedule:tick", "Check in.")
    assert entries(folder)[0].status == "killed" and not owner_file(folder).exists()


@pytest.mark.parametrize("spent", [
    "a lot", {"model_calls": 2, "cost_usd": 0.4}, {"model_calls": 2, "cost_usd": "0.4", "usage": {}},
    {"model_calls": 0, "cost_usd": 0.0, "usage": {}}, {"model_calls": 1, "cost_usd": 0.1, "usage": ["many"]},
    {"model_calls": 1, "cost_usd": 0.1, "usage": {"input_tokens": "many"}},
    # Numbers JSON can say that no spend is: a cost cap compared with NaN or a negative cost never trips.
    {"model_calls": 1, "cost_usd": 0.1, "usage": {"input_tokens": float("inf")}},
    {"model_calls": float("inf"), "cost_usd": 0.1, "usage": {}},
    {"model_calls": 1, "cost_usd": float("nan"), "usage": {}}, {"model_calls": 1, "cost_usd": float("inf"), "usage": {}},
    {"model_calls": 1, "cost_usd": -5.0, "usage": {}}, {"model_calls": 1, "cost_usd": 0.1, "usage": {"input_tokens": -9}},
    # A call in flight that is not what the runner noted: its cost, and so the run's, is unknown.
    *({"model_calls": calls, "cost_usd": 0.1, "usage": {}, "in_flight": calling} for calls in (0, 1) for calling in [
        "one", ["anthropic", "claude-sonnet-5", 10, 4096], {"provider": "anthropic", "model": "claude-sonnet-5"},
        {**IN_FLIGHT, "input_tokens": "many"}, {**IN_FLIGHT, "input_tokens": 1.5},
        {**IN_FLIGHT, "input_tokens": float("inf")}, {**IN_FLIGHT, "max_output_tokens": float("nan")},
        {**IN_FLIGHT, "max_output_tokens": -1}, {**IN_FLIGHT, "input_tokens": 10**400}, {**IN_FLIGHT, "model": 5},
        {**IN_FLIGHT, "cache": True}])])
def test_a_killed_run_whose_owner_file_keeps_no_readable_spend_is_logged_with_its_spend_unknown(
        folder: AgentFolder, server: FakeLLMServer, spent: object) -> None:
    killed = logged_after_kill(folder, server, spent)
    assert (killed["status"], killed["cost_usd"], killed["iterations"], killed[runlog.PROVIDER]) == (
        "killed", None, 0, None)
    assert killed["error"].endswith("what it spent and wrote is unknown")
    assert "cost" not in entries(folder)[0].fields


def test_doctor_names_a_killed_run_until_the_next_run_logs_it(folder: AgentFolder, server: FakeLLMServer) -> None:
    server.script(Hang(30), Reply("done"))
    proc = child(folder, "-m", "vault_agent.cli", "run", "tester", "-m", "Check in.")
    in_model_call(server, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    owner = json.loads(owner_file(folder).read_text())

    assert doctor_on_the_lock(folder) == [f"WARNING [tester] .vault-agent/run.lock.owner.json: run {owner['run_id']} (started "
                        f"{owner['since']}, trigger cli) was killed before it finished and is not logged yet — fix: "
                        "nothing to do: the agent's next run, dream or tools call logs it "
                        "(vault-agent log tester --status killed)"]
    assert Agent(folder.root, env=ENV).run("Again.").status == "ok"
    assert doctor_on_the_lock(folder) == [] and run_records(folder)[0]["status"] == "killed"


@pytest.mark.parametrize("logs", [True, False], ids=["logged", "its-log-append-failed"])
def test_doctor_never_calls_killed_a_run_that_ends_between_its_look_at_the_owner_file_and_at_the_lock(
        folder: AgentFolder, monkeypatch: pytest.MonkeyPatch, logs: bool) -> None:
    # The window is a few microseconds wide: a stand-in for doctor's look at the lock ends the run right before it,
    # every time. A run ends logged, or, when its log append failed (a full disk), not: either way not killed.
    started = runlog.now_ts()
    run = ExitStack()
    holder = run.enter_context(folder.run_lock(timeout=0, run_id=runlog.new_run_id(started), started=started,
                                               trigger="cli", on_killed=lambda owner: None))
    run_id = json.loads(owner_file(folder).read_text())["run_id"]

    def run_ends_then_is_locked(path: Path) -> bool:
        if logs:
            folder.append_log([{"kind": "run", "run_id": run_id, "status": "ok"}], day=started.date())
            holder.logged()
        run.close()
        return is_locked(path)

    monkeypatch.setattr(doctor, "is_locked", run_ends_then_is_locked)
    assert [f for f in doctor.check_agent(folder) if f.path in (folder.paths.run_lock, owner_file(folder))] == []
    assert not owner_file(folder).exists()  # the run ended in the window


def test_a_taker_that_fails_to_log_the_killed_holder_leaves_it_for_the_next(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    stale = {"run_id": "20261121T090000-abcdef", "since": "2026-11-21T09:00:00.000+01:00", "pid": 1}
    path.with_name("run.lock.owner.json").write_text(json.dumps(stale))  # its holder died; the OS freed the lock

    def fail(owner: dict) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError), run_lock(path, timeout=0, owner={"run_id": "second"}, on_killed=fail):
        pass
    seen: list[dict] = []
    with run_lock(path, timeout=0, owner={"run_id": "third"}, on_killed=seen.append) as killed:
        assert killed
    assert seen == [stale]
    with run_lock(path, timeout=0, owner={"run_id": "fourth"}, on_killed=seen.append) as killed:
        assert not killed  # the third released it: nothing is logged twice
    assert seen == [stale]


def test_a_holder_killed_after_marking_itself_logged_is_not_handed_to_on_killed(tmp_path: Path) -> None:
    path, seen = tmp_path / "run.lock", []
    with run_lock(path, timeout=0, owner={"run_id": "first"}, on_killed=seen.append):
        mark_logged(path)
        left = path.with_name("run.lock.owner.json").read_text()
    path.with_name("run.lock.owner.json").write_text(left)  # what SIGKILL before the release leaves
    assert json.loads(left) == {"run_id": "first", "pid": os.getpid(), "logged": True}
    with run_lock(path, timeout=0, owner={"run_id": "second"}, on_killed=seen.append) as killed:
        assert killed  # it died holding the lock (its temp files go), but it is logged already
    assert seen == []


def test_no_taker_of_the_run_lock_can_leave_out_what_to_do_with_a_killed_holder(folder: AgentFolder) -> None:
    with pytest.raises(TypeError, match="on_killed"), folder.run_lock(timeout=0, run_id="x"):  # type: ignore[call-arg]
        pass
    assert not owner_file(folder).exists()


def test_the_owner_file_says_when_the_run_started_not_when_it_took_the_lock(
        folder: AgentFolder, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.script(Reply("done"))
    leak_scan, run_locked, seen = Agent._leak_scan, Agent._run_locked, []

    def slow(self: Agent, *args: object) -> object:
        time.sleep(0.05)  # as a run waiting for the lock does
        return leak_scan(self, *args)  # type: ignore[arg-type]

    def peek(self: Agent, *args: object) -> None:
        seen.append(json.loads(owner_file(folder).read_text()))
        run_locked(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Agent, "_leak_scan", slow)
    monkeypatch.setattr(Agent, "_run_locked", peek)
    assert Agent(folder.root, env=ENV).run("Check in.").ok
    [record] = run_records(folder)
    assert [o["since"] for o in seen] == [record["started"]]  # what a killed record's `started` is taken from


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_every_interruptible_command_stops_alike_on_ctrl_c_and_sigterm(stop: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # run, schedule fire and dream share this: one line on stderr and exit 130; watch (None) ends quietly.
    from vault_agent.cli import _interruptible

    def exit_code(what: str | None) -> int | str | None:
        try:
            with _interruptible(what):
                if stop == "ctrl-c":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises before this ends
        except SystemExit as exc:
            return exc.code
        except KeyboardInterrupt:  # escaped: a failure here, where pytest would take it for the user's Ctrl-C
            return "escaped"
        return None

    def outside(*_: object) -> None:  # SIGTERM going past _interruptible fails the test, not ends pytest
        raise AssertionError("SIGTERM reached the handler outside")

    before = signal.signal(signal.SIGTERM, outside)
    try:
        assert exit_code("the run was logged as interrupted") == 130
        assert capsys.readouterr() == ("", "\ninterrupted (the run was logged as interrupted)\n")
        assert signal.getsignal(signal.SIGTERM) is outside  # put back as it was
        assert exit_code(None) is None
        assert capsys.readouterr() == ("", "") and signal.getsignal(signal.SIGTERM) is outside
    finally:
        signal.signal(signal.SIGTERM, before)
