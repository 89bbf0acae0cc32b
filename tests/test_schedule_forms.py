"""Next-run times for every schedule form, with time frozen; schedule.md entries; the spec's examples."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from memory_helpers import bare_folder

from vault_agent.errors import ConfigError
from vault_agent.ops import schedule as sched
from vault_agent.ops import when
from vault_agent.ops.daemon import Daemon
from vault_agent.vault.folder import Vault

UTC = dt.timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
# Saturday 21 November 2026, 07:30 UTC: a frozen "now" for every case below.
NOW = dt.datetime(2026, 11, 21, 7, 30, tzinfo=UTC)


def at(text: str, last: dt.datetime | None = None, anchor: dt.datetime = NOW,
       tz: dt.tzinfo = UTC) -> dt.datetime | None:
    return when.parse(text).next_run(last, anchor, tz)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("text, expected", [
    ("*/15 9-17 * * mon-fri", utc(2026, 11, 23, 9, 0)),
    ("30 7 * * *", utc(2026, 11, 22, 7, 30)),  # strictly after: 07:30 today is "now", not next
    ("0 0 1 jan *", utc(2027, 1, 1, 0, 0)),
    ("0 12 1,15 * *", utc(2026, 12, 1, 12, 0)),
    ("5/20 8 * * *", utc(2026, 11, 21, 8, 5)),
    ("0 9 * * 7", utc(2026, 11, 22, 9, 0)),  # 7 is Sunday too
    ("0 9 13 * fri", utc(2026, 11, 27, 9, 0)),  # day and weekday both set: either matches
    ("0 0 29 2 *", utc(2028, 2, 29, 0, 0)),
    ("@hourly", utc(2026, 11, 21, 8, 0)),
    ("@daily", utc(2026, 11, 22, 0, 0)),
    ("@weekly", utc(2026, 11, 22, 0, 0)),
    ("@monthly", utc(2026, 12, 1, 0, 0)),
    ("@yearly", utc(2027, 1, 1, 0, 0)),
    ("hourly", utc(2026, 11, 21, 8, 0)),
    ("daily", utc(2026, 11, 22, 0, 0)),
    ("weekly", utc(2026, 11, 22, 0, 0)),
    ("monthly", utc(2026, 12, 1, 0, 0)),
    ("daily at 08:00", utc(2026, 11, 21, 8, 0)),
    ("every day at 7:00", utc(2026, 11, 22, 7, 0)),
    ("weekdays at 9:00", utc(2026, 11, 23, 9, 0)),
    ("weekends at 10am", utc(2026, 11, 21, 10, 0)),
    ("mondays at 9:00", utc(2026, 11, 23, 9, 0)),
    ("mon and thu at 9", utc(2026, 11, 23, 9, 0)),
    ("every friday at 4:30pm", utc(2026, 11, 27, 16, 30)),
    ("tues, thursdays at 12:15", utc(2026, 11, 24, 12, 15)),
])
def test_calendar_forms_give_the_next_matching_minute(text: str, expected: dt.datetime) -> None:
    assert at(text) == expected


def test_calendar_forms_count_from_the_last_run_when_there_is_one() -> None:
    assert at("daily at 08:00", last=utc(2026, 11, 21, 8, 0, 3)) == utc(2026, 11, 22, 8, 0)


@pytest.mark.parametrize("text, seconds", [("every 30m", 1800), ("every 45s", 45), ("every 2h", 7200),
                                           ("every 2 hours", 7200), ("every 1d", 86400), ("every minute", 60),
                                           ("every 90 minutes", 5400)])
def test_intervals_count_from_the_previous_run_or_the_anchor(text: str, seconds: int) -> None:
    last = utc(2026, 11, 21, 6, 0)
    assert at(text, last=last) == last + dt.timedelta(seconds=seconds)
    anchor = utc(2026, 11, 20, 12, 0)
    assert at(text, anchor=anchor) == anchor + dt.timedelta(seconds=seconds)


def test_one_shots_run_once_counted_from_when_the_schedule_was_saved() -> None:
    saved = utc(2026, 11, 21, 16, 40)
    assert at("in 10m", anchor=saved) == utc(2026, 11, 21, 16, 50)
    assert at("at 16:50", anchor=saved) == utc(2026, 11, 21, 16, 50)
    assert at("at 16:50", anchor=utc(2026, 11, 21, 17, 0)) == utc(2026, 11, 22, 16, 50)  # saved after 16:50
    assert at("at 4:50pm", anchor=saved) == utc(2026, 11, 21, 16, 50)
    assert at("at 2026-12-01 09:00") == utc(2026, 12, 1, 9, 0)
    for text in ("in 10m", "at 16:50", "at 2026-12-01 09:00"):
        assert at(text, last=utc(2026, 11, 21, 16, 50), anchor=saved) is None


def test_a_slot_missed_while_asleep_is_due_once_then_the_schedule_resumes_from_now() -> None:
    last, woke = utc(2026, 11, 18, 8, 0), utc(2026, 11, 21, 15, 0)  # asleep from Wednesday to Saturday
    due = at("daily at 08:00", last=last)
    assert due == utc(2026, 11, 19, 8, 0) and due < woke  # in the past: run now, once
    # That run starts at `woke`; the next is tomorrow, not Friday's or Saturday's missed slots too.
    assert at("daily at 08:00", last=woke) == utc(2026, 11, 22, 8, 0)
    assert at("every 30m", last=last) < woke and at("every 30m", last=woke) == woke + dt.timedelta(minutes=30)


@pytest.mark.skipif(not Path("/usr/share/zoneinfo/Europe/Berlin").exists() and os.name != "nt",
                    reason="no tz database")
def test_wall_clock_forms_keep_their_local_time_across_a_dst_change() -> None:
    before = dt.datetime(2027, 3, 27, 9, 0, tzinfo=BERLIN)  # the day before clocks go forward
    nxt = at("daily at 08:00", last=before, tz=BERLIN)
    assert nxt is not None and (nxt.hour, nxt.utcoffset()) == (8, dt.timedelta(hours=2))
    # An interval is elapsed time, not wall time.
    assert at("every 1d", last=before, tz=BERLIN) == before + dt.timedelta(hours=24)


@pytest.mark.parametrize("text, message", [
    ("every 5 parsecs", "unknown unit"), ("61 * * * *", "outside 0-59"), ("daily at 25:00", "not a time"),
    ("sometimes", "not a schedule form"), ("0 0 * *", "not a schedule form"), ("at 13pm", "1-12"),
    ("0 9-5 * * *", "backwards"), ("*/0 * * * *", "bad step"), ("blursday at 9", "day names"), ("", "empty"),
])
def test_bad_forms_are_one_line_config_errors_with_the_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        when.parse(text)
    assert message in info.value.message and "spec/schedule.md" in (info.value.fix or "")


def test_plain_forms_translate_to_the_cron_line_a_crontab_gets() -> None:
    assert [when.parse(t).line for t in ("weekdays at 9:00", "weekends at 10am", "hourly", "0 17 * * fri")] == [
        "0 9 * * 1-5", "0 10 * * 0,6", "0 * * * *", "0 17 * * fri"]


# --- entries in the folder -------------------------------------------------------

def _spec_blocks() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "spec" / "schedule.md").read_text(encoding="utf-8")
    return re.findall(r"^```markdown\n(.*?)^```", text, re.M | re.S)


def test_the_spec_example_schedule_loads_with_ids_and_next_runs(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "juniper")
    (folder.root / "schedule.md").write_text(_spec_blocks()[0], encoding="utf-8")
    entries, findings = sched.load_entries(folder)
    assert findings == []
    assert [(e.id, e.when_text, e.action, e.with_model) for e in entries] == [
        ("morning-brief", "weekdays at 8:00", "run", False),
        ("check-the-shared-briefs-folder", "every 30m", "run", False),
        ("draft-the-weekly-status-update", "0 17 * * fri", "run", False),
        ("nightly-dream", "daily at 03:00", "dream", True)]
    assert entries[0].trigger == "schedule:morning-brief"
    assert entries[2].when.next_run(None, NOW, UTC) == utc(2026, 11, 27, 17, 0)


def test_the_spec_paused_md_is_exactly_what_the_scheduler_writes(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "juniper")
    sched.pause(folder, failures=3, last_run_id="20261121T083000-a1b2c3",
                last_error="model error: authentication_error: invalid x-api-key",
                now=dt.datetime.fromisoformat("2026-11-21T08:30:02.120+01:00"))
    assert (folder.root / "PAUSED.md").read_text(encoding="utf-8") == _spec_blocks()[1]
    info = sched.pause_info(folder)
    assert info is not None and info["failures"] == 3 and info["last_run_id"] == "20261121T083000-a1b2c3"


def test_paused_md_pauses_until_deleted_or_set_false_and_resume_resets_the_count(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "juniper")
    assert not sched.record_outcome(folder, "error", "r1", "boom", pause_after=2)
    assert not sched.record_outcome(folder, "refused", "r2", "cap", pause_after=2)  # not a failure
    assert sched.record_outcome(folder, "error", "r3", "boom", pause_after=2)
    assert sched.pause_info(folder) is not None
    (folder.root / "PAUSED.md").write_text("---\npaused: false\n---\nback on\n")
    assert sched.pause_info(folder) is None
    # The person resumed it: one more failure does not pause it again at once.
    assert not sched.record_outcome(folder, "error", "r4", "boom", pause_after=2)
    (folder.root / "PAUSED.md").write_text("hand-written: off for the holidays\n")
    assert sched.pause_info(folder) is not None
    assert sched.resume(folder) and sched.pause_info(folder) is None


def test_bad_entries_become_findings_and_the_good_ones_still_load(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "juniper")
    (folder.root / "schedule.md").write_text(
        "---\nschedule:\n  - when: every 5 parsecs\n    work_item: x\n  - when: hourly\n    work_item: Tidy up\n"
        "  - when: hourly\n    id: Bad Id\n    work_item: y\n  - just a string\n---\n")
    (folder.paths.model_md).write_text("---\nprovider: anthropic\nmodel: claude-sonnet-5\nschedule:\n"
                                       "  - when: daily at 7:00\n    id: tidy-up\n    work_item: Again\n---\n")
    entries, findings = sched.load_entries(folder)
    assert [e.id for e in entries] == ["tidy-up"]
    assert [f.message.split(":")[0] for f in findings] == [
        "schedule entry 1", "schedule entry 3", "schedule entry 4", "schedule entry 1"]
    assert "used twice" in findings[-1].message


def test_the_daemon_takes_the_last_run_from_the_log_and_runs_a_missed_slot_once(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "juniper")
    (folder.root / "schedule.md").write_text(
        "---\nschedule:\n  - id: brief\n    when: daily at 08:00\n    work_item: Brief me\n"
        "  - id: later\n    when: daily at 23:00\n    work_item: Wrap up\n---\n")
    folder.append_log([{"kind": "run", "run_id": "x", "trigger": "schedule:brief", "status": "ok",
                        "started": "2026-11-18T08:00:00.000+00:00", "ts": "2026-11-18T08:00:09.000+00:00"},
                       ], day=dt.date(2026, 11, 18))
    os.utime(folder.root / "schedule.md", (NOW.timestamp() - 3600, NOW.timestamp() - 3600))
    daemon = Daemon(Vault(folder.root.parent), now=lambda: NOW, say=lambda line: None)
    daemon._refresh()
    [(due, entry)] = daemon.due()
    assert (entry.id, due) == ("brief", utc(2026, 11, 19, 8, 0))  # missed since Thursday: once
    sched.pause(folder, failures=3, last_run_id="x", last_error="boom")
    assert daemon.due() == []


def test_doctor_reports_bad_entries_and_a_paused_agent_with_the_fix(tmp_path: Path) -> None:
    from vault_agent.ops.doctor import check_agent

    folder = bare_folder(tmp_path, "juniper")
    (folder.root / "schedule.md").write_text("---\nschedule:\n  - when: every 5 parsecs\n    work_item: x\n---\n")
    sched.pause(folder, failures=3, last_run_id="r1", last_error="boom")
    found = {f.message.split(":")[0]: f for f in check_agent(folder)}
    assert found["schedule entry 1"].level == "error" and "spec/schedule.md" in (found["schedule entry 1"].fix or "")
    paused = found["scheduled runs are paused"]
    assert paused.level == "warning" and "delete PAUSED.md" in (paused.fix or "")


def test_an_unknown_action_is_a_one_line_error_naming_the_choices(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "juniper")
    (folder.root / "schedule.md").write_text("---\nschedule:\n  - when: hourly\n    action: nap\n---\n")
    entries, [finding] = sched.load_entries(folder)
    assert entries == [] and "action 'nap' is not one of run, dream" in finding.message


@pytest.mark.parametrize("extra, message", [
    ("    with_model: true\n    work_item: x\n", "with_model applies to action: dream only"),
    ("    action: dream\n    with_model: nightly\n", "with_model must be true or false"),
])
def test_a_misplaced_or_misspelt_with_model_is_a_one_line_error(tmp_path: Path, extra: str, message: str) -> None:
    folder = bare_folder(tmp_path, "juniper")
    (folder.root / "schedule.md").write_text(f"---\nschedule:\n  - when: hourly\n{extra}---\n")
    entries, [finding] = sched.load_entries(folder)
    assert entries == [] and message in finding.message and "\n" not in finding.message


def test_a_dream_entry_with_model_fires_one_model_run_that_writes_the_merge(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.ops.daemon import fire
    from vault_agent.runner import Agent
    from vault_agent.testing.fakellm import FakeLLMServer, Reply

    folder = bare_folder(tmp_path, "juniper")
    folder.paths.memory.mkdir()
    usual = ("Maya drinks green tea without sugar, brewed for two minutes at 80 degrees, in the blue pot on "
             "her desk, every afternoon around three while she sketches the day's layouts.")
    for stem, body in (("tea", usual), ("tea-copy", usual + " Sencha, from the corner shop.")):
        (folder.paths.memory / f"{stem}.md").write_text(
            f"---\ntype: user\nname: Tea\ndescription: Green tea, no sugar\n---\n{body}\n")
    (folder.root / "schedule.md").write_text("---\nschedule:\n  - id: nightly\n    when: daily at 03:00\n"
                                             "    action: dream\n    with_model: true\n---\n")
    [entry] = sched.load_entries(folder)[0]
    merged = "Maya drinks green tea (sencha from the corner shop), no sugar, two minutes at 80 degrees, around 3."
    with FakeLLMServer() as server:
        (folder.root / "model.md").write_text(f"---\nprovider: anthropic\nmodel: claude-sonnet-5\n"
                                              f"base_url: {server.anthropic_base_url}\nmax_retries: 0\n---\n")
        server.script(Reply(f"=== merge 1 ===\ndescription: Green tea, no sugar\n\n{merged}\n=== end ===\n"))
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
        result, paused = fire(Agent(folder.root, watch=False), entry, pause_after=3, lock_wait_s=5)
        requests = server.requests
    assert result.status == "ok" and not paused and len(requests) == 1
    [kept] = folder.paths.memory.glob("tea*.md")
    assert kept.read_text().endswith(merged + "\n")
    model_run, dream_run = [r for r in folder.read_log().records if r.get("kind") == "run"]
    assert model_run["trigger"] == dream_run["trigger"] == "schedule:nightly"
    assert dream_run["model_run"] == model_run["run_id"]


def test_a_dream_entry_fires_a_logged_consolidation_with_its_trigger(tmp_path: Path) -> None:
    from vault_agent.ops.daemon import fire
    from vault_agent.runner import Agent

    folder = bare_folder(tmp_path, "juniper")
    folder.paths.memory.mkdir()
    for stem in ("tea", "tea-copy"):
        (folder.paths.memory / f"{stem}.md").write_text(
            "---\ntype: user\nname: Tea\ndescription: Green tea, no sugar\n---\nMaya drinks green tea "
            "without sugar, brewed for two minutes at eighty degrees.\n")
    (folder.root / "schedule.md").write_text("---\nschedule:\n  - id: nightly\n    when: daily at 03:00\n"
                                             "    action: dream\n---\n")
    [entry] = sched.load_entries(folder)[0]
    result, paused = fire(Agent(folder.root, watch=False), entry, pause_after=3, lock_wait_s=5)
    assert result.status == "ok" and not paused
    assert [p.name for p in folder.paths.memory.glob("tea*.md")] == ["tea.md"]
    [record] = [r for r in folder.read_log().records if r.get("kind") == "run"]
    assert record["trigger"] == "schedule:nightly" and record["notes_written"] == ["memory/tea.md"]
