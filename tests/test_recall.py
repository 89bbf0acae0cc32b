"""Recall and the INDEX view: relevant notes within the budget exactly, live notes only, a bounded view."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from memory_helpers import agent, note, outranked_notes

from vault_agent.context.tokens import estimate_tokens
from vault_agent.memory import search
from vault_agent.memory.catalog import Catalog
from vault_agent.memory.recall import SearchRecaller, index_view
from vault_agent.runner import Agent
from vault_agent.vault.layout import AgentPaths

TODAY = dt.date(2026, 11, 20)


@pytest.fixture
def paths(tmp_path: Path) -> AgentPaths:
    paths = agent(tmp_path)
    note(paths, "dentist", "Dentist", "Dr. Alvarez at Smile Clinic. See [[clinic-address]].", type="user",
         extra="updated: 2026-01-10\n")
    note(paths, "clinic-address", "Clinic address", "Prinsengracht 12, second floor.", extra="updated: 2026-01-10\n")
    note(paths, "rules", "House rules", "Answer in five bullets.", type="feedback",
         extra="pinned: true\nupdated: 2025-01-01\n")
    note(paths, "old-rate", "Day rate 2026", "Teeth whitening costs €720 a session.", type="decision",
         extra="updated: 2026-01-01\n")
    note(paths, "new-rate", "Day rate 2027", "€780 a day.", type="decision",
         extra="supersedes: old-rate\nupdated: 2026-11-19\n")
    note(paths, "expired", "Dentist voucher", "A dentist voucher for teeth cleaning.", extra="expires: 2026-06-30\n")
    for i in range(40):
        note(paths, f"filler-{i}", f"Filler {i}", f"Gardening chores for week {i}: " + "weeding " * (20 + i),
             type="project", extra=f"updated: 2025-{1 + i % 12:02d}-15\n")
    return paths


def recall(paths: AgentPaths, work_item: str, budget: int) -> list:
    with Catalog(paths) as cat:
        cat.sync()
        return SearchRecaller(paths, cat, today=TODAY, embedder=None).recall(work_item, budget)


def test_recall_never_exceeds_the_budget_and_fills_it(paths: AgentPaths) -> None:
    with Catalog(paths) as cat:
        cat.sync()
        recaller = SearchRecaller(paths, cat, today=TODAY, embedder=None)
        for budget in [0, 10, 64, 65, 100, 157, 300, 512, 999, 2048, 5000]:
            got = recaller.recall("gardening chores weeding", budget)
            used = sum(estimate_tokens(r.text) + 1 for r in got)
            assert used <= budget, budget
            if budget == 2048:
                assert budget - used < 200  # plenty of matching notes: the budget gets used


def test_pinned_notes_come_first_then_the_relevant_ones_with_what_they_link(paths: AgentPaths) -> None:
    got = [r.stem for r in recall(paths, "who looks after my teeth?", 2000)]
    assert got[:3] == ["rules", "dentist", "clinic-address"]


def test_superseded_and_expired_notes_are_left_out(paths: AgentPaths) -> None:
    got = [r.stem for r in recall(paths, "dentist voucher teeth whitening day rate", 4000)]
    assert "dentist" in got and "new-rate" in got
    assert "old-rate" not in got and "expired" not in got


@pytest.mark.parametrize("mark", ['"[[new-rate]]"', "[[new-rate]]", "Day rate 2027", "true"])
def test_a_note_marked_superseded_by_itself_is_left_out_of_recall_and_the_index_view(paths: AgentPaths,
                                                                                   mark: str) -> None:
    # atomic-agents-stack marks the old note (`superseded_by`) instead of the new one (`supersedes`).
    note(paths, "old-clinic", "Old clinic address", "The dentist was at Herengracht 3.", type="user",
         extra=f"superseded_by: {mark}\nupdated: 2026-11-19\n")
    note(paths, "self-marked", "Dentist parking", "Park by the dentist at Prinsengracht.", type="user",
         extra="superseded_by: self-marked\nupdated: 2026-11-19\n")
    got = [r.stem for r in recall(paths, "dentist clinic address Herengracht parking", 4000)]
    assert "dentist" in got and "self-marked" in got
    assert "old-clinic" not in got
    with Catalog(paths) as cat:
        cat.sync()
        view = index_view(cat, 1200, work_item="dentist", today=TODAY)
        assert "[[self-marked]]" in view and "[[old-clinic]]" not in view
        assert "Old clinic address" not in [c["name"] for c in cat.candidates(today=TODAY.isoformat(), limit=50)]


def test_supersedes_names_a_note_however_its_stem_is_cased_or_composed(paths: AgentPaths) -> None:
    # As [[links]] resolve: NFC and case-folded ("cafe\u0301" is "café").
    note(paths, "Old-Plan", "Hall plan A", "Paint the hall blue.", type="project")
    note(paths, "Café-list", "Lisbon list", "Cafés to visit in Lisbon.", type="project")
    note(paths, "new-plan", "Hall plan B", "Paint the hall green; cafés in Lisbon later.", type="project",
         extra="supersedes:\n- old-plan\n- cafe\u0301-list\n")
    got = [r.stem for r in recall(paths, "paint hall plan cafés Lisbon", 4000)]
    assert "new-plan" in got and "Old-Plan" not in got and "Café-list" not in got


def test_a_note_superseded_after_the_catalog_opened_is_left_out_from_the_next_sync_on(paths: AgentPaths) -> None:
    # Which notes are superseded is kept per state of the index: a sync (this process's or another's) renews it.
    with Catalog(paths) as cat:
        cat.sync()
        assert "dentist" in [c["stem"] for c in cat.candidates(today=TODAY.isoformat(), limit=100)]
        note(paths, "dentist-2027", "Dentist from 2027", "Dr. Bakker.", type="user", extra="supersedes: dentist\n")
        cat.sync()
        assert "dentist" not in [c["stem"] for c in cat.candidates(today=TODAY.isoformat(), limit=100)]
        with Catalog(paths) as other:
            other.sync()
            note(paths, "dentist", "Dentist", "Dr. Alvarez.", type="user", extra="superseded_by: true\n")
            (paths.memory / "dentist-2027.md").unlink()
            other.sync()
        assert cat.superseded().marked == {"memory/dentist.md": ""}
        assert cat.superseded().replacers == {"old-rate": "memory/new-rate.md"}  # dentist-2027 is gone


def test_a_japanese_note_is_recalled_by_a_word_inside_a_run_and_shown_as_written(paths: AgentPaths) -> None:
    note(paths, "tdw", "Tokyo Design Week", "東京デザイン週間のブースは三階。")
    got = recall(paths, "デザイン ブース", 2000)
    assert got[1].stem == "tdw" and "東京デザイン週間のブースは三階。" in got[1].text  # after the pinned note


def test_a_vague_work_item_recalls_the_most_recent_notes(paths: AgentPaths) -> None:
    got = [r.stem for r in recall(paths, "anything?", 600)]
    assert got[0] == "rules" and got[1] == "new-rate"


def test_a_long_note_is_cut_to_a_third_of_the_budget_and_says_how_to_read_it(paths: AgentPaths) -> None:
    note(paths, "long", "Long gardening plan", "Gardening plan. " + "Plant bulbs in rows. " * 400, type="project")
    [first, *_] = [r for r in recall(paths, "long gardening plan", 900) if r.stem == "long"]
    assert first.truncated and "memory_read long" in first.text and estimate_tokens(first.text) <= 306


def test_index_view_is_bounded_puts_the_relevant_section_first_and_counts_the_rest(paths: AgentPaths) -> None:
    with Catalog(paths) as cat:
        cat.sync()
        for budget in (60, 120, 400, 1200):
            view = index_view(cat, budget, work_item="teeth dentist", today=TODAY)
            assert estimate_tokens(view) <= budget
        view = index_view(cat, 200, work_item="teeth dentist", today=TODAY)
        assert view.startswith("## User (1)\n- [[dentist]] Dentist")
        assert "Not shown:" in view or "more project note(s)" in view
        assert "Projects (40)" in view


def test_index_view_names_the_sections_left_out_however_many_types_there_are(paths: AgentPaths) -> None:
    for i in range(400):
        note(paths, f"custom-{i}", f"Custom {i}", "Odd.", type=f"kind{i:03}")
    with Catalog(paths) as cat:
        cat.sync()
        for budget in (120, 400, 1200):
            view = index_view(cat, budget, today=TODAY)
            assert estimate_tokens(view) <= budget
            last = view.splitlines()[-1]
            assert last.startswith("Not shown: ") and "more — use memory_search / memory_read" in last, last


def test_index_view_lists_only_live_notes(paths: AgentPaths) -> None:
    note(paths, "pinned-expired", "Old pinned voucher", "Gone.", extra="pinned: true\nexpires: 2020-01-01\n")
    with Catalog(paths) as cat:
        cat.sync()
        view = index_view(cat, 4000, today=TODAY)
        assert "[[new-rate]]" in view and "[[dentist]]" in view
        for stem in ("old-rate", "expired", "pinned-expired"):
            assert f"[[{stem}]]" not in view, view


def test_the_runner_recalls_by_relevance_and_the_prompt_stays_flat_as_notes_grow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A term matching more documents than search may rank is left out of the question. That happens to
    # "look" at 100k notes; a budget of 400 documents makes it happen here at 3000 notes, in a test's time.
    monkeypatch.setattr(search, "MATCH_BUDGET", 400)
    sizes = {}
    for n in (600, 3000):
        paths = agent(tmp_path / str(n))
        (paths.persona / "IDENTITY.md").write_text("# Tester\n")
        note(paths, "dentist", "Dentist", "Dr. Alvarez at Smile Clinic.", type="user")
        for i in range(n):
            # 15% of the notes say "look": over the budget at 3000 notes, and a word said by as large a
            # share of a smaller vault's notes is left out of its questions too, or recall would fill the
            # smaller vault's prompt with notes that share nothing else with the question.
            said = "Look over the garden plan" if i % 20 < 3 else "Water the garden plan"
            note(paths, f"n{i}", f"Project note {i}", f"{said} {i}, call the client.",
                 type=("project", "decision", "reference")[i % 3], description=f"garden plan {i}")
        with Agent(paths.root, watch=False) as a:
            built = a.context("Who looks after my teeth?")
        recall_part = next(p for p in built.parts if p.name == "recall")
        assert "Dr. Alvarez" in recall_part.text
        sizes[n] = built.tokens
    assert abs(sizes[3000] - sizes[600]) / sizes[600] < 0.05


@pytest.mark.parametrize("tools", ["[remember, memory_search]", "[remember]"])
def test_the_prompt_tells_the_model_to_search_in_its_own_words_only_when_it_may(tmp_path: Path, tools: str) -> None:
    paths = agent(tmp_path)
    (paths.root / "tools.md").write_text(f"---\ntools: {tools}\n---\n")
    note(paths, "dentist", "Dentist", "Dr. Alvarez at Smile Clinic.", type="user")
    with Agent(paths.root, watch=False) as a:
        instructions = a.context("Who looks after my teeth?").parts[0]
    assert instructions.name == "instructions"
    assert ("call `memory_search` in your own words" in instructions.text) == ("memory_search" in tools)
    assert instructions.tokens == estimate_tokens(instructions.text)


def test_recall_and_the_index_view_show_readable_notes_however_many_unreadable_ones_outrank_them(
        tmp_path: Path) -> None:
    paths = agent(tmp_path)
    notes = outranked_notes(paths, above="memory/private")

    def readable(rel: str) -> bool:
        return not rel.startswith("memory/private/")

    with Catalog(paths) as cat:
        cat.sync()
        # 10 candidates: each term is ranked 30 deep at first, all of them private notes.
        got = SearchRecaller(paths, cat, today=TODAY, embedder=None, max_candidates=10,
                             readable=readable).recall("kayak", 2000)
        view = index_view(cat, 2000, work_item="kayak", per_section=2, today=TODAY, readable=readable)
        # Nothing matches: the most recently updated notes fill in, and the private ones are the newest.
        recent = SearchRecaller(paths, cat, today=TODAY, embedder=None, max_candidates=10,
                                readable=readable).recall("zeppelin", 2000)
    assert [r.path for r in got] == notes
    assert recent and not [r.path for r in recent if not readable(r.path)]
    # The section lists the notes that match first, ahead of the more recent ones that do not.
    assert "[[lake-0]]" in view and "[[lake-1]]" in view and "private" not in view


def test_recall_ranks_only_notes_and_wiki_pages_so_journal_entries_that_outrank_them_cost_no_second_ranking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A scheduled run's journal entries repeat its work item word for word: 70 of them outrank every note.
    from vault_agent.memory.catalog import SearchStats

    paths = agent(tmp_path)
    notes = outranked_notes(paths, above="journal")
    asked: list[int] = []
    real = SearchStats.term_ranking

    def counting(self: SearchStats, fts_term: str, weights: str, type: str | None, limit: int,
                 *args: object) -> list[tuple[int, float]]:
        asked.append(limit)
        return real(self, fts_term, weights, type, limit, *args)

    monkeypatch.setattr(SearchStats, "term_ranking", counting)
    with Catalog(paths) as cat:
        cat.sync()
        got = SearchRecaller(paths, cat, today=TODAY, embedder=None, max_candidates=10).recall("kayak", 2000)
        view = index_view(cat, 2000, work_item="kayak", per_section=2, today=TODAY)
    assert [r.path for r in got] == notes and "[[lake-0]]" in view
    assert asked and set(asked) == {30, 24}  # each term once, at its first depth (3 x the candidates asked)
