"""Every spec/ document's example block is parsed by the real code, so the docs cannot drift from it."""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

import pytest

from vault_agent.vault import frontmatter, index_md, journal, layout, runlog
from vault_agent.vault.config import load_persona, parse_model_md, parse_tools_md
from vault_agent.vault.layout import PERSONA_FILES, AgentPaths, resolve_vault_root
from vault_agent.vault.notes import CANONICAL_KEYS, Note, parse_note, slugify, unique_note_path

SPEC = Path(__file__).resolve().parents[1] / "spec"
DOCS = ("layout", "persona", "model-md", "tools-md", "note", "index", "journal", "log-record",
        "compat-atomic-agents-stack", "capture", "chat", "replay", "custom-tool", "approval", "secrets",
        "schedule")


def doc(name: str) -> str:
    return (SPEC / f"{name}.md").read_text(encoding="utf-8")


def example(name: str, info: str) -> str:
    """The body of the first fenced block whose info string is `info` (fences of 3+ backticks)."""
    m = re.search(rf"^(?P<fence>`{{3,}}){re.escape(info)}[ \t]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", doc(name),
                  re.M | re.S)
    assert m, f"spec/{name}.md has no ```{info} block"
    return m.group("body")


def table_keys(text: str, section: str) -> list[str]:
    """The `key` cells of the first column of the first table under the heading `section`."""
    start = re.search(rf"^#+ {re.escape(section)}\s*$", text, re.M)
    assert start, f"no section {section!r}"
    keys: list[str] = []
    for line in text[start.end():].lstrip("\n").splitlines():
        if not line.startswith("|"):
            if keys:
                break
            continue
        m = re.match(r"^\| `([^`]+)` \|", line)
        if m:
            keys.append(m.group(1))
    return keys


def test_readme_lists_every_spec_document() -> None:
    readme = (SPEC / "README.md").read_text(encoding="utf-8")
    for name in DOCS:
        assert f"]({name}.md)" in readme
        assert 20 <= len(doc(name).splitlines()) <= 120, name  # short docs


# --- layout ------------------------------------------------------------------

def test_layout_tree_names_exactly_the_paths_agent_paths_uses() -> None:
    paths = AgentPaths(Path("/vault/agent"))
    day = _dt.date(2026, 11, 18)
    listed: dict[str, str | None] = {}
    for line in example("layout", "text").splitlines():
        rel, _, comment = line.partition(" ")
        m = re.search(r"AgentPaths\.(\w+)", comment)
        listed[rel] = m.group(1) if m else None

    def rel(p: Path, is_dir: bool) -> str:
        return p.relative_to(paths.root).as_posix() + ("/" if is_dir else "")

    for rel_path, attr in listed.items():
        if attr is None:
            continue
        concrete = rel_path.replace("YYYY-MM-DD", f"{day:%Y-%m-%d}").replace("YYYY-MM", f"{day:%Y-%m}")
        value = getattr(paths, attr)
        actual = value(day) if callable(value) else value
        assert rel(actual, rel_path.endswith("/")) == concrete, attr
    props = [name for name, v in vars(AgentPaths).items() if isinstance(v, property) and name != "name"]
    assert set(props) | {"journal_day", "log_day"} == {a for a in listed.values() if a}
    for fname in PERSONA_FILES:
        assert f"persona/{fname}" in listed


