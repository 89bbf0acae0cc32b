"""Memory notes: reading bad input, file names, preserved keys, no needless writes, edit conflicts."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from vault_agent.vault import index_md
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.notes import as_date, slugify, unique_note_path


@pytest.fixture
def agent(tmp_path: Path) -> AgentFolder:
    root = tmp_path / "vault" / "a"
    (root / "memory").mkdir(parents=True)
    (root / "model.md").write_text("---\nprovider: anthropic\nmodel: claude-sonnet-5\n---\n")
    return AgentFolder(root)


def _note(agent: AgentFolder, fname: str, text: str | bytes) -> Path:
    path = agent.paths.memory / fname
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


GOOD = "---\ntype: user\nname: Prefers brevity\ndescription: Short answers\n---\nBody.\n"


def test_each_bad_note_gives_one_finding_naming_it_and_the_rest_still_load(agent: AgentFolder) -> None:
    _note(agent, "good.md", GOOD)
    _note(agent, "malformed.md", "---\ntype: [user\nname: x\n---\n")
    _note(agent, "binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    _note(agent, "latin1.md", "caf\xe9".encode("latin-1"))
    _note(agent, "bare.md", "Just a thought with no properties.\n")
    _note(agent, "odd.md", "---\ntype: musing\nname: Odd\n---\n")
    big = agent.paths.memory / "huge.md"
    with open(big, "wb") as f:
        f.truncate(50 * 1024 * 1024)
    notes = agent.notes.scan()
    by_file = {f.path.name: f for f in agent.notes.findings}
    assert {n.stem for n in notes} == {"good", "bare", "odd"}
    assert by_file["malformed.md"].level == "error" and "YAML" in by_file["malformed.md"].message
    assert "binary" in by_file["binary.md"].message
    assert "UTF-8" in by_file["latin1.md"].message
    assert "no frontmatter" in by_file["bare.md"].message
    assert "unknown note type 'musing'" in by_file["odd.md"].message
    assert "50.0 MiB" in by_file["huge.md"].message
    for finding in agent.notes.findings:
        assert "\n" not in finding.one_line() and finding.fix


def test_file_names_keep_non_latin_letters_and_never_collide(agent: AgentFolder) -> None:
    assert slugify("東京デザイン週間") == "東京デザイン週間"
    assert slugify("Café Crème — Q3 plan") == "café-crème-q3-plan"
    assert slugify("???", "user").startswith("user-") and slugify("???") != slugify("!!!")
    assert slugify("CON") == "con-note"
    assert len(slugify("長" * 300).encode()) <= 120
    memory = agent.paths.memory
    first = agent.save_note({"type": "project", "name": "Café"}, "a\n", version_tag="t1").note.path
    # Same name, other type: a second file, not an overwrite.
    second = agent.save_note({"type": "reference", "name": "Café"}, "b\n", version_tag="t2").note.path
    # Differs only in case and Unicode normalization: still distinct on macOS/Windows.
    third = agent.save_note({"type": "user", "name": "CAFE\u0301"}, "c\n", version_tag="t3").note.path
    assert len({first.name, second.name, third.name}) == 3
    assert first.read_text().endswith("a\n") and second.read_text().endswith("b\n")
    assert unique_note_path(memory, "index", "user").name == "index-2.md"


def test_unknown_keys_keep_their_place_when_the_runtime_updates_a_note(agent: AgentFolder) -> None:
    _note(agent, "client.md", "---\nclient_code: ACME-7\ntype: project\nname: Client\n"
                              "description: old\nzeta: [1, 2]\n---\nOld body.\n")
    result = agent.save_note({"type": "project", "name": "Client", "description": "new"}, "New body.\n",
                             version_tag="r1")
    assert result.action == "updated"
    text = (agent.paths.memory / "client.md").read_text()
    assert text.index("client_code: ACME-7") < text.index("type: project") < text.index("zeta:")
    assert "description: new" in text and text.endswith("New body.\n")
    assert result.version_path is not None and "Old body." in result.version_path.read_text()


def test_saving_unchanged_content_writes_nothing(agent: AgentFolder) -> None:
    agent.save_note({"type": "user", "name": "Same"}, "x\n", version_tag="a")
    path = agent.paths.memory / "same.md"
    index = agent.paths.index_md
    os.utime(path, ns=(1, 1))
    os.utime(index, ns=(1, 1))
    result = agent.save_note({"type": "user", "name": "Same"}, "x\n", version_tag="b")
    assert result.action == "unchanged"
    assert path.stat().st_mtime_ns == 1 and index.stat().st_mtime_ns == 1
    assert not agent.paths.versions.exists()


def test_a_persons_edit_during_a_run_wins_and_the_runtime_keeps_its_version_aside(agent: AgentFolder) -> None:
    agent.save_note({"type": "user", "name": "Tone"}, "v1\n", version_tag="a")
    loaded = agent.scan_notes()
    path = agent.paths.memory / "tone.md"
    path.write_text(path.read_text().replace("v1", "person's edit"))
    result = agent.save_note({"type": "user", "name": "Tone"}, "runtime v2\n", version_tag="b", notes=loaded)
    assert result.action == "conflict"
    assert "person's edit" in path.read_text()
    assert result.conflict_path is not None and "runtime v2" in result.conflict_path.read_text()


def test_index_keeps_hand_edits_outside_the_managed_block(agent: AgentFolder) -> None:
    agent.paths.index_md.write_text("# Mine\n\nHand notes on top.\n")
    agent.save_note({"type": "decision", "name": "Go weekly", "description": "Ship weekly"}, "b\n",
                    version_tag="a")
    text = agent.paths.index_md.read_text()
    assert text.startswith("# Mine\n\nHand notes on top.\n")
    before, block, after = index_md.split_managed(text)
    agent.paths.index_md.write_text(text + "\nFooter by hand.\n")
    agent.save_note({"type": "user", "name": "Likes tea", "description": "Green tea"}, "b\n", version_tag="b")
    text = agent.paths.index_md.read_text()
    assert text.startswith("# Mine\n\nHand notes on top.\n") and text.endswith("\nFooter by hand.\n")
    assert "## Decisions" in text and "- [[likes-tea|Likes tea]] — Green tea" in text
    assert index_md.indexed_stems(text) == {"go-weekly", "likes-tea"}


def test_a_date_property_is_a_date_only_when_nothing_but_a_time_follows_it() -> None:
    day = dt.date(2026, 10, 1)
    assert [as_date(v) for v in ("2026-10-01", " 2026-10-01 ", "2026-10-01T09:30:00Z", "2026-10-01 09:30",
                                 "2026-10-01T09:30:00.5+02:00", dt.datetime(2026, 10, 1, 9))] == [day] * 6
    assert [as_date(v) for v in ("2026-10-01garbage", "20261001", 20261001, "31/10/2026", "next week",
                                 "2026-02-30", "2026-10-01T")] == [None] * 7


@pytest.mark.parametrize(("yaml", "supersedes", "superseded_by"), [
    ('supersedes: "[[rate-2026|old rate]]"\nsuperseded_by: "[[rate-2028]]"', ["rate-2026"], "rate-2028"),
    ("supersedes: [[rate-2026]]\nsuperseded_by: [[rate-2028]]", ["rate-2026"], "rate-2028"),
    ("supersedes:\n- rate-2025\n- '[[rate-2026]]'\nsuperseded_by: Day rate 2028", ["rate-2025", "rate-2026"],
     "Day rate 2028"),
    ("superseded_by: true", [], ""),
    ("superseded_by: false", [], None),
    ("superseded_by: null", [], None),
    ("superseded_by: '[[rate-2027]]'", [], None),
    ("superseded_by: Day rate 2027", [], None),
])
def test_link_properties_read_the_same_however_they_are_written(agent: AgentFolder, yaml: str,
                                                                supersedes: list[str],
                                                                superseded_by: str | None) -> None:
    # An unquoted [[x]] is a list in a list to YAML; a note naming itself in superseded_by is not replaced.
    (agent.paths.memory / "rate-2027.md").write_text(f"---\ntype: decision\nname: Day rate 2027\n{yaml}\n---\nx\n")
    [note] = agent.notes.scan()
    assert note.supersedes == supersedes and note.superseded_by == superseded_by
