"""spec/index-db.md and spec/dream.md: their examples are checked against the real code."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from memory_helpers import agent, journal_entry
from test_spec_examples import example

from vault_agent.memory import dream
from vault_agent.memory.catalog import Catalog
from vault_agent.memory.embed import embedder_for
from vault_agent.vault.folder import AgentFolder


def test_the_tables_in_index_db_md_are_the_tables_in_the_database(tmp_path: Path) -> None:
    with Catalog(agent(tmp_path)) as cat:
        for line in example("index-db", "text").splitlines():
            table, *columns = line.split()
            assert [row[1] for row in cat.conn.execute(f"PRAGMA table_info({table})")] == columns, table


def test_the_embeddings_example_configures_ollama(tmp_path: Path) -> None:
    paths = agent(tmp_path)
    paths.model_md.write_text(example("index-db", "markdown"))
    embedder = embedder_for(paths, env={})
    assert (embedder.base_url, embedder.model, embedder.api_key) == (
        "http://localhost:11434/v1", "nomic-embed-text", None)


def test_the_observation_note_in_dream_md_is_what_a_dream_writes(tmp_path: Path) -> None:
    paths = agent(tmp_path, "sample")
    journal_entry(paths, dt.datetime(2026, 11, 20, 8, 55, 10), "20261120T085510-f41e9b",
                  "Draft the Café Lumière invoice for the logo phase.",
                  did="Drafted invoice OS-2026-041 for €4,680; waiting for Maya's sign-off.",
                  notes=["café-lumière-rebrand"], cost="$0.0313 · 9,576 in / 912 out tokens · claude-sonnet-5")
    journal_entry(paths, dt.datetime(2026, 11, 20, 13, 2, 47), "20261120T130247-0a7c55",
                  "Set the day rate for 2027 to €780.", status="error", cost="$0.0000 · no tokens billed")
    folder = AgentFolder(paths.root)
    dream.apply(folder, dream.plan(folder, today=dt.date(2026, 11, 21)), tag="dream-spec")
    written = (paths.memory / "journal-2026-11-20.md").read_text(encoding="utf-8")
    assert written == example("dream", "markdown")


def test_the_spec_documents_are_listed_and_short() -> None:
    spec = Path(__file__).resolve().parents[1] / "spec"
    readme = (spec / "README.md").read_text(encoding="utf-8")
    for name in ("index-db", "dream"):
        assert f"]({name}.md)" in readme
        assert 20 <= len((spec / f"{name}.md").read_text(encoding="utf-8").splitlines()) <= 120
