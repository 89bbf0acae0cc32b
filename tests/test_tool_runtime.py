"""The tool pipeline end to end with real tools: grants, validation, secrets, approvals, parallel calls,
progressive disclosure, artifacts, custom tools and the `tools` commands."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from memory_helpers import outranked_notes

from vault_agent.cli import main
from vault_agent.models.base import ToolCall
from vault_agent.security.approvals import FileApprover, read_status
from vault_agent.tools.disclosure import CORE
from vault_agent.tools.executor import run_calls
from vault_agent.vault.layout import AgentPaths

from security_kit import (KEY, ScriptedApprover, call, files_containing, has_python3, make_agent, needs_bwrap,
                          runtime, store_secret)

CANARY = "canary-7Qx9-do-not-leak"


# --- grant, validation, secrets --------------------------------------------------

def test_a_tool_not_listed_in_tools_md_is_refused_and_one_listed_runs(tmp_path: Path) -> None:
    rt = runtime(make_agent(tmp_path, "tools: [read_file]"))
    refused = call(rt, "write_file", path="memory/x.md", content="x")
    assert (refused.status, refused.decision) == ("refused", "refused")
    assert "not granted" in refused.result.content and refused.result.is_error
    ok = call(rt, "read_file", path="memory/hello.md")
    assert (ok.status, ok.decision) == ("ok", "allowed") and "Hi." in ok.result.content


def test_a_listed_tool_without_its_capability_is_refused(tmp_path: Path) -> None:
    rt = runtime(make_agent(tmp_path, "tools: [shell, web_fetch]"))
    for name, args in (("shell", {"command": "ls"}), ("web_fetch", {"url": "https://arxiv.org/"})):
        out = call(rt, name, **args)
        assert out.decision == "refused" and f"needs capabilities.{'shell' if name == 'shell' else 'network'}" \
            in out.reason


def test_invalid_arguments_go_back_to_the_model_as_an_error(tmp_path: Path) -> None:
    rt = runtime(make_agent(tmp_path, "tools: [read_file]"))
    out = call(rt, "read_file", path="memory/hello.md", offset=0, extra=True)
    assert (out.status, out.decision) == ("invalid", "invalid") and "invalid arguments" in out.result.content
    [bad_json] = rt.execute([ToolCall("c1", "read_file", {"_invalid_json": "{"})])
    assert bad_json.status == "invalid" and "not valid JSON" in bad_json.result.content


def test_file_tools_read_write_edit_list_and_search_within_the_grant(tmp_path: Path) -> None:
    rt = runtime(make_agent(tmp_path, "tools: [read_file, write_file, edit_file, list_dir, search_files]\n"
                                      "capabilities:\n  write: [drafts/]"))
    assert call(rt, "write_file", path="drafts/a.md", content="one\ntwo\nthree\n").result.content.endswith(
        "created (14 bytes)")
    assert call(rt, "edit_file", path="drafts/a.md", old_text="two", new_text="2").status == "ok"
    assert call(rt, "read_file", path="drafts/a.md", offset=2, limit=1).result.content.startswith("2\n")
    assert "drafts/a.md" in call(rt, "list_dir", path=".", recursive=True).result.content
    assert call(rt, "search_files", pattern="thr+ee").result.content == "drafts/a.md:3: three"
    dup = call(rt, "edit_file", path="drafts/a.md", old_text="e", new_text="E")
    assert dup.status == "error" and "occurs" in dup.result.content
    assert call(rt, "write_file", path="memory/x.md", content="x").decision == "refused"


def test_a_secret_reference_needs_a_grant_and_a_tool_that_takes_secrets(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [write_file, shell]\ncapabilities:\n  shell: true\n  secrets: [CANARY]")
    env = store_secret(root.parent, "CANARY", CANARY)
    store_secret(root.parent, "OTHER", "other-secret-99")
    rt = runtime(root, env=env)
    not_granted = call(rt, "shell", command="echo {{secret:OTHER}}")
    assert not_granted.decision == "refused" and "OTHER not granted" in not_granted.reason
    into_file = call(rt, "write_file", path="memory/x.md", content="{{secret:CANARY}}")
    assert into_file.decision == "refused" and "does not take secrets" in into_file.reason
    assert not (root / "memory" / "x.md").exists()


@needs_bwrap
def test_a_secret_reaches_the_command_by_environment_and_never_the_model(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: true\n  secrets: [CANARY]\n"
                                "  env: {SERVICE_TOKEN: CANARY}")
    rt = runtime(root, env=store_secret(root.parent, "CANARY", CANARY))
    out = call(rt, "shell", command='test "{{secret:CANARY}}" = "$SERVICE_TOKEN" && echo same; '
                                   'echo "{{secret:CANARY}}"; cat /proc/self/cmdline')
    assert out.status == "ok" and "same" in out.result.content
    assert CANARY not in out.result.content and "[REDACTED:secret:CANARY]" in out.result.content
    assert out.secrets == ["CANARY"] and out.redacted == ["secret:CANARY"]
    assert out.target is not None and "{{secret:CANARY}}" in out.target  # the record keeps the reference


# --- approvals -------------------------------------------------------------------

def test_an_approved_command_runs_and_a_denied_one_does_not(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: {allow: [echo], approve: [date]}")
    approver = ScriptedApprover("approved", "denied")
    rt = runtime(root, approver=approver)
    ran = call(rt, "shell", command="date +%Y")
    assert (ran.status, ran.decision) == ("ok", "approved") and "approval before date" in ran.reason
    denied = call(rt, "shell", command="date +%Y")
    assert (denied.status, denied.decision) == ("refused", "denied") and "approval denied" in denied.result.content
    assert call(rt, "shell", command="echo hi").decision == "allowed"
    assert [r.tool for r in approver.asked] == ["shell", "shell"]


def _answer_when_asked(folder: Path, status: str) -> threading.Thread:
    def answer() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pending = list(folder.glob("*.md")) if folder.is_dir() else []
            if pending:
                text = pending[0].read_text()
                pending[0].write_text(text.replace("status: pending", f"status: {status}"))  # a person edits it
                return
            time.sleep(0.02)
    thread = threading.Thread(target=answer)
    thread.start()
    return thread


@pytest.mark.parametrize("answer, decision", [("approve", "approved"), ("deny", "denied")])
def test_a_person_answers_by_editing_the_approval_file(tmp_path: Path, answer: str, decision: str) -> None:
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: {allow: [echo], approve: [date]}")
    rt = runtime(root, approver=FileApprover(root, timeout_s=10, poll_s=0.02))
    person = _answer_when_asked(root / "approvals", answer)
    out = call(rt, "shell", command="date +%Y")
    person.join()
    assert out.decision == decision and out.approval and out.approval.startswith("approvals/")
    assert read_status(root / out.approval) == decision
    assert "decided:" in (root / out.approval).read_text()


def test_an_unanswered_approval_expires_as_a_denial(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: {allow: [echo], approve: [date]}")
    rt = runtime(root, approver=FileApprover(root, timeout_s=0.2, poll_s=0.02))
    out = call(rt, "shell", command="date")
    assert (out.status, out.decision) == ("refused", "expired")
    assert "status: expired" in (root / out.approval).read_text()


def test_tools_call_exits_4_when_approval_expires_and_3_when_refused(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell, read_file]\ncapabilities:\n  shell: {allow: [echo], approve: [date]}\n"
                                "  approval_timeout_s: 0.2")
    vault = str(root.parent)
    expired = CliRunner().invoke(main, ["--vault", vault, "tools", "call", "agent", "shell", "--json",
                                        '{"command": "date"}'])
    assert expired.exit_code == 4 and json.loads(expired.output)["decision"] == "expired"
    refused = CliRunner().invoke(main, ["--vault", vault, "tools", "call", "agent", "read_file", "--json",
                                        '{"path": "../../etc/passwd"}'])
    assert refused.exit_code == 3 and "outside the agent folder" in json.loads(refused.output)["reason"]
    ran = CliRunner().invoke(main, ["--vault", vault, "tools", "call", "agent", "read_file", "--json",
                                    '{"path": "memory/hello.md"}'])
    assert ran.exit_code == 0 and "Hi." in json.loads(ran.output)["content"]
    records = [json.loads(line) for p in (root / "log").rglob("*.jsonl") for line in p.read_text().splitlines()]
    assert [r["decision"] for r in records] == ["expired", "refused", "allowed"]
    assert all(r["kind"] == "tool_call" and r["trigger"] == "cli" and "parent_run_id" not in r for r in records)


def test_tools_call_exits_75_with_one_line_while_a_run_holds_the_agent(tmp_path: Path) -> None:
    from vault_agent.vault.folder import AgentFolder

    root = make_agent(tmp_path, "tools: [read_file]")
    with AgentFolder(root).run_lock(timeout=0, run_id="20261121T100000-abcdef", on_killed=lambda owner: None):
        busy = CliRunner().invoke(main, ["--vault", str(root.parent), "tools", "call", "agent", "read_file",
                                         "--json", '{"path": "memory/hello.md"}', "--wait", "0"])
    assert busy.exit_code == 75, busy.output
    assert busy.stderr.startswith("error: ") and "agent busy" in busy.stderr and busy.stderr.count("\n") == 1
    assert "Traceback" not in busy.output


def test_the_terminal_prompt_approves_on_y(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: {allow: [echo], approve: [date]}")
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vault_agent", "--vault", str(root.parent), "tools", "call",
                             "agent", "shell", "--json", '{"command": "date +%Y"}'],
                            stdin=terminal, stdout=subprocess.PIPE, stderr=terminal, env={**os.environ})
    os.close(terminal)
    seen = b""
    while b"allow? [y/N]" not in seen:
        seen += os.read(controller, 1024)
    os.write(controller, b"y\n")
    out, _ = proc.communicate(timeout=20)
    os.close(controller)
    assert proc.returncode == 0 and json.loads(out)["decision"] == "approved"
    assert b"date +%Y" in seen and b"asks for approval before date" in seen


# --- parallel calls ----------------------------------------------------------------

@needs_bwrap
def test_independent_calls_run_in_parallel_and_return_in_call_order(tmp_path: Path) -> None:
    rt = runtime(make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: true"))
    calls = [ToolCall(f"c{i}", "shell", {"command": f"sleep 0.{8 - i}; echo {i}"}) for i in range(8)]
    started = time.monotonic()
    outcomes = rt.execute(calls)
    elapsed = time.monotonic() - started
    assert [o.result.content.splitlines()[-1] for o in outcomes] == [str(i) for i in range(8)]
    assert [o.call.id for o in outcomes] == [c.id for c in calls]
    assert elapsed < 1.5, elapsed  # one after another would take 3.6 s


def test_a_tool_that_is_not_parallel_safe_runs_alone_in_its_place() -> None:
    running: list[str] = []
    overlap: list[tuple[str, list[str]]] = []
    lock = threading.Lock()

    def work(i: int, call: str) -> str:
        with lock:
            running.append(call)
            overlap.append((call, list(running)))
        time.sleep(0.05)
        with lock:
            running.remove(call)
        return call.upper()

    calls = ["read1", "read2", "WRITE", "read3", "read4"]
    results = run_calls(calls, work, lambda c: c.islower())
    assert results == [c.upper() for c in calls]
    seen = dict(overlap)
    assert seen["WRITE"] == ["WRITE"]  # alone
    assert not {"read3", "read4"} & set(seen["read1"] + seen["read2"])  # the reads after it waited
    assert {"read1", "read2"} <= set(seen["read1"]) | set(seen["read2"])  # the reads before it overlapped


# --- progressive disclosure, artifacts ------------------------------------------------

def _custom_tool(root: Path, name: str, description: str, script: str = "") -> None:
    folder = root / "tools" / name
    folder.mkdir(parents=True)
    (folder / "TOOL.md").write_text(
        f"---\nname: {name}\ndescription: {description}\ncommand: [python3, run.py]\ninput_schema:\n"
        "  type: object\n  properties:\n    text: {type: string}\n  additionalProperties: false\n---\n")
    (folder / "run.py").write_text(script or
                                   "import json, sys\nreq = json.load(sys.stdin)\n"
                                   "print(json.dumps({'content': req['tool'] + ':' + req['arguments'].get('text', '')}))\n")


def test_many_tools_are_shown_as_core_tools_plus_search_and_call(tmp_path: Path) -> None:
    extra = [f"tool_{i:02d}" for i in range(10)]
    root = make_agent(tmp_path, "tools: [read_file, list_dir, write_file, remember, memory_search, memory_read, "
                                f"log_read, {', '.join(extra)}]")
    for i, name in enumerate(extra):
        _custom_tool(root, name, "Converts a currency amount" if i == 7 else f"Does thing number {i}")
    rt = runtime(root)
    names = [s.name for s in rt.specs()]
    assert set(names) == {*CORE, "tool_search", "tool_call"}
    assert "tool_07" in next(s.description for s in rt.specs() if s.name == "tool_search")
    found = call(rt, "tool_search", query="convert currency")
    assert found.result.content.startswith("## tool_07")
    assert "tool_07" in [s.name for s in rt.specs()]  # directly callable from now on
    if has_python3():
        direct = call(rt, "tool_07", text="x")
        assert direct.status == "ok" and direct.result.content == "tool_07:x"
        via = call(rt, "tool_call", name="tool_03", arguments={"text": "y"})
        assert (via.status, via.tool, via.via, via.result.content) == ("ok", "tool_03", "tool_call", "tool_03:y")
    assert call(rt, "tool_call", name="shell", arguments={"command": "ls"}).decision == "refused"
    assert call(rt, "tool_call", name="tool_03", arguments={"bad": 1}).status == "invalid"


def test_few_tools_are_all_shown(tmp_path: Path) -> None:
    rt = runtime(make_agent(tmp_path, "tools: [read_file, remember, log_read]"))
    assert [s.name for s in rt.specs()] == ["read_file", "remember", "log_read"]


def test_a_large_output_is_cut_with_a_pointer_to_the_whole_in_an_artifact(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell, read_file]\ncapabilities:\n  read: [memory/]\n  shell: true")
    rt = runtime(root)
    key = "sk-proj-" + "A" * 30
    out = call(rt, "shell", command=f'for i in $(seq 0 2999); do echo "line $i {key}$i"; done')
    assert out.status == "ok" and out.artifact is not None and out.artifact.startswith(".vault-agent/artifacts/")
    assert len(out.result.content) < 13_000 and f"read_file path={out.artifact}" in out.result.content
    saved = (root / out.artifact).read_text()
    assert key not in saved and saved.count("[REDACTED:openai-key]") == 3000  # scrubbed before it was written
    page = call(rt, "read_file", path=out.artifact, offset=402, limit=2)  # line 1 is the exit-code header
    assert page.status == "ok" and page.result.content.startswith("line 400 [REDACTED:openai-key]")


# --- custom tools ------------------------------------------------------------------------

@needs_bwrap
@pytest.mark.skipif(not has_python3(), reason="no python3 on the sandbox PATH")
def test_a_custom_tool_runs_as_a_sandboxed_subprocess_with_its_secrets_by_reference(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [probe]\ncapabilities:\n  read: [memory/]\n  secrets: [CANARY]")
    (tmp_path / "vault" / "outside.txt").write_text("outside the grant")
    folder = root / "tools" / "probe"
    folder.mkdir(parents=True)
    (folder / "TOOL.md").write_text(
        "---\nname: probe\ndescription: Probe its world.\ncommand: [python3, probe.py]\nenv:\n"
        "  API_KEY: '{{secret:CANARY}}'\ninput_schema:\n  type: object\n  properties:\n    path: {type: string}\n"
        "  required: [path]\n---\n")
    (folder / "probe.py").write_text(
        "import json, os, sys\nreq = json.load(sys.stdin)\nroot = os.environ['VAULT_AGENT_ROOT']\n"
        "seen = os.path.exists(os.path.join(root, '..', 'outside.txt'))\n"
        "text = open(os.path.join(root, req['arguments']['path'])).read()\n"
        "print(json.dumps({'content': f\"pid={os.getpid()} outside={seen} key={os.environ['API_KEY']} {text}\"}))\n")
    rt = runtime(root, env=store_secret(root.parent, "CANARY", CANARY))
    out = call(rt, "probe", path="memory/hello.md")
    assert out.status == "ok", out.result.content
    assert "outside=False" in out.result.content and "name: Hello" in out.result.content
    assert f"pid={os.getpid()} " not in out.result.content  # its own process, not imported
    assert "key=[REDACTED:secret:CANARY]" in out.result.content and out.secrets == ["CANARY"]
    assert call(rt, "probe").status == "invalid"


def test_a_broken_manifest_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [read_file, broken, missing]")
    (root / "tools" / "broken").mkdir(parents=True)
    (root / "tools" / "broken" / "TOOL.md").write_text("---\nname: broken\ncommand: 3\n---\n")
    result = CliRunner().invoke(main, ["--vault", str(root.parent), "tools", "list", "agent", "--json"])
    listing = json.loads(result.output)
    assert [t["name"] for t in listing["tools"]] == ["read_file"]
    assert any("command must be a list" in f for f in listing["findings"])
    assert any("'missing', which is neither built in nor a custom tool" in f for f in listing["findings"])


def test_custom_tool_failures_reach_the_model_as_errors(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [fails, noisy]")
    _custom_tool(root, "fails", "Fails.", "import sys\nsys.stderr.write('boom')\nsys.exit(3)\n")
    _custom_tool(root, "noisy", "Prints text.", "print('not json')\n")
    rt = runtime(root)
    if not has_python3():
        pytest.skip("no python3 on the sandbox PATH")
    assert "exited with 3: boom" in call(rt, "fails").result.content
    assert "must print one JSON object" in call(rt, "noisy").result.content


def test_tools_list_says_what_is_granted_and_what_the_model_sees(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [read_file, shell, web_fetch]\ncapabilities:\n  shell: true")
    result = CliRunner().invoke(main, ["--vault", str(root.parent), "tools", "list", "agent"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "needs shell" in lines["shell"] and "NOT granted" not in lines["shell"]
    assert "needs network (NOT granted" in lines["web_fetch"]
    assert not files_containing(root, KEY.encode())


def test_memory_search_finds_notes_by_their_aliases_and_says_to_rephrase_when_nothing_fits(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [memory_search, memory_read]")
    (root / "memory" / "physio.md").write_text("---\ntype: reference\nname: Physio\naliases: [fysiotherapeut]\n"
                                               "description: Marloes at FysioFit\n---\nTuesdays 08:00.\n")
    rt = runtime(root)
    found = call(rt, "memory_search", query="fysiotherapeut")
    assert found.result.content.startswith("- [[physio]] Physio [reference] — Marloes at FysioFit")
    assert call(rt, "memory_search", query="physio", type="decision").result.content.startswith("no matches")
    wrong = call(rt, "memory_search", query="physio", type="notes").result
    assert wrong.is_error and wrong.content.startswith("unknown type 'notes' (fix: use one of archive, decision, ")
    nothing = call(rt, "memory_search", query="zeppelin").result.content
    assert nothing == "no matches for 'zeppelin': try other words for the same thing"


def test_memory_search_returns_as_many_notes_as_asked_from_the_read_grant_however_many_journal_entries_outrank_them(
        tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [memory_search]\ncapabilities:\n  read: [memory/]\n  write: [memory/]")
    notes = outranked_notes(AgentPaths(root), above="journal")  # 70 entries, outside the grant
    rt = runtime(root)
    for limit in (1, 3, 8):
        found = call(rt, "memory_search", query="kayak", limit=limit).result.content
        assert "journal" not in found and "run " not in found
        assert [line.split()[1] for line in found.splitlines() if line.startswith("- ")] == \
            [f"[[{Path(n).stem}]]" for n in notes[:limit]]


def test_memory_read_pages_through_a_long_note_with_its_own_offset(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [memory_read]")
    lines = [f"line {i} of the long note." for i in range(1, 30_001)]  # 0.8 MB, under the 1 MiB a note may be
    (root / "memory" / "long.md").write_text("---\ntype: reference\nname: Long\n---\n" + "\n".join(lines) + "\n")
    rt = runtime(root)
    seen, offset, calls = [], 1, 0
    while True:
        out = call(rt, "memory_read", name="long", offset=offset)
        calls += 1
        assert out.status == "ok" and out.artifact is None and "read_file" not in out.result.content
        body = out.result.content.split('<note path="memory/long.md">\n', 1)[1].rsplit("\n</note>", 1)[0]
        pointer = body.rsplit("\n[lines ", 1)
        seen += [ln for ln in pointer[0].splitlines() if ln.startswith("line ")]
        if len(pointer) == 1:
            break
        offset = int(pointer[1].split("read on with offset=")[1].rstrip("]"))
    assert seen == lines and calls > 10


def test_memory_search_and_read_say_when_a_note_is_superseded_or_expired(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [memory_search, memory_read]")
    memory = root / "memory"
    (memory / "rate-2026.md").write_text("---\ntype: decision\nname: Day rate 2026\n---\nThe day rate is €720.\n")
    (memory / "rate-2027.md").write_text("---\ntype: decision\nname: Day rate 2027\nsupersedes: rate-2026\n---\n"
                                         "The day rate is €780.\n")
    (memory / "voucher.md").write_text("---\ntype: reference\nname: Day rate voucher\nexpires: 2020-01-31\n---\n"
                                       "A day rate discount voucher.\n")
    # atomic-agents-stack marks the old note itself, naming the new one or not.
    (memory / "rate-2025.md").write_text('---\ntype: decision\nname: Day rate 2025\nsuperseded_by: "[[rate-2027]]"\n'
                                         "---\nThe day rate was €690.\n")
    (memory / "rate-2024.md").write_text("---\ntype: decision\nname: Day rate 2024\nsuperseded_by: true\n---\n"
                                         "The day rate was €650.\n")
    rt = runtime(root)
    found = {line.split()[1]: line for line in call(rt, "memory_search", query="day rate").result.content.splitlines()
             if line.startswith("- ")}
    assert "(superseded by [[rate-2027]])" in found["[[rate-2026]]"]
    assert "(expired 2020-01-31)" in found["[[voucher]]"]
    assert "(superseded by [[rate-2027]])" in found["[[rate-2025]]"] and "(superseded)" in found["[[rate-2024]]"]
    assert "superseded" not in found["[[rate-2027]]"] and "expired" not in found["[[rate-2027]]"]
    old = call(rt, "memory_read", name="rate-2026").result.content
    assert old.startswith("(this note is superseded by [[rate-2027]]: not current)\n") and "€720" in old
    assert call(rt, "memory_read", name="rate-2027").result.content.startswith("<note ")
    older = call(rt, "memory_read", name="Day rate 2025").result.content
    assert older.startswith("(this note is superseded by [[rate-2027]]: not current)\n") and "€690" in older
