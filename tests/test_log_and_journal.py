"""The JSONL run log and the journal: whole lines, torn-line recovery, readable entries."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from vault_agent.errors import StorageError
from vault_agent.ops.doctor import check_agent
from vault_agent.vault import journal, runlog
from vault_agent.vault.atomic import append_line, atomic_write
from vault_agent.vault.folder import AgentFolder


@pytest.fixture
def agent(tmp_path: Path) -> AgentFolder:
    root = tmp_path / "v" / "a"
    root.mkdir(parents=True)
    (root / "model.md").write_text("---\nprovider: replay\nmodel: demo\nreplay: r.yaml\n---\n")
    return AgentFolder(root)


def test_a_torn_last_line_is_skipped_reported_and_never_glued_to_the_next(agent: AgentFolder) -> None:
    day = dt.date(2026, 11, 21)
    path = agent.append_log([{"run_id": "a", "status": "ok"}], day=day)
    with open(path, "ab") as f:
        f.write(b'{"run_id": "b", "sta')  # a run killed mid-append (by something other than us)
    read = agent.read_log()
    assert [r["run_id"] for r in read.records] == ["a"]
    assert read.torn[0].line_no == 2 and read.torn[0].is_last
    findings = [f for f in check_agent(agent) if "torn" in f.message]
    assert len(findings) == 1 and "line 2" in findings[0].message and findings[0].path == path
    agent.append_log([{"run_id": "c", "status": "ok"}], day=day)
    lines = path.read_bytes().splitlines()
    last = json.loads(lines[-1])
    # The new line chains to the torn fragment: it was there when the line was written.
    assert last == {"run_id": "c", "status": "ok", "prev_hash": hashlib.sha256(lines[-2]).hexdigest(), "seq": 2}
    assert [r["run_id"] for r in agent.read_log().records] == ["a", "c"]


def test_records_are_sorted_key_json_one_per_line(agent: AgentFolder) -> None:
    path = agent.append_log([{"z": 1, "a": "ü", "m": None}], day=dt.date(2026, 1, 2))
    assert path == agent.root / "log" / "2026-01" / "2026-01-02.jsonl"
    assert path.read_text(encoding="utf-8") == '{"a":"ü","m":null,"prev_hash":"%s","seq":1,"z":1}\n' % ("0" * 64)


def test_a_line_with_a_newline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        append_line(tmp_path / "x.jsonl", "a\nb")


def test_run_ids_sort_by_time_and_are_unique() -> None:
    t = dt.datetime(2026, 11, 21, 8, 5, 12)
    ids = {runlog.new_run_id(t) for _ in range(200)}
    assert len(ids) == 200 and all(i.startswith("20261121T080512-") for i in ids)


def test_journal_entries_append_to_the_day_file_and_parse_back(agent: AgentFolder) -> None:
    ts = dt.datetime(2026, 11, 21, 9, 30, 5).astimezone()
    first = journal.JournalEntry(ts=ts, run_id="r1", status="ok", trigger="cli", asked="Plan the week",
                                 did="Drafted a plan", notes=["weekly-plan", "東京"], cost="$0.0123")
    second = journal.JournalEntry(ts=ts + dt.timedelta(hours=1), run_id="r2", status="error",
                                  asked="Second\nmulti-line ask", problems=["model timed out"])
    path = agent.append_journal(first)
    agent.append_journal(second)
    assert path == agent.root / "journal" / "2026-11" / "2026-11-21.md"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\ndate: 2026-11-21\nagent: a\n---\n")
    entries = journal.parse_day(text)
    assert [(e.run_id, e.status, e.trigger) for e in entries] == [("r1", "ok", "cli"), ("r2", "error", "cli")]
    assert entries[0].fields["notes"] == ["[[weekly-plan]], [[東京]]"]
    assert entries[1].fields["asked"] == ["Second multi-line ask"]
    assert entries[1].fields["problem"] == ["model timed out"]


def test_a_full_disk_leaves_the_old_file_intact_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No real full disk can be made here without root-only tmpfs tricks, so the
    # write call is made to fail the way a full disk makes it fail.
    import errno
    import os as _os

    target = tmp_path / "note.md"
    target.write_text("old\n")
    real_write = _os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("vault_agent.vault.atomic.os.write", full)
    with pytest.raises(StorageError, match="disk full") as info:
        atomic_write(target, "new\n")
    monkeypatch.setattr("vault_agent.vault.atomic.os.write", real_write)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["note.md"]  # no temp file left behind
    assert "free some disk space" in info.value.one_line()
