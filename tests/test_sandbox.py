"""The sandbox with real processes and real bubblewrap: what a command can see, reach, keep running and inherit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vault_agent.models.base import ToolCall
from vault_agent.ops import schedule as sched
from vault_agent.security import sandbox
from vault_agent.vault import AgentFolder, placeholders

from security_kit import LocalServer, ScriptedApprover, call, html, live_cmdlines, make_agent, needs_bwrap, runtime


def spec_for(root: Path, **kw: object) -> sandbox.Spec:
    return sandbox.Spec(read=(root,), write=(root / "memory",), read_only_inside=(root / "tools.md",), cwd=root,
                        **kw)  # type: ignore[arg-type]


@needs_bwrap
def test_a_sandboxed_command_cannot_read_outside_its_grant(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: true")
    outside = tmp_path / "vault" / "other-agent"
    outside.mkdir()
    (outside / "secret.txt").write_text("the other agent's secret")
    (tmp_path / "vault" / ".secrets.enc").write_text("ciphertext")
    script = f"cat {outside}/secret.txt; cat {tmp_path}/vault/.secrets.enc; ls /root /home /work 2>&1; cat memory/hello.md"
    result = sandbox.run(["/bin/sh", "-c", script], spec_for(root))
    out = result.stdout.decode() + result.stderr.decode()
    assert result.isolated
    assert "the other agent's secret" not in out and "ciphertext" not in out and "No such file" in out
    assert "name: Hello" in out  # its own granted folder is there
    bare = sandbox.run(["/bin/sh", "-c", f"cat {outside}/secret.txt"], spec_for(root), isolate=False)
    assert b"the other agent's secret" in bare.stdout  # without bwrap only the path rules stand in the way


@needs_bwrap
def test_writes_reach_only_writable_grants_and_never_protected_files(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]")
    result = sandbox.run(["/bin/sh", "-c", "echo new > memory/new.md && echo ok1; echo x > wiki/handbook.md; "
                          "echo x >> tools.md; echo x > /tmp/scratch && echo ok2"], spec_for(root))
    err = result.stderr.decode()
    assert result.stdout.decode().split() == ["ok1", "ok2"]
    assert err.count("Read-only file system") == 2
    assert (root / "memory" / "new.md").read_text() == "new\n"
    assert "x" not in (root / "tools.md").read_text().splitlines() and "Rates" in (root / "wiki/handbook.md").read_text()
    assert not Path("/tmp/scratch").exists()  # the sandbox's /tmp is its own


CREATE_PROTECTED = ("echo '- when: hourly' > schedule.md; echo paused > PAUSED.md; mkdir -p tools approvals; "
                    "echo x > tools/evil.md; echo x > approvals/a.md; ln -s /tmp journal; echo x > wiki/new.md; "
                    "echo x > drafts/ok.md && echo wrote-drafts")


@needs_bwrap
def test_a_command_cannot_create_a_protected_path_that_does_not_exist_yet(tmp_path: Path) -> None:
    # The whole folder is writable (the default grant); schedule.md, journal/ and the rest do not exist yet.
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: true")
    shutil.rmtree(root / "wiki")
    (root / ".vault-agent").mkdir()  # as in every run (its run lock is there)
    before = sorted(p.name for p in root.iterdir())
    outcome = call(runtime(root), "shell", command=CREATE_PROTECTED)
    assert "wrote-drafts" in outcome.result.content
    assert outcome.result.content.count("Read-only file system") >= 5, outcome.result.content
    assert sorted(p.name for p in root.iterdir()) == before  # no placeholder is left behind either
    assert list((root / ".vault-agent").iterdir()) == []  # nor the record of them
    assert (root / "drafts" / "ok.md").read_text() == "x\n"


KEEP_HOLDING = """
import sys
from pathlib import Path
from vault_agent.security import sandbox
root = Path(sys.argv[1])
spec = sandbox.Spec(read=(root,), write=(root,), read_only_inside=(root / "PAUSED.md", root / "journal"), agent=root,
                    cwd=root)
