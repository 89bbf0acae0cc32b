"""`vault-agent dream`: duplicates merged with versions kept, expired notes archived, journal days summarized."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from memory_helpers import agent, files_snapshot, journal_entry, note

from vault_agent.cli import main
from vault_agent.memory import dream
from vault_agent.memory.catalog import Catalog
from vault_agent.memory.search import read_note_by_ref
from vault_agent.testing.fakellm import FakeLLMServer, Reply
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.layout import AgentPaths
from vault_agent.vault.notes import read_note

TODAY = dt.date.today()
TEA = ("Maya drinks green tea in the afternoon, no sugar, and never after six in the evening. She buys it loose "
       "from the Tea Company on the Haarlemmerstraat and brews it for three minutes at eighty degrees.")
TEA_AGAIN = TEA.replace("three minutes", "two or three minutes")


@pytest.fixture
def paths(tmp_path: Path) -> AgentPaths:
    paths = agent(tmp_path)
    note(paths, "tea", "Prefers green tea", TEA, type="user", extra="updated: 2026-03-01\ntags: [drinks]\n")
    note(paths, "tea-copy", "Tea", TEA, type="user", extra="updated: 2026-01-01\n")
    note(paths, "tea-again", "Tea habit", TEA_AGAIN, type="user",
         extra="updated: 2025-12-01\n")
    note(paths, "tea-project", "Tea packaging", TEA, type="project")  # same words, another type: not merged
    note(paths, "voucher", "Dentist voucher", "Half-price cleaning.", extra="expires: 2020-06-30\n")
    note(paths, "rate", "Day rate", "€780 a day.", type="decision")
    yesterday = dt.datetime.combine(TODAY - dt.timedelta(days=1), dt.time(9, 12, 4))
    journal_entry(paths, yesterday - dt.timedelta(days=1), "r1", "Plan the week", did="Planned it",
                  notes=["rate"], cost="$0.0300 · 1,000 in · 100 out")
    journal_entry(paths, yesterday, "r2", "Set the 2027 rate", status="error", cost="$0.0000")
    journal_entry(paths, dt.datetime.combine(TODAY, dt.time(8)), "r3", "Today's item: not summarized yet")
    return paths


def test_dry_run_prints_the_plan_and_changes_no_file(paths: AgentPaths) -> None:
    before = files_snapshot(paths.root)
    out = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert ("plan: merge into memory/tea.md: memory/tea-again.md (near-duplicate, 0.85), "
            "memory/tea-copy.md (duplicate)") in out.output
    assert "plan: archive expired (2020-06-30): memory/voucher.md -> archive/voucher.md" in out.output
    assert "plan: write observation note 'Journal" in out.output
    assert files_snapshot(paths.root) == before
    assert not paths.state.exists()  # not even the derived index or a lock file


def test_duplicates_merge_into_one_note_and_the_old_versions_are_kept(paths: AgentPaths) -> None:
    folder = AgentFolder(paths.root)
    planned = dream.plan(folder, today=TODAY)
    [merge] = planned.merges
    assert merge.keep.stem == "tea" and [n.stem for n in merge.drop] == ["tea-again", "tea-copy"]
    done = dream.apply(folder, planned, tag="dream-t1")
    assert "merged into memory/tea.md (updated)" in done
    kept, _ = read_note(paths.memory / "tea.md")
    assert kept.body == f"{TEA}\n\n{TEA_AGAIN.split('. ')[1]}\n"  # only the sentence that differs
    assert kept.supersedes == ["tea-again", "tea-copy"] and "dream dream-t1" in kept.sources
    assert not (paths.memory / "tea-copy.md").exists() and not (paths.memory / "tea-again.md").exists()
    assert (paths.versions / "tea-copy" / "dream-t1.md").read_text().endswith(f"{TEA}\n")
    assert (paths.versions / "tea" / "dream-t1.md").exists()  # the kept note's previous version
    assert (paths.memory / "tea-project.md").exists()
    with Catalog(paths) as cat:
        cat.sync()
        assert read_note_by_ref(paths, cat, "[[tea-copy]]").superseded_by == "tea"


def test_expired_notes_move_to_the_archive_and_index_is_rewritten(paths: AgentPaths) -> None:
    folder = AgentFolder(paths.root)
    dream.apply(folder, dream.plan(folder, today=TODAY), tag="dream-t2")
    assert (paths.root / "archive" / "voucher.md").read_text().endswith("Half-price cleaning.\n")
    index = paths.index_md.read_text()
    assert "[[tea|Prefers green tea]]" in index and "voucher" not in index and "tea-copy" not in index
    with Catalog(paths) as cat:
        cat.sync()
        [(kind, doc_type)] = cat.conn.execute("SELECT kind, type FROM docs WHERE stem = 'voucher'").fetchall()
        assert (kind, doc_type) == ("archive", "archive")


def test_past_journal_days_become_one_observation_note_and_are_not_summarized_twice(paths: AgentPaths) -> None:
    folder = AgentFolder(paths.root)
    dream.apply(folder, dream.plan(folder, today=TODAY), tag="dream-t3")
    first, last = TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1)
    obs, _ = read_note(paths.memory / f"journal-{first.isoformat()}-to-{last.isoformat()}.md")
    assert (obs.type, obs.tags) == ("reference", ["observation", "journal"])
    assert obs.description == "2 run(s) over 2 day(s): 1 error, 1 ok; $0.03"
    assert "- 09:12 cli · ok — Plan the week → Planned it" in obs.body and "[[rate]]" in obs.body
    assert "Today's item" not in obs.body
    assert dream.plan(folder, today=TODAY).empty


def test_a_note_edited_after_the_plan_is_left_as_the_person_wrote_it(paths: AgentPaths) -> None:
    folder = AgentFolder(paths.root)
    planned = dream.plan(folder, today=TODAY)
    note(paths, "tea-copy", "Tea", TEA + " Edited by Maya.", type="user")
    done = dream.apply(folder, planned, tag="dream-t4")
    assert any(line.startswith("skipped merge into memory/tea.md") for line in done)
    assert (paths.memory / "tea-copy.md").read_text().endswith("Edited by Maya.\n")


def test_with_model_the_agent_writes_a_summary_within_its_cost_caps(paths: AgentPaths) -> None:
    with FakeLLMServer() as server:
        (paths.model_md).write_text(f"---\nprovider: anthropic\nmodel: claude-sonnet-5\n"
                                    f"base_url: {server.anthropic_base_url}\nmax_retries: 0\n---\n")
        server.script(Reply("A quiet week: planning went fine, the rate change failed once."))
        out = CliRunner(env={"ANTHROPIC_API_KEY": "k"}).invoke(
            main, ["--vault", str(paths.root.parent), "dream", "a", "--with-model"])
    assert out.exit_code == 0, out.output
    [obs] = paths.memory.glob("journal-*.md")
    assert "## Summary (written by the model)\n\nA quiet week" in obs.read_text()
    records = [json.loads(line) for p in paths.log.rglob("*.jsonl") for line in p.read_text().splitlines()]
    # Two runs: the model's summary (behind the caps) and the dream itself, each logged and journaled.
    summary_run, dream_run = [r for r in records if r["kind"] == "run"]
    assert (summary_run["trigger"], dream_run["trigger"]) == ("dream", "dream")
    assert dream_run["work_item"] == "consolidate memory (dream)" and dream_run["status"] == "ok"
    assert obs.relative_to(paths.root).as_posix() in dream_run["notes_written"]