def test_layout_documents_the_name_rule_and_the_root_order(tmp_path: Path, monkeypatch) -> None:
    text = doc("layout")
    assert f"`{layout._NAME.pattern}`" in text
    assert text.index("--vault") < text.index(layout.ENV_HOME) < text.index(layout.DEFAULT_HOME)
    monkeypatch.setenv(layout.ENV_HOME, str(tmp_path / "env"))
    assert resolve_vault_root(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_vault_root(None) == tmp_path / "env"
    monkeypatch.delenv(layout.ENV_HOME)
    assert resolve_vault_root(None) == Path(layout.DEFAULT_HOME).expanduser().resolve()


# --- persona -----------------------------------------------------------------

def test_persona_example_has_frontmatter_the_runtime_ignores(tmp_path: Path) -> None:
    text = example("persona", "markdown")
    fm, body = frontmatter.split(text)
    assert fm is not None and frontmatter.parse(fm)["tags"] == ["persona"]
    paths = AgentPaths(tmp_path)
    paths.persona.mkdir()
    for fname in PERSONA_FILES:
        (paths.persona / fname).write_text(text, encoding="utf-8")
    findings: list = []
    persona = load_persona(paths, findings)
    assert findings == []
    assert persona.identity == body.strip() and persona.identity.startswith("# Juniper")


# --- model.md ----------------------------------------------------------------

def test_model_md_example_parses_to_the_documented_settings() -> None:
    config = parse_model_md(Path("model.md"), example("model-md", "markdown"))
    assert config.primary.label() == "anthropic:claude-sonnet-5"
    assert (config.primary.base_url, config.primary.key_env()) == ("https://api.anthropic.com", "ANTHROPIC_API_KEY")
    assert (config.max_output_tokens, config.context_window, config.temperature) == (4096, 200_000, 0.3)
    assert (config.max_tool_iterations, config.timeout_s, config.max_retries) == (10, 120.0, 3)
    caps = config.caps
    assert (caps.per_run_usd, caps.daily_usd, caps.monthly_usd) == (0.25, 2.0, 30.0)
    assert (caps.warn_at, caps.on_cap) == ((0.5, 0.8), "fallback")
    assert config.fallback is not None and config.fallback.label() == "anthropic:claude-haiku-5-5"
    assert config.prices["claude-sonnet-5"].cache_write == 3.75
    assert config.replay == "replays/quickstart.yaml"
    assert config.extra == {} and config.prose.startswith("# Model settings")


def test_model_md_example_uses_every_documented_key() -> None:
    keys = table_keys(doc("model-md"), "Keys")
    fm, _ = frontmatter.split(example("model-md", "markdown"))
    assert list(frontmatter.parse(fm or "")) == keys


def test_model_md_defaults_are_the_documented_ones() -> None:
    text = doc("model-md")
    config = parse_model_md(Path("model.md"), "---\nmodel: claude-sonnet-5\n---\n")
    assert config.provider == "anthropic" and config.fallback is None and config.temperature is None
    for key, value in (("max_output_tokens", config.max_output_tokens), ("context_window", config.context_window),
                       ("max_tool_iterations", config.max_tool_iterations), ("timeout_s", int(config.timeout_s)),
                       ("max_retries", config.max_retries)):
        assert re.search(rf"^\| `{key}` \| [^|]+ \| {value} \|", text, re.M), key
    assert config.caps.warn_at == (0.8,) and "`[0.8]`" in text
    assert config.caps.on_cap == "refuse" and re.search(r"^\| `on_cap` \| .* \| `refuse` \|", text, re.M)


# --- tools.md ----------------------------------------------------------------

def test_tools_md_example_grants_only_documented_tools_and_capabilities() -> None:
    text = doc("tools-md")
    tools = parse_tools_md(Path("tools.md"), example("tools-md", "markdown"))
    documented_tools = table_keys(text, "Tools")
    assert documented_tools == ["read_file", "write_file", "edit_file", "list_dir", "search_files", "shell",
                                "web_fetch", "remember", "memory_search", "memory_read", "log_read"]
    assert tools.tools and set(tools.tools) <= set(documented_tools)
    assert set(tools.capabilities) == set(table_keys(text, "Capabilities"))
    assert tools.capabilities["network"] == {"allow_domains": ["arxiv.org", "doi.org"]}
    assert tools.capabilities["shell"] is False and tools.extra == {}
    assert "must not" in tools.prose


# --- notes -------------------------------------------------------------------

def test_note_example_parses_cleanly_and_round_trips() -> None:
    text = example("note", "markdown")
    path = Path("memory") / (slugify("Day rate from January 2027") + ".md")
    note, findings = parse_note(path, text.encode("utf-8"))
    assert findings == [] and note is not None
    assert (note.type, note.name, note.stem) == ("decision", "Day rate from January 2027", "day-rate-from-january-2027")
    assert note.supersedes == ["day-rate-2026"] and note.tags == ["money", "rates"]
    assert note.aliases == ["what I charge", "consulting fee"]
    assert note.expires == _dt.date(2027, 12, 31) and note.confidence == 1.0
    assert note.render() == text
    again, _ = parse_note(path, note.render().encode("utf-8"))
    assert again is not None and (again.meta, again.body) == (note.meta, note.body)
    assert list(note.meta)[: len(CANONICAL_KEYS)] == list(CANONICAL_KEYS)
    assert note.meta["client_code"] == "STUDIO"


def test_note_property_table_is_the_canonical_key_order() -> None:
    assert table_keys(doc("note"), "Properties") == list(CANONICAL_KEYS)


def test_note_file_name_examples_are_what_slugify_gives() -> None:
    pairs = re.findall(r"`([^`]+)` ->\s+`([^`]+)\.md`", doc("note"))
    assert len(pairs) >= 3 and any(not stem.isascii() for _, stem in pairs)
    for name, stem in pairs:
        assert slugify(name) == stem


def test_note_collisions_get_numbered_suffixes(tmp_path: Path) -> None:
    assert "`-2`, `-3`" in doc("note")
    for expected in ("café-lumière.md", "café-lumière-2.md", "café-lumière-3.md"):
        path = unique_note_path(tmp_path, "Café Lumière", "project")
        assert path.name == expected
        path.write_text("x", encoding="utf-8")
    assert unique_note_path(tmp_path, "INDEX", "reference").name == "index-2.md"


# --- INDEX -------------------------------------------------------------------

def _notes_from_block(block: str) -> list[Note]:
    types = {title: key for key, title in index_md.SECTION_TITLES.items()}
    notes, current = [], None
    for line in block.splitlines():
        if line.startswith("## "):
            current = types[line[3:]]
        m = re.match(r"^- \[\[([^|\]]+)(?:\|([^\]]+))?\]\] — (.*)$", line)
        if m:
            stem, name, description = m.group(1), m.group(2) or m.group(1), m.group(3)
            notes.append(Note(Path(f"memory/{stem}.md"), {"type": current, "name": name,
                                                          "description": description}, ""))
    return notes


def test_index_example_block_is_what_the_runtime_renders_and_hand_text_stays() -> None:
    text = example("index", "markdown")
    before, block, after = index_md.split_managed(text)
    assert block is not None and block.startswith(index_md.BEGIN) and block.endswith(index_md.END)
    assert "Ask Maya" in before and after == "\n"
    notes = _notes_from_block(block)
    assert index_md.indexed_stems(text) == {n.stem for n in notes} == {
        "maya-okafor-working-rhythm", "café-lumière-rebrand", "東京デザイン週間", "day-rate-from-january-2027"}
    assert index_md.render_index(text, notes) == text
    assert index_md.BEGIN in doc("index") and index_md.END in doc("index")


# --- journal -----------------------------------------------------------------

def test_journal_example_is_two_entries_in_the_runtimes_format() -> None:
    text = example("journal", "markdown")
    entries = journal.parse_day(text)
    assert [(e.time, e.trigger, e.status) for e in entries] == [("13:02:47", "cli", "error"), ("13:05:02", "cli", "ok")]
    first, second = entries
    assert set(first.fields) == {"asked", "cost", "problem"}
    assert set(second.fields) == {"asked", "did", "notes", "cost"}
    assert second.fields["notes"] == ["[[day-rate-from-january-2027]]"]
    fm, _ = frontmatter.split(text)
    meta = frontmatter.parse(fm or "")
    rebuilt = journal.day_header(meta["date"], meta["agent"])
    for e in entries:
        rebuilt += "\n" + journal.JournalEntry(
            ts=_dt.datetime.combine(meta["date"], _dt.time.fromisoformat(e.time)), run_id=e.run_id,
            status=e.status, trigger=e.trigger, asked=e.fields["asked"][0], did=e.fields.get("did", [""])[0],
            notes=[n.strip("[]") for n in e.fields.get("notes", [""])[0].split(", ") if n],
            cost=e.fields["cost"][0], problems=e.fields.get("problem", [])).render()
    assert rebuilt == text


# --- log records -------------------------------------------------------------

def test_log_example_has_a_run_record_with_every_key_and_a_child_pointing_at_it() -> None:
    text = doc("log-record")
    lines = example("log-record", "jsonl").splitlines()
    records = [json.loads(line) for line in lines]
    assert [runlog.encode(r) for r in records] == lines  # sorted keys, compact, UTF-8
    run, child = records
    assert list(run) == sorted(run)
    assert set(table_keys(text, "Run record")) == set(run)
    assert set(table_keys(text, "Tool-call record")) == set(child)
    assert (run["kind"], child["kind"]) == ("run", "tool_call")
    assert child["parent_run_id"] == run["run_id"] and child["run_id"] != run["run_id"]
    assert list(runlog.iter_runs(records)) == [run]
    assert run["status"] in runlog.STATUSES
    assert all(f"`{s}`" in text for s in runlog.STATUSES)
    for key in (runlog.PROVIDER, runlog.REQUEST_MODEL, runlog.RESPONSE_MODEL, runlog.INPUT_TOKENS,
                runlog.OUTPUT_TOKENS, runlog.CACHE_READ_TOKENS, runlog.CACHE_WRITE_TOKENS):
        assert key in run
    assert runlog.TOOL_NAME in child and runlog.TOOL_CALL_ID in child
    assert runlog.record_cost(run) == run["cost_usd"] and runlog.record_model(run) == "claude-sonnet-5"


def test_log_reader_skips_a_torn_last_line_as_documented(tmp_path: Path) -> None:
    lines = example("log-record", "jsonl").splitlines()
    path = tmp_path / "2026-11-19.jsonl"
    path.write_text(lines[0] + "\n" + lines[1][:40], encoding="utf-8")
    read = runlog.read_day(path)
    assert len(read.records) == 1 and len(read.torn) == 1 and read.torn[0].is_last
    runlog.append_record(path, json.loads(lines[1]))
    assert len(runlog.read_day(path).records) == 2


# --- atomic-agents-stack -----------------------------------------------------

def test_atomic_style_model_md_example_maps_its_guardrails() -> None:
    text = example("compat-atomic-agents-stack", "markdown")
    assert frontmatter.split(text)[0] is None
    config = parse_model_md(Path("model.md"), text)
    assert config.primary.label() == "anthropic:claude-opus-4-1"
    assert config.fallback is not None and config.fallback.label() == "anthropic:claude-sonnet-5"
    assert config.max_output_tokens == 4000
    caps = config.caps
    # monthly_cap_action: alert = warn and proceed, so the monthly cap is not enforced.
    assert (caps.daily_usd, caps.monthly_usd, caps.per_run_usd) == (5.0, None, None)
    assert (caps.on_cap, caps.warn_at) == ("fallback", (0.5, 0.8))


@pytest.mark.parametrize("name", DOCS)
def test_each_spec_names_the_module_it_documents(name: str) -> None:
    first = doc(name).split("\n\n")[1]
    assert first.startswith("Code: ")
    for module in re.findall(r"`vault_agent/[\w/]+\.py`", first):
        assert (SPEC.parent / module.strip("`")).is_file(), module


# --- capture grammar and chat transcripts -------------------------------------

def test_capture_example_yields_one_valid_capture_and_a_clean_reply() -> None:
    from vault_agent.capture import extract

    reply, captures, problems = extract(example("capture", "markdown"))
    assert problems == [] and reply == "Here is the plan for the week."
    [c] = captures
    assert (c.type, c.name, c.tags, c.confidence) == ("decision", "Ship the newsletter on Tuesdays",
                                                      ["newsletter", "schedule"], 0.8)
    assert c.aliases == ["mailing", "weekly email", "subscribers"]


def test_capture_field_table_matches_the_tool_schema() -> None:
    from vault_agent.capture import REMEMBER_SCHEMA

    assert table_keys(doc("capture"), "Fields") == list(REMEMBER_SCHEMA["properties"])


def test_chat_example_round_trips_with_markdown_inside_a_turn(tmp_path: Path) -> None:
    import datetime as dt

    from vault_agent.vault import chats

    path = tmp_path / "c.md"
    path.write_text(example("chat", "markdown"), encoding="utf-8")
    meta, turns = chats.load(path)
    assert meta["chat_id"] == "20261121T101500-ab12cd"
    assert [(t.role, t.run_id) for t in turns] == [("user", "20261121T101502-0f1e2d"),
                                                    ("assistant", "20261121T101502-0f1e2d")]
    assert turns[1].cost_usd == 0.00421 and turns[1].text.endswith("It is two days before the deadline.")
    chats.save(path, "x", "sample", dt.datetime(2026, 11, 21, 10, 15).astimezone(), turns)
    assert [(t.role, t.text) for t in chats.load(path)[1]] == [(t.role, t.text) for t in turns]
