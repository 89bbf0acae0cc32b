"""The templates and the sample agent: each inits into a working agent that doctor passes (keys aside)."""

from __future__ import annotations

import datetime as _dt
import json
import re
import unicodedata
from pathlib import Path

import pytest

from vault_agent.ops.doctor import check_agent
from vault_agent.vault import index_md, journal, runlog
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.layout import NOTE_TYPES, PERSONA_FILES
from vault_agent.vault.notes import parse_note, slugify
from vault_agent.vault.templates import available, create_agent

TEMPLATES = ("assistant", "researcher", "writer")
REPO = Path(__file__).resolve().parents[1]

# Findings that depend on the machine, not on the folder: API keys, and the
# sample's replay transcript, which is shipped separately (samples/sample/replays/).
_KEY = re.compile(r"needs \w+, which is not set|\w+ is not set: runs use the offline replay|: \w+ is set$")
_REPLAY = re.compile(r"^replay transcript \S+ not found$")


def _init(tmp_path: Path, template: str, name: str = "demo") -> AgentFolder:
    return AgentFolder(create_agent(tmp_path / "vault", name, template))


def _unexpected(folder: AgentFolder) -> list[str]:
    return [f.one_line() for f in check_agent(folder)
            if f.level != "info" and not _KEY.search(f.message) and not _REPLAY.match(f.message)]


@pytest.mark.parametrize("template", (*TEMPLATES, "sample"))
def test_every_template_inits_into_an_agent_doctor_passes_apart_from_keys(tmp_path: Path, template: str) -> None:
    folder = _init(tmp_path, template)
    config = folder.load_config()
    assert config.findings == []
    assert config.persona.identity and config.persona.soul and config.persona.user
    assert config.tools.tools and config.tools.capabilities["shell"] is False
    assert config.model.fallback is not None and config.model.caps.warn_at == (0.5, 0.8)
    assert config.model.extra == {} and config.tools.extra == {}
    folder.scan_notes()
    assert folder.notes.findings == []
    assert _unexpected(folder) == []
    errors = [f for f in check_agent(folder) if f.level == "error"]
    assert all(_KEY.search(f.message) for f in errors)


@pytest.mark.parametrize("template, primary, fallback", [
    ("assistant", "anthropic:claude-sonnet-5", "anthropic:claude-haiku-5-5"),
    ("researcher", "anthropic:claude-sonnet-5", "openai:gpt-4o-mini"),
    ("writer", "openai:gpt-4.1", "openai:gpt-4.1-mini"),
    ("sample", "anthropic:claude-sonnet-5", "anthropic:claude-haiku-5-5"),
])
def test_each_template_uses_its_models(tmp_path: Path, template: str, primary: str, fallback: str) -> None:
    model = _init(tmp_path, template).load_config().model
    assert (model.primary.label(), model.fallback.label() if model.fallback else None) == (primary, fallback)


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_render_the_agent_name_and_an_empty_index(tmp_path: Path, template: str) -> None:
    source = available()[template]
    for path in source.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        assert "{%" not in text and "{#" not in text, path
        assert set(re.findall(r"\{\{.*?\}\}", text)) <= {"{{ title }}", "{{ name }}"}, path
        assert 7 <= len(text.splitlines()) <= 40, path
    folder = _init(tmp_path, template, name="ada_lovelace")
    identity = (folder.paths.persona / "IDENTITY.md").read_text(encoding="utf-8")
    assert identity.startswith("# Ada Lovelace\n")
    for path in folder.root.rglob("*.md"):
        assert "{{" not in path.read_text(encoding="utf-8"), path
    assert folder.paths.index_md.read_text(encoding="utf-8") == index_md.render_index(
        None, [], "ada_lovelace — memory index")
    assert folder.rewrite_index() is False  # the runtime would write exactly the same file


def test_templates_have_distinct_personas_and_the_writer_a_style_guide() -> None:
    found = available()
    identities = {t: (found[t] / "persona" / "IDENTITY.md").read_text(encoding="utf-8") for t in TEMPLATES}
    assert len(set(identities.values())) == 3
    assert (found["writer"] / "wiki" / "style-guide.md").is_file()
    for t in TEMPLATES:
        assert all((found[t] / "persona" / f).is_file() for f in PERSONA_FILES)


def test_only_the_researcher_may_reach_the_network(tmp_path: Path) -> None:
    for template in (*TEMPLATES, "sample"):
        tools = _init(tmp_path / template, template).load_config().tools
        network = tools.capabilities.get("network")
        if template == "researcher":
            assert "web_fetch" in tools.tools and network["allow_domains"]
        else:
            assert "web_fetch" not in tools.tools and network is False