sandbox.run(["/bin/sh", "-c", f"echo > drafts/started; sleep {sys.argv[2]}"], spec)
"""


def kill_while_holding(root: Path) -> None:
    """SIGKILL a runtime process while its command runs with PAUSED.md and journal/ held, and let its sandbox die."""
    marker = f"33.{os.getpid()}"
    child = subprocess.Popen([sys.executable, "-c", KEEP_HOLDING, str(root), marker])
    try:
        deadline = time.monotonic() + 10
        while not (root / "drafts" / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 5
    while live_cmdlines(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (root / "drafts" / "started").exists() and live_cmdlines(f"sleep {marker}") == []


@needs_bwrap
def test_placeholders_a_killed_runtime_left_pause_nothing_and_go_at_the_next_run_lock(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]")
    folder = AgentFolder(root)
    kill_while_holding(root)
    assert (root / "PAUSED.md").read_bytes() == b"" and list((root / "journal").iterdir()) == []
    assert sched.pause_info(folder) is None  # the runtime's empty stand-in is not a person pausing the agent
    assert not sched.resume(folder) and (root / "PAUSED.md").exists()
    with folder.run_lock(timeout=0, run_id="20261121T090000-abcdef", on_killed=lambda owner: None):
        assert not (root / "PAUSED.md").exists() and not (root / "journal").exists()
    assert not (root / ".vault-agent" / placeholders.RECORD).exists()


@needs_bwrap
def test_a_file_a_person_put_where_a_placeholder_was_left_is_theirs(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]")
    folder = AgentFolder(root)
    kill_while_holding(root)
    (root / "mine.md").write_text("")
    os.replace(root / "mine.md", root / "PAUSED.md")  # a person pausing the agent with an empty file of their own
    (root / "journal" / "2026-11-21.md").write_text("# 2026-11-21\n")
    assert sched.pause_info(folder) is not None
    with folder.run_lock(timeout=0, run_id="20261121T090000-abcdef", on_killed=lambda owner: None):
        pass
    assert (root / "PAUSED.md").exists() and (root / "journal" / "2026-11-21.md").exists()
    assert sched.pause_info(folder) is not None


def test_a_held_placeholder_is_no_pause_and_resume_leaves_it(tmp_path: Path) -> None:
    # No command runs here: holding the place is what a running command does, in this process or another.
    root = make_agent(tmp_path, "tools: [shell]")
    folder = AgentFolder(root)
    with placeholders.hold(root, [root / "PAUSED.md"]) as held:
        assert held == [root / "PAUSED.md"] and (root / "PAUSED.md").exists()
        assert sched.pause_info(folder) is None
        assert not sched.resume(folder) and (root / "PAUSED.md").exists()
    assert not (root / "PAUSED.md").exists()
    (root / "PAUSED.md").write_text("")
    assert sched.pause_info(folder) is not None


@needs_bwrap
def test_a_protected_path_stays_held_while_a_parallel_command_still_runs(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: true")
    [quick, slow] = runtime(root).execute([
        ToolCall("quick", "shell", {"command": "true"}),
        ToolCall("slow", "shell", {"command": "sleep 1; echo '- when: hourly' > schedule.md && echo created"})])
    assert quick.status == slow.status == "ok"
    assert "created" not in slow.result.content and "Read-only file system" in slow.result.content
    assert not (root / "schedule.md").exists()


@needs_bwrap
def test_what_the_runtime_writes_under_a_placeholder_meanwhile_is_kept(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]")
    spec = sandbox.Spec(read=(root,), write=(root,), read_only_inside=(root / "approvals", root / "schedule.md"),
                        cwd=root)
    writer = threading.Timer(0.5, lambda: (root / "approvals" / "req.md").write_text("asked\n"))
    writer.start()
    result = sandbox.run(["/bin/sh", "-c", "sleep 1.5; ls approvals; echo x > approvals/b.md"], spec)
    writer.join()
    assert "req.md" not in result.stdout.decode()  # the command sees its empty placeholder, not the host folder
    assert "Read-only file system" in result.stderr.decode()
    assert [p.name for p in (root / "approvals").iterdir()] == ["req.md"]
    assert not (root / "schedule.md").exists()


@needs_bwrap
def test_a_sandboxed_command_reaches_the_network_only_when_granted(tmp_path: Path,
                                                                   servers: list[LocalServer]) -> None:
    server = LocalServer(html("hi"))
    servers.append(server)
    root = make_agent(tmp_path, "tools: [shell]")
    probe = ["/bin/bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{server.port} && printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' >&3"
             " && head -c 12 <&3"]
    cut_off = sandbox.run(probe, spec_for(root))
    assert cut_off.exit_code != 0 and server.hits == []
    granted = sandbox.run(probe, spec_for(root, network=True))
    assert granted.stdout.startswith(b"HTTP/1.0 200") and [p for p, _ in server.hits] == ["/probe"]


@pytest.mark.parametrize("isolate", [pytest.param(None, marks=needs_bwrap, id="bwrap"),
                                     pytest.param(False, id="no-bwrap")])
def test_a_timeout_kills_the_command_and_the_children_it_forked(tmp_path: Path, isolate: bool | None) -> None:
    marker = f"31.{os.getpid()}{int(isolate is None)}"
    started = time.monotonic()
    result = sandbox.run(["/bin/sh", "-c", f"sleep {marker} & sleep {marker} & (sleep {marker}; :) & wait"],
                         sandbox.Spec(cwd=tmp_path, limits=sandbox.Limits(timeout_s=0.5)), isolate=isolate)
    assert result.timed_out and result.exit_code is None
    assert time.monotonic() - started < 3
    deadline = time.monotonic() + 2
    while live_cmdlines(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live_cmdlines(f"sleep {marker}") == []


@needs_bwrap
def test_a_child_that_leaves_the_process_group_still_dies_with_the_sandbox(tmp_path: Path) -> None:
    marker = f"32.{os.getpid()}"
    result = sandbox.run(["/bin/sh", "-c", f"setsid sleep {marker} & echo started"],
                         sandbox.Spec(cwd=tmp_path, limits=sandbox.Limits(timeout_s=5)))
    assert result.stdout == b"started\n" and not result.timed_out
    time.sleep(0.1)
    assert live_cmdlines(f"sleep {marker}") == []


@needs_bwrap
def test_sandboxed_commands_die_with_the_runtime(tmp_path: Path) -> None:
    marker = f"33.{os.getpid()}"
    runtime_proc = subprocess.Popen(
        [sys.executable, "-c", "from vault_agent.security import sandbox; "
         f"sandbox.run(['/bin/sh', '-c', 'sleep {marker}'], sandbox.Spec(limits=sandbox.Limits(timeout_s=60)))"])
    deadline = time.monotonic() + 10
    while not live_cmdlines(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live_cmdlines(f"sleep {marker}")
    runtime_proc.send_signal(signal.SIGKILL)  # no clean-up code runs in the runtime
    runtime_proc.wait()
    deadline = time.monotonic() + 3
    while live_cmdlines(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live_cmdlines(f"sleep {marker}") == []


@pytest.mark.parametrize("isolate", [pytest.param(None, marks=needs_bwrap, id="bwrap"),
                                     pytest.param(False, id="no-bwrap")])
def test_the_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolate: bool | None) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-runtime-key-never-inherited")
    result = sandbox.run(["/usr/bin/env"], sandbox.Spec(cwd=tmp_path, env={"GRANTED": "yes"}), isolate=isolate)
    names = {line.split("=", 1)[0] for line in result.stdout.decode().splitlines()}
    assert "OPENAI_API_KEY" not in names and "GRANTED" in names
    assert names <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TERM", "GRANTED", "PWD", "SHLVL", "_"}


@pytest.mark.parametrize("isolate", [pytest.param(None, marks=needs_bwrap, id="bwrap"),
                                     pytest.param(False, id="no-bwrap")])
def test_rlimits_stop_runaway_cpu_and_file_size(tmp_path: Path, isolate: bool | None) -> None:
    spin = sandbox.run(["/bin/sh", "-c", "while :; do :; done"],
                       sandbox.Spec(cwd=tmp_path, limits=sandbox.Limits(timeout_s=10, cpu_s=1)), isolate=isolate)
    assert not spin.timed_out and spin.exit_code in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU, 128 + signal.SIGKILL)
    assert spin.seconds < 5
    big = sandbox.run(["/bin/sh", "-c", f"head -c 3000000 /dev/zero > {tmp_path}/big"],
                      sandbox.Spec(cwd=tmp_path, write=(tmp_path,), limits=sandbox.Limits(file_size_mb=1)),
                      isolate=isolate)
    assert big.exit_code != 0 and (tmp_path / "big").stat().st_size <= 1_048_576


def test_output_beyond_the_cap_is_dropped_and_said_so(tmp_path: Path) -> None:
    result = sandbox.run(["/bin/sh", "-c", "yes | head -c 300000"],
                         sandbox.Spec(cwd=tmp_path, limits=sandbox.Limits(output_bytes=1000)), isolate=False)
    assert len(result.stdout) == 1000 and result.truncated and result.exit_code == 0


@needs_bwrap
def test_the_shell_tool_runs_in_the_sandbox_with_the_agents_grants(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  write: [memory/]\n  shell: {allow: [cat, ls, sh]}")
    rt = runtime(root, approver=ScriptedApprover("approved"))
    out = call(rt, "shell", command="cat memory/hello.md; ls /", cwd=".")
    assert out.decision == "approved" and "names /, outside the granted paths" in out.reason
    assert out.status == "ok" and "sandboxed" in out.result.content and "name: Hello" in out.result.content
    assert "work" not in out.result.content.split("]", 1)[1].split()  # the host's folders are not there
    slow = call(rt, "shell", command="sh -c 'sleep 5'", timeout_s=0.3)
    assert slow.status == "error" and "timed out after 0.3 s" in slow.result.content
