"""The log's hash chain: appends chain every line, and `vault-agent audit verify` names each edited,
removed, swapped or inserted line, tolerates crashes and logs older than the chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from memory_helpers import bare_folder
from proc_kit import kill_writer
from test_cli import cli

from vault_agent.vault import chain, runlog
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.templates import create_agent


def _ten_runs(folder: AgentFolder) -> None:
    for i in range(10):
        folder.append_log([{"kind": "run", "run_id": f"r{i}", "status": "ok", "cost_usd": 0.01},
                           {"kind": "tool_call", "run_id": f"r{i}.1", "parent_run_id": f"r{i}"}],
                          day=dt.date(2026, 11, 1 + i // 4))


def _day(folder: AgentFolder, n: int) -> Path:
    return folder.paths.log_day(dt.date(2026, 11, n))


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    lines = path.read_text(encoding="utf-8").splitlines()
    change(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _verify(folder: AgentFolder) -> subprocess.CompletedProcess[str]:
    return cli("audit", "verify", folder.name, vault=folder.root.parent)


def test_every_appended_line_chains_to_the_one_before_across_day_files(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    _ten_runs(folder)
    raw = [line for p in runlog.day_files(folder.paths.log) for line in p.read_bytes().splitlines()]
    records = [json.loads(line) for line in raw]
    assert [r["seq"] for r in records] == list(range(1, 21))
    assert records[0]["prev_hash"] == chain.GENESIS
    for before, line in zip(raw, records[1:]):
        assert line["prev_hash"] == hashlib.sha256(before).hexdigest()
    result = _verify(folder)
    assert result.returncode == 0, result.stdout
    assert "[auditor] ok: 20 lines, 20 chained; tip seq 20" in result.stdout


def test_two_writers_in_one_process_and_a_second_process_keep_one_chain(tmp_path: Path) -> None:
    first, second = bare_folder(tmp_path, "auditor"), AgentFolder(tmp_path / "vault" / "auditor")
    for i in range(3):
        first.append_log([{"run_id": f"a{i}"}])
        second.append_log([{"run_id": f"b{i}"}])
    subprocess.run([sys.executable, "-c", "import sys; from vault_agent.vault.folder import AgentFolder; "
                    "AgentFolder(sys.argv[1]).append_log([{'run_id': 'c'}])", str(first.root)], check=True)
    first.append_log([{"run_id": "d"}])
    verdict = chain.verify(runlog.day_files(first.paths.log))
    assert verdict.ok and verdict.problems == [] and verdict.tip.seq == 8


def test_a_record_never_goes_into_a_day_file_older_than_the_newest(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    folder.append_log([{"run_id": "after-midnight"}], day=dt.date(2026, 11, 22))
    # A run that started before midnight ends later: its record follows, in the newer file.
    path = folder.append_log([{"run_id": "started-before-midnight"}], day=dt.date(2026, 11, 21))
    assert path.name == "2026-11-22.jsonl" and chain.verify(runlog.day_files(folder.paths.log)).ok


def test_the_sample_agents_log_verifies(tmp_path: Path) -> None:
    create_agent(tmp_path / "vault", "sample", "sample")
    result = cli("audit", "verify", vault=tmp_path / "vault")
    assert result.returncode == 0 and "[sample] ok: 24 lines, 24 chained" in result.stdout


def test_an_edited_line_is_named_with_file_and_line(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    _ten_runs(folder)
    _edit(_day(folder, 1), lambda lines: lines.__setitem__(2, lines[2].replace('"cost_usd":0.01', '"cost_usd":0.001')))
    result = _verify(folder)
    assert result.returncode == 1
    assert "ERROR   log/2026-11/2026-11-01.jsonl:3: edited" in result.stdout
    assert result.stdout.count("ERROR") == 1 and "TAMPERED" in result.stdout


def test_a_removed_line_is_named_with_how_many_are_missing(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    _ten_runs(folder)
    _edit(_day(folder, 2), lambda lines: lines.pop(3))
    result = _verify(folder)
    assert result.returncode == 1
    assert "ERROR   log/2026-11/2026-11-02.jsonl:4: 1 line(s) removed just before this line" in result.stdout
    assert result.stdout.count("ERROR") == 1


def test_swapped_lines_are_both_named_as_out_of_order(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    _ten_runs(folder)

    def swap(lines: list[str]) -> None:
        lines[2], lines[3] = lines[3], lines[2]

    _edit(_day(folder, 2), swap)
    result = _verify(folder)
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if "ERROR" in line]
    assert problems == ["[auditor] ERROR   log/2026-11/2026-11-02.jsonl:3: out of order (seq 12): moved or swapped",
                        "[auditor] ERROR   log/2026-11/2026-11-02.jsonl:4: out of order (seq 11): moved or swapped"]


def test_an_inserted_line_and_a_deleted_day_file_are_caught(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    _ten_runs(folder)
    _edit(_day(folder, 1), lambda lines: lines.insert(2, json.dumps({"kind": "run", "run_id": "forged"})))
    _day(folder, 2).unlink()
    verdict = chain.verify(runlog.day_files(folder.paths.log))
    assert [(p.path.name, p.line_no, p.message.split(":")[0]) for p in verdict.problems] == [
        ("2026-11-01.jsonl", 3, "inserted"),
        ("2026-11-03.jsonl", 1, "8 line(s) removed just before this line (seq jumps from 8 to 17)")]


def test_a_log_older_than_the_chain_is_reported_where_the_chain_starts_not_as_tampering(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    legacy = folder.paths.log_day(dt.date(2026, 5, 6))
    legacy.parent.mkdir(parents=True)
    # An atomic-agents-stack record: no prev_hash, no seq.
    legacy.write_text('{"ts": "2026-05-06T10:00:00Z", "model": "claude-opus-4-1", "cost_usd": 0.13}\n')
    unchained = _verify(folder)
    assert unchained.returncode == 0 and "no hash chain: all 1 lines predate it" in unchained.stdout
    folder.append_log([{"run_id": "new"}])
    result = _verify(folder)
    assert result.returncode == 0
    assert "INFO    log/2026-11/" in result.stdout and "the hash chain starts here; the 1 line(s) before" \
        in result.stdout
    # Lines slipped in before the first line of a chain that began on an empty log are insertions.
    fresh = bare_folder(tmp_path, "fresh")
    fresh.append_log([{"run_id": "first"}], day=dt.date(2026, 11, 1))
    _edit(_day(fresh, 1), lambda lines: lines.insert(0, '{"run_id": "backdated"}'))
    [problem] = chain.verify(runlog.day_files(fresh.paths.log)).problems
    assert (problem.level, problem.line_no, problem.message) == ("error", 1, "inserted before the start of the chain")


def test_a_new_day_file_holding_only_a_torn_line_keeps_the_seq_of_the_day_before(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    folder.append_log([{"run_id": "a"}, {"run_id": "b"}], day=dt.date(2026, 11, 20))
    _day(folder, 21).parent.mkdir(parents=True, exist_ok=True)
    _day(folder, 21).write_bytes(b'{"run_id": "killed mid-wri')  # the first line of a new day, torn
    path = AgentFolder(folder.root).append_log([{"run_id": "c"}], day=dt.date(2026, 11, 21))
    last = json.loads(path.read_bytes().splitlines()[-1])
    assert last["seq"] == 3 and last["prev_hash"] == hashlib.sha256(b'{"run_id": "killed mid-wri').hexdigest()
    verdict = chain.verify(runlog.day_files(folder.paths.log))
    assert verdict.ok and [p.level for p in verdict.problems] == ["warning"]


WRITER = textwrap.dedent("""
    import sys
    from vault_agent.vault.folder import AgentFolder
    agent = AgentFolder(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        agent.append_log([{"kind": "run", "run_id": "r%d" % i, "pad": "x" * (i % 500)},
                          {"kind": "tool_call", "run_id": "r%d.1" % i, "parent_run_id": "r%d" % i}])
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_writers_killed_at_random_moments_leave_a_chain_that_verifies(tmp_path: Path) -> None:
    folder = bare_folder(tmp_path, "auditor")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(99)
    for _ in range(8):
        kill_writer(script, folder.root, rng.uniform(0.0, 0.15))
    verdict = chain.verify(runlog.day_files(folder.paths.log))
    assert verdict.ok, [p.one_line() for p in verdict.problems]
    assert verdict.chained > 20 and all(p.level != "error" for p in verdict.problems)
