"""Audit review from the command line: `log`, `show RUN_ID`, `cost`, and the schedule commands."""

from __future__ import annotations

import json
import plistlib
import re
import sys
from pathlib import Path

import pytest

from vault_agent.ops import install
from vault_agent.ops import schedule as sched
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.templates import create_agent

from test_cli import cli

RUN = "20261119T130502-d9e3b4"  # the sample's run that set the 2027 day rate


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review") / "vault"
    create_agent(root, "sample", "sample")
    (root / "sample" / "schedule.md").write_text(
        "---\nschedule:\n  - id: morning-brief\n    when: weekdays at 7:30\n    work_item: Morning brief\n"
        "  - id: inbox\n    when: every 15m\n    work_item: Inbox triage\n"
        "  - id: once\n    when: in 10m\n    work_item: One reminder\n---\n")
    return root


def test_log_lists_runs_oldest_first_and_filters_by_status_and_day(vault: Path) -> None:
    listed = cli("log", "sample", vault=vault)
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and len(lines) == 8
    assert lines[0].startswith("2026-11-18 09:12:18  sample") and RUN in lines[4]
    errors = cli("log", "--status", "error", "--json", vault=vault)
    [record] = [json.loads(line) for line in errors.stdout.splitlines()]
    assert record["status"] == "error" and "overloaded_error" in record["error"]
    assert "prev_hash" not in record and "seq" not in record  # the chain is for audit verify, not for reading
    since = cli("log", "--since", "2026-11-20", "--limit", "2", vault=vault).stdout.splitlines()
    assert [line[:10] for line in since] == ["2026-11-20", "2026-11-20"] and "busy" in since[-1]
    bad = cli("log", "--since", "last tuesday", vault=vault)
    assert bad.returncode == 2 and "YYYY-MM-DD, 7d" in bad.stderr


def test_log_filters_by_exactly_the_run_statuses_and_each_but_killed_has_its_exit_code() -> None:
    from vault_agent import statuses
    from vault_agent.cli import EXIT_FOR_STATUS, main
    from vault_agent.vault import runlog

    assert runlog.STATUSES is statuses.STATUSES and set(runlog.STOPPED) < set(runlog.STATUSES)
    [option] = [p for p in main.commands["log"].params if p.name == "status"]
    assert tuple(option.type.choices) == statuses.STATUSES
    # "killed" is never a run's own result: the next run to take the lock logs it for the killed one.
    assert set(EXIT_FOR_STATUS) == set(statuses.STATUSES) - {"killed"}
    assert len(set(EXIT_FOR_STATUS.values())) == len(EXIT_FOR_STATUS)


def test_show_prints_the_record_its_tool_calls_and_its_journal_entry(vault: Path) -> None:
    shown = cli("show", RUN, vault=vault)
    assert shown.returncode == 0
    out = shown.stdout
    assert f"run {RUN} of sample" in out and "  cost_usd: 0.027074" in out
    assert [line.split(":")[0].strip() for line in out.splitlines() if line.startswith("  tool ")] == [
        "tool memory_search", "tool memory_read", "tool remember"]
    assert f"## 13:05:02 — cli · run {RUN} · ok" in out and "**Notes:** [[day-rate-from-january-2027]]" in out
    as_json = json.loads(cli("show", RUN, "--json", vault=vault).stdout)
    assert as_json["record"]["run_id"] == RUN and len(as_json["tool_calls"]) == 3
    missing = cli("show", "20261119T000000-000000", vault=vault)
    assert missing.returncode == 2 and "no run '20261119T000000-000000'" in missing.stderr


def test_cost_shows_spend_against_each_cap(vault: Path) -> None:
    report = cli("cost", "sample", "--month", "2026-11", vault=vault)
    assert report.returncode == 0
    assert "sample — 2026-11: 8 run(s)" in report.stdout
    assert "month  $0.1663 of $30.00 (1%)" in report.stdout and "per run: at most $0.25" in report.stdout
    [data] = json.loads(cli("cost", "--month", "2026-11", "--json", vault=vault).stdout)
    assert data["caps"]["daily_usd"] == 2.0 and round(data["by_day"]["2026-11-19"], 6) == 0.058423