# --- the sample ----------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> AgentFolder:
    return _init(tmp_path_factory.mktemp("sample"), "sample", name="sample")


def test_sample_has_a_dozen_notes_of_every_type_named_by_slugify(sample: AgentFolder) -> None:
    notes = sample.scan_notes()
    assert len(notes) >= 12 and {n.type for n in notes} == set(NOTE_TYPES)
    for note in notes:
        assert note.path.name == slugify(note.name, note.type) + ".md"
        assert note.created and note.updated and note.sources and note.tags and note.meta.get("description")
        assert all((2026, 9) <= (d.year, d.month) <= (2026, 11) for d in (note.created, note.updated))
        assert isinstance(note.confidence, float) and 0 <= note.confidence <= 1
        assert 5 <= len(note.body.strip().splitlines()) <= 25, note.stem
    assert any(n.pinned for n in notes) and any(n.expires for n in notes)
    stems = {n.stem for n in notes}
    assert all(s in stems for n in notes for s in n.supersedes) and any(n.supersedes for n in notes)
    links = {link for n in notes for link in re.findall(r"\[\[([^\]|#]+)", n.body)}
    assert links and links <= stems


def test_sample_has_non_latin_and_accented_file_names(sample: AgentFolder) -> None:
    stems = [n.stem for n in sample.scan_notes()]
    assert any(any(c.isalpha() and "LATIN" not in unicodedata.name(c) for c in s) for s in stems)
    assert any(any(c.isalpha() and not c.isascii() and "LATIN" in unicodedata.name(c) for c in s) for s in stems)


def test_sample_notes_are_canonical_and_keep_their_unknown_key(sample: AgentFolder) -> None:
    notes = sample.scan_notes()
    for note in notes:
        assert note.render() == note.path.read_text(encoding="utf-8"), note.stem
    [acme] = [n for n in notes if "client_code" in n.meta]
    again, findings = parse_note(acme.path, acme.render().encode("utf-8"))
    assert findings == [] and again is not None and again.meta["client_code"] == "ACME-7"
    assert list(again.meta)[-1] == "client_code"


def test_sample_index_is_exactly_what_the_runtime_writes(sample: AgentFolder) -> None:
    notes = sample.scan_notes()
    text = sample.paths.index_md.read_text(encoding="utf-8")
    assert text == index_md.render_index(None, notes, "sample — memory index")
    assert index_md.indexed_stems(text) == {n.stem for n in notes}


def test_sample_has_a_wiki_page(sample: AgentFolder) -> None:
    pages = list(sample.paths.wiki.glob("*.md"))
    assert pages and all(len(p.read_text(encoding="utf-8").splitlines()) >= 10 for p in pages)


def test_sample_journal_and_log_tell_the_same_runs(sample: AgentFolder) -> None:
    days = sorted(sample.paths.journal.glob("*/*.md"))
    assert [p.stem for p in days] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    stems = {n.stem for n in sample.scan_notes()}
    for path in days:
        text = path.read_text(encoding="utf-8")
        entries = journal.parse_day(text)
        assert entries and text.startswith(journal.day_header(_dt.date.fromisoformat(path.stem), "sample"))
        read = runlog.read_day(sample.paths.log / path.parent.name / f"{path.stem}.jsonl")
        assert read.torn == []
        runs = list(runlog.iter_runs(read.records))
        assert [e.run_id for e in entries] == [r["run_id"] for r in runs]
        for entry, run in zip(entries, runs):
            assert entry.status == run["status"] and entry.trigger == run["trigger"]
            assert run["status"] in runlog.STATUSES and run["kind"] == "run" and run["agent"] == "sample"
            linked = [s.strip("[]") for s in entry.fields.get("notes", [""])[0].split(", ") if s]
            assert linked == run["notes_written"] and set(linked) <= stems
            assert (run["status"] == "ok") == (run["error"] is None) == ("error.type" not in run)
            children = [r for r in read.records if r.get("parent_run_id") == run["run_id"]]
            assert len(children) == run["tool_calls"]
            assert all(c["kind"] == "tool_call" and c[runlog.TOOL_NAME] for c in children)
        for line in (sample.paths.log / path.parent.name / f"{path.stem}.jsonl").read_text(
                encoding="utf-8").splitlines():
            assert runlog.encode(json.loads(line)) == line
    statuses = {r["status"] for r in runlog.iter_runs(sample.read_log().records)}
    assert {"ok", "error", "busy"} <= statuses
