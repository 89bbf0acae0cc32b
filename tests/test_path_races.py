"""A folder swapped for a link between a path check and the open cannot lead a tool or the index out of the folder.

A sandboxed command may write in a granted folder while a read tool of the
same turn runs beside it, unsandboxed: it can turn `wiki/d` into a link to a
host folder right after read_file checked `wiki/d/notes.md`. The swap is
forced here at that exact moment by wrapping the path check, on real files;
the real race is too narrow to hit on purpose.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vault_agent.errors import StorageError
from vault_agent.memory.catalog import Catalog
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.layout import AgentPaths
from vault_agent.vault.notes import read_note
from vault_agent.vault.reading import LinkOutside, read_inside

from security_kit import call, make_agent, runtime

HOST_SECRET = "HOST-SECRET-7f3a"
TOOLS = "tools: [read_file, list_dir, search_files, edit_file, write_file]\ncapabilities:\n  read: [wiki/]\n  write: [drafts/]"


@pytest.fixture
def agent(tmp_path: Path) -> tuple[Path, Path]:
    """An agent whose wiki/d/sub holds notes.md, and a host folder outside it with a notes.md of its own."""
    root = make_agent(tmp_path, TOOLS)
    (root / "wiki" / "d" / "sub").mkdir(parents=True)
    (root / "wiki" / "d" / "notes.md").write_text("agent notes\n")
    (root / "wiki" / "d" / "sub" / "notes.md").write_text("agent sub notes\n")
    host = tmp_path / "host"
    (host / "sub").mkdir(parents=True)
    (host / "notes.md").write_text(f"{HOST_SECRET}\n")
    (host / "sub" / "notes.md").write_text(f"{HOST_SECRET}\n")
    (host / "private.md").write_text(f"{HOST_SECRET}\n")
    return root, host


def _swap_after_check(monkeypatch: pytest.MonkeyPatch, rt: object, when: str, folder: Path, host: Path,
                      nth: int = 1) -> None:
    """Once the `nth` check of the path `when` has passed, `folder` becomes a link to `host`."""
    rules = rt.ctx.policy.paths  # type: ignore[attr-defined]
    real_check = rules.check
    seen: list[str] = []

    def check(raw: str, mode: str) -> Path:
        path = real_check(raw, mode)
        seen.append(raw)
        if seen.count(when) == nth and raw == when:
            folder.rename(folder.with_name(folder.name + ".moved"))
            folder.symlink_to(host, target_is_directory=True)
        return path

    monkeypatch.setattr(rules, "check", check)


@pytest.mark.parametrize("tool, args", [
    ("read_file", {"path": "wiki/d/notes.md"}),
    ("list_dir", {"path": "wiki/d"}),
    ("search_files", {"pattern": "SECRET|notes", "path": "wiki/d"}),
    ("edit_file", {"path": "drafts/x/a.md", "old_text": "a\n", "new_text": "b\n"}),
    ("write_file", {"path": "drafts/x/new.md", "content": "through the link"}),
])
def test_a_folder_swapped_for_a_link_after_the_check_is_not_followed(
        agent: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tool: str, args: dict[str, str]) -> None:
    root, host = agent
    (root / "drafts" / "x").mkdir()
    (root / "drafts" / "x" / "a.md").write_text("a\n")
    (host / "a.md").write_text(f"a {HOST_SECRET}\n")
    rt = runtime(root)
    swapped = root / ("drafts/x" if tool in ("edit_file", "write_file") else "wiki/d")
    # The runtime checks the path before the call and the tool again when it runs: the swap comes after both.
    _swap_after_check(monkeypatch, rt, args["path"], swapped, host, nth=2)
    outcome = call(rt, tool, **args)
    assert swapped.is_symlink()
    assert HOST_SECRET not in outcome.result.content and "private.md" not in outcome.result.content
    assert outcome.status == "error" and "link" in outcome.result.content
    assert f"a {HOST_SECRET}" in (host / "a.md").read_text() and not (host / "new.md").exists()  # nothing written


@pytest.mark.parametrize("tool, args, checked", [
    ("list_dir", {"path": "wiki", "recursive": True}, "wiki/d/sub"),
    ("search_files", {"pattern": "SECRET|notes", "path": "wiki"}, "wiki/d/sub/notes.md"),
])
def test_a_subfolder_swapped_for_a_link_during_a_walk_is_left_out(
        agent: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tool: str, args: dict[str, str],
        checked: str) -> None:
    root, host = agent
    rt = runtime(root)
    # The walk checks each entry it lists; right after `checked` passes, wiki/d/sub becomes a link to the host.
    _swap_after_check(monkeypatch, rt, checked, root / "wiki" / "d" / "sub", host)
    outcome = call(rt, tool, **args)
    assert (root / "wiki" / "d" / "sub").is_symlink()
    assert outcome.status == "ok", outcome.result.content
    assert HOST_SECRET not in outcome.result.content and "private.md" not in outcome.result.content
    assert "wiki/d/notes.md" in outcome.result.content  # the rest of the walk goes on


def test_the_index_never_reads_through_a_folder_that_became_a_link(agent: tuple[Path, Path]) -> None:
    root, host = agent
    (root / "memory" / "sub").mkdir()
    (root / "memory" / "sub" / "notes.md").write_text("---\ntype: reference\nname: Sub\ndescription: d\n---\nx\n")
    with Catalog(AgentPaths(root)) as catalog:
        catalog.sync()
    (root / "memory" / "sub").rename(root / "memory" / "sub.moved")
    (root / "memory" / "sub").symlink_to(host, target_is_directory=True)
    with pytest.raises(LinkOutside):
        read_inside(root, root / "memory" / "sub" / "notes.md", 1 << 20)
    from vault_agent.memory.search import read_note_by_ref

    with Catalog(AgentPaths(root)) as catalog:
        assert read_note_by_ref(AgentPaths(root), catalog, "memory/sub/notes.md") is None


def test_a_link_to_a_note_inside_the_folder_is_still_read(agent: tuple[Path, Path]) -> None:
    root, _ = agent
    os.symlink(root / "wiki" / "d" / "notes.md", root / "memory" / "linked.md")
    assert read_inside(root, root / "memory" / "linked.md", 1 << 20) == b"agent notes\n"
    (root / "memory" / "deep").mkdir()
    os.symlink("../../wiki/d/sub/notes.md", root / "memory" / "deep" / "rel.md")
    assert read_inside(root, root / "memory" / "deep" / "rel.md", 1 << 20) == b"agent sub notes\n"


def test_a_note_inside_a_linked_folder_is_left_out_with_a_warning_naming_the_fix(agent: tuple[Path, Path]) -> None:
    root, _ = agent
    # A link to a folder inside the agent folder looks harmless, but a sandboxed command could point the same
    # link at a host folder: folder links are never followed, wherever they lead.
    (root / "memory" / "shared").symlink_to(root / "wiki" / "d", target_is_directory=True)
    note, findings = read_note(root / "memory" / "shared" / "notes.md", inside=root)
    assert note is None
    assert "linked folder" in findings[0].message and "move the folder" in findings[0].fix


def test_notes_and_the_index_are_never_written_through_a_linked_memory_folder(agent: tuple[Path, Path]) -> None:
    root, host = agent
    # What a sandboxed command with the whole folder writable can leave behind for the end of the run.
    (root / "memory").rename(root / "memory.moved")
    (root / "memory").symlink_to(host, target_is_directory=True)
    folder = AgentFolder(root)
    before = sorted(p.name for p in host.iterdir())
    with pytest.raises(StorageError, match="linked folder") as caught:
        folder.notes.create({"type": "reference", "name": "Planted", "description": "d"}, "body")
    assert caught.value.fix == f"replace the link {root / 'memory'} with a real folder"
    with pytest.raises(StorageError, match="linked folder"):
        folder.rewrite_index([])
    assert sorted(p.name for p in host.iterdir()) == before
