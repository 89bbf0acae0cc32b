"""Files and folders that are not what they should be: a named pipe, a folder or an oversized file where a
note is expected (refused at once, never waited on), an unreadable folder of notes (left out, named by doctor),
a read-only index or state folder (one line naming the file and the fix)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from vault_agent.memory.catalog import Catalog
from vault_agent.vault.layout import AgentPaths
from vault_agent.vault.notes import NoteStore, read_note
from vault_agent.vault.reading import LINK_ERRNOS, Beneath, FileTooLarge, NotRegularFile, read_regular

from security_kit import call, make_agent, needs_bwrap, runtime

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
T = TypeVar("T")


def pipe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def within(seconds: float, fn: Callable[[], T], fifo: Path) -> T:
    """fn's result, failing the test if fn is still waiting on `fifo` after `seconds`."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except Exception as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # lets the stuck reader go
        pytest.fail(f"still waiting on the pipe {fifo.name} after {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_read_regular_refuses_a_pipe_a_folder_an_oversized_file_and_beneath_a_link(tmp_path: Path) -> None:
    fifo = pipe(tmp_path / "note.md")
    with pytest.raises(NotRegularFile):
        within(5, lambda: read_regular(fifo, 100), fifo)
    with pytest.raises(IsADirectoryError):
        read_regular(tmp_path, 100)
    big = tmp_path / "big.md"
    big.write_bytes(b"x" * 101)
    with pytest.raises(FileTooLarge) as too_large:
        read_regular(big, 100)
    assert too_large.value.size == 101
    assert read_regular(big, 101) == b"x" * 101
    (tmp_path / "link.md").symlink_to(big)
    assert read_regular(tmp_path / "link.md", 101) == b"x" * 101
    with pytest.raises(OSError) as linked, Beneath(tmp_path) as beneath:
        beneath.read("link.md", 101)
    assert linked.value.errno in LINK_ERRNOS
    (tmp_path / "empty.md").write_bytes(b"")
    assert read_regular(tmp_path / "empty.md", 0) == b""


def test_a_pipe_among_the_notes_is_left_out_of_the_index_and_read_note_says_what_it_is(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [read_file]")
    fifo = pipe(root / "memory" / "people" / "pipe.md")
    pipe(root / "wiki" / "pipe.md")
    with Catalog(AgentPaths(root)) as cat:
        stats = within(10, cat.sync, fifo)
        assert (stats.added, within(10, lambda: cat.sync({"memory/people/pipe.md"}), fifo).added) == (2, 0)
        assert [row[0] for row in cat.conn.execute("SELECT path FROM files ORDER BY path")] == [
            "memory/hello.md", "wiki/handbook.md"]
    note, [finding] = within(5, lambda: read_note(fifo), fifo)
    assert note is None and "not a regular file" in finding.message and finding.level == "warning"


def test_the_file_tools_answer_at_once_about_a_pipe_the_agent_made(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [read_file, search_files]")
    fifo = pipe(root / "drafts" / "out.md")
    (root / "drafts" / "keep.md").write_text("needle here\n")
    read = within(10, lambda: call(runtime(root), "read_file", path="drafts/out.md"), fifo)
    assert read.status == "error" and "not a regular file" in read.result.content
    found = within(10, lambda: call(runtime(root), "search_files", pattern="needle", path="drafts"), fifo)
    assert found.result.content == "drafts/keep.md:1: needle here"
    rt = runtime(make_agent(tmp_path, "tools: [write_file]\ncapabilities:\n  write: [drafts/]"))
    wrote = within(10, lambda: call(rt, "write_file", path="drafts/out.md", content="x"), fifo)
    assert wrote.status == "error" and "pipe" in wrote.result.content and fifo.exists()


def test_vault_agent_index_finishes_with_a_pipe_in_memory(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [read_file]")
    pipe(root / "memory" / "pipe.md")
    done = subprocess.run([sys.executable, "-m", "vault_agent", "--vault", str(root.parent), "index", root.name],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_a_pipe_in_place_of_a_persona_file_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    from vault_agent.errors import ConfigError
    from vault_agent.vault.config import load_persona

    root = make_agent(tmp_path, "tools: [read_file]")
    fifo = pipe(root / "persona" / "USER.md")
    with pytest.raises(ConfigError) as err:
        within(5, lambda: load_persona(AgentPaths(root), []), fifo)
    assert err.value.one_line() == f"{fifo}: is a pipe, socket or device, not a file (fix: replace it with a Markdown file)"


def _as_a_plain_user() -> list[str]:
    """A command prefix under which file permissions hold: root reads any folder unless it drops the
    capabilities that let it (setpriv, from util-linux)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux) to drop the right to read any folder")
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def test_an_unreadable_folder_of_notes_is_left_out_of_the_index_and_named_by_doctor(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [read_file]")
    (root / "memory" / "people").mkdir()
    (root / "memory" / "people" / "INDEX.md").write_text("---\ntype: user\nname: People\n---\nA note, not the INDEX.\n")
    locked = root / "memory" / "private"
    locked.mkdir()
    (locked / "x.md").write_text("---\ntype: user\nname: X\n---\nHidden.\n")
    vault_agent = [*_as_a_plain_user(), sys.executable, "-m", "vault_agent", "--vault", str(root.parent)]
    locked.chmod(0)
    try:
        index = subprocess.run([*vault_agent, "index", root.name], capture_output=True, text=True, timeout=60,
                               check=False)
        doctor = subprocess.run([*vault_agent, "doctor", root.name], capture_output=True, text=True, timeout=60,
                                check=False)
    finally:
        locked.chmod(0o755)
    assert index.returncode == 0 and "3 added" in index.stdout, index.stdout + index.stderr
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "memory/private: cannot list this folder; its notes are left out" in doctor.stdout
    with Catalog(AgentPaths(root)) as cat:
        assert cat.sync().added == 1  # readable again: its note comes back
        assert [row[0] for row in cat.conn.execute("SELECT path FROM files WHERE path LIKE 'memory/%' ORDER BY path")] \
            == ["memory/hello.md", "memory/people/INDEX.md", "memory/private/x.md"]
    assert sorted(n.name for n in NoteStore(AgentPaths(root)).scan()) == ["Hello", "People", "X"]


_SYNC_AROUND_CHMOD = """
import json, os, sys
from pathlib import Path
from vault_agent.memory.catalog import Catalog
from vault_agent.vault.layout import AgentPaths

paths = AgentPaths(Path(sys.argv[1]))
first, second = paths.memory / "first.md", paths.memory / "second.md"
out = {}
with Catalog(paths) as cat:
    out["locked"] = cat.sync().skipped
    first.chmod(0o644)  # neither its inode, size nor mtime changes
    out["same process"] = cat.sync().changed
second.chmod(0o644)
with Catalog(paths) as cat:
    out["new process"] = cat.sync().changed
    out["names"] = [s["name"] for s in cat.summaries()]
    out["findings"] = [f.one_line() for f in cat.findings()]
print(json.dumps(out))
"""


def test_a_note_that_could_not_be_read_is_read_again_once_its_permissions_are_fixed(tmp_path: Path) -> None:
    root = make_agent(tmp_path, "tools: [read_file]")
    for stem in ("first", "second"):
        note = root / "memory" / f"{stem}.md"
        note.write_text(f"---\ntype: user\nname: {stem.title()}\n---\nOnce locked.\n")
        note.chmod(0)
    done = subprocess.run([*_as_a_plain_user(), sys.executable, "-c", _SYNC_AROUND_CHMOD, str(root)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"locked": 2, "same process": 1, "new process": 1,
                                       "names": ["First", "Hello", "Second"], "findings": []}


def _sample(tmp_path: Path) -> tuple[list[str], Path]:
    vault = tmp_path / "vault"
    subprocess.run([sys.executable, "-m", "vault_agent", "--vault", str(vault), "init", "sample", "--template",
                    "sample"], capture_output=True, check=True, timeout=60)
    return [*_as_a_plain_user(), sys.executable, "-m", "vault_agent", "--vault", str(vault)], vault / "sample"


def _run_records(root: Path) -> list[dict]:
    return [r for day in sorted((root / "log").rglob("*.jsonl")) for r in map(json.loads, day.read_text().splitlines())
            if r["kind"] == "run"]


def test_a_read_only_index_fails_the_run_in_one_line_and_the_run_still_leaves_its_record(tmp_path: Path) -> None:
    vault_agent, root = _sample(tmp_path)
    assert subprocess.run([*vault_agent, "index", "sample"], capture_output=True, timeout=60).returncode == 0
    index = root / ".vault-agent" / "index.db"
    index.chmod(0o444)
    sample_runs = _run_records(root)  # the sample's own log, which may share today's month or day
    run = subprocess.run([*vault_agent, "run", "sample", "-m", "Plan the Tokyo hand-off around my week"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "ANTHROPIC_API_KEY": ""},
                         check=False)
    assert "Traceback" not in run.stderr and f"{index}: cannot write the search index" in run.stdout + run.stderr
    [record] = [r for r in _run_records(root) if r not in sample_runs]
    assert record["status"] == "error" and "cannot write the search index" in record["error"]


def test_a_read_only_state_folder_is_one_line_naming_the_lock_and_the_fix(tmp_path: Path) -> None:
    vault_agent, root = _sample(tmp_path)
    (root / ".vault-agent").mkdir(exist_ok=True)
    (root / ".vault-agent").chmod(0o555)
    try:
        run = subprocess.run([*vault_agent, "run", "sample", "-m", "Plan the Tokyo hand-off around my week"],
                             capture_output=True, text=True, timeout=120, check=False)
        search = subprocess.run([*vault_agent, "search", "sample", "tokyo"], capture_output=True, text=True,
                                timeout=60, check=False)
    finally:
        (root / ".vault-agent").chmod(0o755)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].endswith(
        "cannot create the lock file (Permission denied) (fix: make the agent's .vault-agent/ folder writable "
        "(and free disk space if it is full))")
    assert search.returncode != 0 and search.stderr.strip() == (
        f"error: {root / '.vault-agent' / 'index.db'}: cannot write the search index (unable to open database file) "
        "(fix: make the agent folder writable: the index lives in its .vault-agent/ folder)")


SECRET = "canary-link-3Fq8 the private key"


def test_a_link_counts_only_when_it_leads_to_a_markdown_file_inside_the_agent_folder(tmp_path: Path) -> None:
    from vault_agent.memory.search import read_note_by_ref, search

    root = make_agent(tmp_path, "tools: [read_file]")
    outside = tmp_path / "home" / ".ssh"
    outside.mkdir(parents=True)
    (outside / "id_ed25519").write_text(f"---\nname: Key\n---\n{SECRET}\n")
    (outside / "key.md").write_text(f"---\nname: Key\n---\n{SECRET}\n")
    (root / ".vault-agent").mkdir(exist_ok=True)
    (root / ".vault-agent" / "hidden.md").write_text(f"---\nname: Hidden\n---\n{SECRET}\n")
    (root / "memory" / "key.md").symlink_to(outside / "id_ed25519")
    (root / "wiki" / "key.md").symlink_to(outside / "key.md")
    (root / "memory" / "hidden.md").symlink_to(root / ".vault-agent" / "hidden.md")
    (root / "memory" / "same.md").symlink_to(root / "memory" / "hello.md")  # inside: counts, as its target
    paths = AgentPaths(root)
    with Catalog(paths) as cat:
        cat.sync()
        assert [r[0] for r in cat.conn.execute("SELECT path FROM files ORDER BY path")] == [
            "memory/hello.md", "memory/same.md", "wiki/handbook.md"]
        assert search(cat, "canary private key") == []
        assert cat.sync({"memory/key.md", "wiki/key.md"}).added == 0  # nor when a watcher reports them
        # Retargeted after it was indexed: read time refuses it too.
        (root / "memory" / "same.md").unlink()
        (root / "memory" / "same.md").symlink_to(outside / "key.md")
        assert read_note_by_ref(paths, cat, "memory/same.md") is None
        assert cat.find_note("reference", "Hello") is not None
        assert cat.sync().removed == 1
        assert [r[0] for r in cat.conn.execute("SELECT path FROM files WHERE path LIKE 'memory/%'")] == [
            "memory/hello.md"]
    notes = NoteStore(paths)
    assert [n.name for n in notes.scan()] == ["Hello"]
    assert sorted(f.path.name for f in notes.findings if "links to a file" in f.message) == [
        "hidden.md", "key.md", "same.md"]


@needs_bwrap
def test_a_sandboxed_command_cannot_read_a_host_file_by_linking_it_into_the_index(tmp_path: Path) -> None:
    from vault_agent.memory.search import search

    root = make_agent(tmp_path, "tools: [shell]\ncapabilities:\n  shell: true\n  write: [wiki/]")
    secret = tmp_path / "home" / "notes.md"
    secret.parent.mkdir()
    secret.write_text(f"# Private\n\n{SECRET}\n")
    made = call(runtime(root), "shell", command=f"ln -s {secret} wiki/private.md && ls -l wiki/private.md")
    assert made.status == "ok" and (root / "wiki" / "private.md").is_symlink(), made.result.content
    with Catalog(AgentPaths(root)) as cat:
        cat.sync()
        assert search(cat, "canary private key") == []
