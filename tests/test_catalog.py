"""The derived note catalog: incremental sync, rebuild equals incremental, damage means rebuild."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vault_agent.memory.catalog import Catalog
from vault_agent.vault.layout import AgentPaths


@pytest.fixture
def paths(tmp_path: Path) -> AgentPaths:
    root = tmp_path / "a"
    (root / "memory").mkdir(parents=True)
    return AgentPaths(root)


def write(paths: AgentPaths, rel: str, name: str, desc: str = "d") -> Path:
    path = paths.memory / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ntype: project\nname: {name}\ndescription: {desc}\n---\nbody\n", encoding="utf-8")
    return path


def test_sync_reads_only_what_changed_and_follows_adds_edits_renames_and_deletes(paths: AgentPaths) -> None:
    a = write(paths, "a.md", "A")
    write(paths, "sub/b.md", "B")
    (paths.memory / "INDEX.md").write_text("# index\n")
    (paths.memory / ".a.md.1234.tmp").write_text("half-written")
    with Catalog(paths) as cat:
        first = cat.sync()
        assert (first.added, first.changed, first.removed) == (2, 0, 0)
        assert [s["path"] for s in cat.summaries()] == ["memory/a.md", "memory/sub/b.md"]
        assert cat.sync().unchanged == 2
        write(paths, "a.md", "A", desc="a longer description now")
        a.rename(paths.memory / "renamed.md")
        (paths.memory / "sub" / "b.md").unlink()
        write(paths, "c.md", "C")
        stats = cat.sync()
        assert (stats.added, stats.removed, stats.unchanged) == (2, 2, 0)
        summaries = {s["path"]: s for s in cat.summaries()}
        assert set(summaries) == {"memory/renamed.md", "memory/c.md"}
        assert summaries["memory/renamed.md"]["description"] == "a longer description now"
        assert [s["name"] for s in cat.summaries("PROJECT")] == ["C", "A"]


def test_an_edit_keeping_size_and_mtime_is_still_seen_after_an_atomic_replace(paths: AgentPaths) -> None:
    path = write(paths, "a.md", "A", desc="x")
    st = path.stat()
    with Catalog(paths) as cat:
        cat.sync()
        tmp = paths.memory / ".tmp"
        tmp.write_text(path.read_text().replace("description: x", "description: y"))
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, path)  # editors and vault-agent both save this way: a new inode
        assert cat.sync().changed == 1
        assert cat.summaries()[0]["description"] == "y"


def test_rebuilding_from_scratch_gives_the_same_catalog(paths: AgentPaths) -> None:
    for i in range(30):
        write(paths, f"n{i}.md", f"Note {i}")
    with Catalog(paths) as cat:
        cat.sync()
        write(paths, "n3.md", "Note 3", desc="edited")
        (paths.memory / "n4.md").unlink()
        cat.sync()
        incremental = cat.summaries_json()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{paths.state / 'index.db'}{suffix}").unlink(missing_ok=True)
    with Catalog(paths) as cat:
        cat.sync()
        assert cat.summaries_json() == incremental


def test_a_damaged_index_is_discarded_and_rebuilt(paths: AgentPaths) -> None:
    write(paths, "a.md", "A")
    paths.state.mkdir(parents=True, exist_ok=True)
    (paths.state / "index.db").write_bytes(b"this is not a database" * 100)
    with Catalog(paths) as cat:
        cat.sync()
        assert [s["name"] for s in cat.summaries()] == ["A"]


def test_problems_with_a_note_are_remembered_until_it_is_fixed(paths: AgentPaths) -> None:
    bad = paths.memory / "bad.md"
    bad.write_text("---\ntype: [x\n---\n")
    with Catalog(paths) as cat:
        cat.sync()
        [finding] = cat.findings()
        assert finding.path == bad and "YAML" in finding.message
        assert cat.sync().unchanged == 1 and len(cat.findings()) == 1
        write(paths, "bad.md", "Fixed")
        cat.sync()
        assert cat.findings() == [] and cat.summaries()[0]["name"] == "Fixed"
