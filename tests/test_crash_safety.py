"""Real processes: SIGKILL a writer at random moments, and race two processes for the run lock."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from proc_kit import kill_writer

from vault_agent.vault import frontmatter, index_md, journal
from vault_agent.vault.folder import AgentFolder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork semantics are POSIX")

WRITER = textwrap.dedent("""
    import datetime as dt, sys
    from vault_agent.vault.folder import AgentFolder
    from vault_agent.vault.journal import JournalEntry
    agent = AgentFolder(sys.argv[1])
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        body = ("line %d of a growing note body\\n" % i) * (i % 50 + 1)
        agent.save_note({"type": "project", "name": "Note %d" % (i % 7), "description": "d%d" % i},
                        body, version_tag="v%d" % i)
        agent.append_log([{"kind": "run", "run_id": "r%d" % i, "status": "ok", "pad": "x" * (i % 300)},
                          {"kind": "tool_call", "run_id": "t%d" % i, "parent_run_id": "r%d" % i}])
        agent.append_journal(JournalEntry(ts=dt.datetime.now().astimezone(), run_id="r%d" % i,
                                          status="ok", asked="item %d" % i, did="x" * (i % 200)))
""")


def _make_agent(tmp_path: Path) -> AgentFolder:
    root = tmp_path / "vault" / "w"
    (root / "memory").mkdir(parents=True)
    (root / "model.md").write_text("---\nprovider: anthropic\nmodel: claude-sonnet-5\n---\n")
    return AgentFolder(root)


def _assert_nothing_torn(agent: AgentFolder) -> int:
    for path in agent.paths.memory.glob("*.md"):
        text = path.read_text(encoding="utf-8")
        if path.name == "INDEX.md":
            before, block, after = index_md.split_managed(text)
            assert block is not None and block.endswith(index_md.END), f"torn INDEX: {text[-200:]!r}"
            continue
        fm, body = frontmatter.split(text)
        meta = frontmatter.parse(fm)
        n = int(body.split(" ", 2)[1])
        assert body == ("line %d of a growing note body\n" % n) * (n % 50 + 1), f"torn note {path}"
        assert meta["type"] == "project"
    lines = 0
    for path in agent.paths.log.rglob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            json.loads(line)
            lines += 1
    for path in agent.paths.journal.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n")
        for entry in journal.parse_day(text):
            assert entry.fields["asked"], f"torn journal entry in {path}"
    return lines


def test_sigkill_at_random_moments_never_leaves_a_torn_note_index_or_log_line(tmp_path: Path) -> None:
    agent = _make_agent(tmp_path)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(1234)
    total_lines = 0
    for _ in range(30):
        kill_writer(script, agent.root, rng.uniform(0.0, 0.25))
        total_lines = _assert_nothing_torn(agent)
    # The writer really wrote: many notes, log lines and journal entries were checked.
    assert total_lines > 50
    assert len(list(agent.paths.memory.glob("*.md"))) == 8  # 7 notes + INDEX


HOLDER = textwrap.dedent("""
    import sys, time
    from vault_agent.errors import AgentBusy
    from vault_agent.vault.folder import AgentFolder
    agent = AgentFolder(sys.argv[1])
    run_id, hold, wait = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    try:
        with agent.run_lock(timeout=wait, run_id=run_id, on_killed=lambda owner: None):
            print("got", flush=True)
            time.sleep(hold)
            agent.append_log([{"kind": "run", "run_id": run_id, "status": "ok"}])
    except AgentBusy as exc:
        agent.append_log([{"kind": "run", "run_id": run_id, "status": "busy", "error": str(exc)}])
        print("busy", flush=True)