def test_schedule_list_shows_next_runs_and_pausing(vault: Path) -> None:
    rows = json.loads(cli("schedule", "list", "--json", vault=vault).stdout)
    assert [(r["id"], r["when"]) for r in rows] == [("morning-brief", "weekdays at 7:30"), ("inbox", "every 15m"),
                                                    ("once", "in 10m")]
    assert all(r["next_run"] and not r["paused"] for r in rows)
    folder = AgentFolder(vault / "sample")
    sched.pause(folder, failures=3, last_run_id=RUN, last_error="boom")
    try:
        text = cli("schedule", "list", vault=vault).stdout
        assert text.count("paused (delete PAUSED.md to resume)") == 3
        fired = cli("schedule", "fire", "sample", "inbox", vault=vault)
        assert fired.returncode == 0 and "sample is paused" in fired.stderr
    finally:
        assert cli("schedule", "resume", "sample", vault=vault).stdout.strip() == "resumed sample"


def test_cron_lines_call_schedule_fire_with_absolute_paths_environment_and_a_log(vault: Path) -> None:
    out = cli("schedule", "install", "--cron", vault=vault).stdout
    lines = out.splitlines()
    assert lines[0] == f"# BEGIN vault-agent {vault}" and lines[-1] == f"# END vault-agent {vault}"
    [brief] = [line for line in lines if line.startswith("30 7 * * 1-5 ")]
    assert f"VAULT_AGENT_HOME={vault}" in brief and "PATH=" in brief
    assert f"{sys.executable.rsplit('/', 1)[0]}/" in brief and "schedule fire sample morning-brief" in brief
    assert f">> {vault}/.vault-agent/logs/sample.log 2>&1" in brief
    assert any(line.startswith("*/15 * * * * ") for line in lines)
    assert "# sample/once: 'in 10m' cannot be written for cron" in out
    # Installing again replaces this vault's block and keeps the person's own lines.
    merged = install.merge_crontab("MAILTO=me\n" + out + "0 1 * * * backup\n", out.replace("7 * * 1-5", "8 * * 1-5"),
                                   vault)
    assert merged.startswith("MAILTO=me\n") and merged.endswith("0 1 * * * backup\n")
    assert merged.count("# BEGIN vault-agent") == 1 and "30 8 * * 1-5" in merged


def test_launchd_plists_run_each_entry_with_calendar_or_interval(vault: Path, tmp_path: Path) -> None:
    made = cli("schedule", "install", "--launchd", "--dir", str(tmp_path / "agents"), vault=vault)
    assert made.returncode == 0 and "skipped sample/once" in made.stderr
    brief = plistlib.loads((tmp_path / "agents" / "com.vault-agent.sample.morning-brief.plist").read_bytes())
    assert brief["ProgramArguments"][-4:] == ["schedule", "fire", "sample", "morning-brief"]
    assert Path(brief["ProgramArguments"][0]).is_absolute()
    assert brief["StartCalendarInterval"] == [{"Hour": 7, "Minute": 30, "Weekday": d} for d in range(1, 6)]
    assert brief["EnvironmentVariables"]["VAULT_AGENT_HOME"] == str(vault)
    assert brief["StandardErrorPath"] == str(vault / ".vault-agent" / "logs" / "sample.log")
    inbox = plistlib.loads((tmp_path / "agents" / "com.vault-agent.sample.inbox.plist").read_bytes())
    assert inbox["StartInterval"] == 900 and "StartCalendarInterval" not in inbox
    assert "launchctl bootstrap gui/$(id -u)" in made.stdout


def test_the_extras_examples_are_what_install_generates(tmp_path: Path) -> None:
    extras = Path(__file__).resolve().parents[1] / "extras"
    spec = (Path(__file__).resolve().parents[1] / "spec" / "schedule.md").read_text(encoding="utf-8")
    root = tmp_path / "juniper"
    (root / "persona").mkdir(parents=True)
    (root / "schedule.md").write_text(re.findall(r"^```markdown\n(.*?)^```", spec, re.M | re.S)[0])
    entries, _ = sched.load_entries(AgentFolder(root))
    home = Path("/Users/maya")
    launch = install.Launch([str(home / ".local/bin/vault-agent")], home / "vault-agents",
                            {"PATH": "/Users/maya/.local/bin:/usr/bin:/bin", "VAULT_AGENT_HOME": str(home / "vault-agents"),
                             "HOME": str(home), "LANG": "en_US.UTF-8"}, home / "vault-agents/.vault-agent/logs")
    made = install.plist_for(entries[0], launch)
    assert made is not None and made[0] == "com.vault-agent.juniper.morning-brief"
    assert (extras / "launchd" / f"{made[0]}.plist").read_bytes() == made[1]
    assert (extras / "cron" / "crontab.example").read_text() == install.crontab_block(entries, launch)
    daemon = plistlib.loads((extras / "launchd" / "com.vault-agent.daemon.plist").read_bytes())
    assert daemon["ProgramArguments"][-3:] == ["daemon", "--max-concurrent", "2"] and daemon["RunAtLoad"]