""")


def test_a_second_run_waits_then_ends_busy_and_its_busy_record_is_logged(tmp_path: Path) -> None:
    agent = _make_agent(tmp_path)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    first = subprocess.Popen([sys.executable, str(script), str(agent.root), "first", "2.0", "5"],
                             stdout=subprocess.PIPE)
    assert first.stdout is not None and first.stdout.readline() == b"got\n"
    started = time.monotonic()
    second = subprocess.run([sys.executable, str(script), str(agent.root), "second", "0", "0.5"],
                            capture_output=True, timeout=30)
    waited = time.monotonic() - started
    assert second.stdout == b"busy\n"
    assert first.poll() is None, "the busy run must not have waited for the holder to finish"
    assert waited < 1.9
    first.wait(timeout=30)
    records = agent.read_log().records
    assert [(r["run_id"], r["status"]) for r in records] == [("second", "busy"), ("first", "ok")]
    assert "agent busy" in records[0]["error"] and "first" in records[0]["error"]


def test_two_processes_racing_for_the_lock_exactly_one_wins(tmp_path: Path) -> None:
    agent = _make_agent(tmp_path)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    procs = [subprocess.Popen([sys.executable, str(script), str(agent.root), f"p{i}", "1.0", "0.2"],
                              stdout=subprocess.PIPE) for i in range(2)]
    outs = sorted(p.communicate(timeout=30)[0].decode() for p in procs)
    assert outs == ["busy\n", "got\n"]
    statuses = sorted(r["status"] for r in agent.read_log().records)
    assert statuses == ["busy", "ok"]


def test_a_waiting_run_gets_the_lock_when_the_holder_finishes_in_time(tmp_path: Path) -> None:
    agent = _make_agent(tmp_path)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    first = subprocess.Popen([sys.executable, str(script), str(agent.root), "first", "0.5", "5"],
                             stdout=subprocess.PIPE)
    assert first.stdout is not None and first.stdout.readline() == b"got\n"
    second = subprocess.run([sys.executable, str(script), str(agent.root), "second", "0", "10"],
                            capture_output=True, timeout=30)
    first.wait(timeout=30)
    assert second.stdout == b"got\n"
    assert [r["run_id"] for r in agent.read_log().records] == ["first", "second"]


@pytest.mark.parametrize("content", [None, b"", b'{"failures": 2', b"\xff\xfe", b"[1, 2]", b'"text"'])
def test_derived_state_that_is_missing_torn_or_not_an_object_reads_as_empty(tmp_path: Path,
                                                                          content: bytes | None) -> None:
    from vault_agent.vault.atomic import read_state

    path = tmp_path / "state.json"
    if content is not None:
        path.write_bytes(content)
    assert read_state(path) == {}
    path.write_text('{"failures": 2}')
    assert read_state(path) == {"failures": 2}


KILLED_MID_WRITE = textwrap.dedent("""
    import os, sys
    from vault_agent.vault.folder import AgentFolder
    agent = AgentFolder(sys.argv[1])
    with agent.run_lock(timeout=5, run_id="killed", on_killed=lambda owner: None):
        os.replace = lambda *a, **k: os._exit(137)  # killed between writing a temp file and renaming it
        agent.save_note({"type": "project", "name": "Cut off"}, "never renamed", version_tag="v1")
""")


def test_temp_files_of_a_writer_killed_holding_the_run_lock_go_when_the_lock_is_next_taken(tmp_path: Path) -> None:
    agent = _make_agent(tmp_path)
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(agent.root)], capture_output=True)
    assert proc.returncode == 137, proc.stderr
    [left] = [p for p in agent.paths.memory.iterdir() if p.name.startswith(".cut-off.md.")]
    # Files a writer without the run lock may be writing now (fresh), and names that are not the writer's own.
    fresh = agent.paths.journal / "2026-11" / ".2026-11-20.md.0123abcd.tmp"
    others = [agent.paths.memory / ".draft.md.tmp", agent.paths.memory / ".notes.md.0123abcz.tmp",
              agent.root / "wiki" / ".page.md.0123abcd.tmp"]
    for path in (fresh, *others):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    old = time.time() - 120
    for path in (left, *others):
        os.utime(path, (old, old))
    with agent.run_lock(timeout=5, run_id="next", on_killed=lambda owner: None):
        pass
    assert not left.exists() and fresh.exists() and all(p.exists() for p in others)


def test_ctrl_c_in_the_middle_of_a_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.vault import atomic

    path = tmp_path / "note.md"
    path.write_text("old\n")

    def ctrl_c(fd: int) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(atomic.os, "fsync", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(path, "new\n")
    assert [p.name for p in tmp_path.iterdir()] == ["note.md"] and path.read_text() == "old\n"
