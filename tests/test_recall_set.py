"""The labelled recall set in bench/ keeps its own rules: questions in other words, one note per fact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from gen_recall_set import ALL, SEARCH_ROUNDS, VAULTS, aliases_of, check_overlap, generate_set, searches_of  # noqa: E402

from vault_agent.vault.notes import slugify  # noqa: E402


def test_every_question_shares_at_most_one_stemmed_word_with_its_note():
    shared = check_overlap(ALL)
    assert max(shared) <= 1
    assert shared.count(0) > len(ALL) / 2


def test_the_overlap_check_rejects_a_question_that_reuses_the_notes_words():
    fact = ("user", "Dentist", "Dr. Alvarez at Smile Clinic", "Check-ups at the clinic.", "Which clinic is my dentist?")
    with pytest.raises(ValueError, match="shares"):
        check_overlap([fact])


@pytest.mark.parametrize("person", sorted(VAULTS))
def test_each_fact_becomes_its_own_note_with_one_label(tmp_path, person):
    root, labels = generate_set(tmp_path, "mem", 30, person=person)
    stems = [lab["stem"] for lab in labels]
    sets = VAULTS[person][0]
    assert len(labels) == sum(len(facts) for _, facts in sets) and len(set(stems)) == len(stems)
    assert {lab["set"] for lab in labels} == {name for name, _ in sets}
    assert all((root / "memory" / f"{s}.md").is_file() for s in stems)


@pytest.mark.parametrize("person", sorted(VAULTS))
def test_every_fact_has_its_capture_time_aliases_and_the_vault_with_aliases_differs_only_by_them(tmp_path, person):
    aliases = aliases_of(person)
    assert set(aliases) == {f"{f[0]}/{f[1]}" for _, facts in VAULTS[person][0] for f in facts}
    assert all(3 <= len(v) <= 8 for v in aliases.values())
    plain, labels = generate_set(tmp_path / "plain", "mem", 30, person=person)
    given, _ = generate_set(tmp_path / "aliases", "mem", 30, aliases=True, person=person)
    for path in sorted((plain / "memory").glob("*.md")):
        if path.name == "INDEX.md":
            continue
        with_aliases = (given / "memory" / path.name).read_text(encoding="utf-8").splitlines()
        assert [line for line in with_aliases if not line.startswith("aliases: ")] == \
            path.read_text(encoding="utf-8").splitlines()
        assert sum(line.startswith("aliases: ") for line in with_aliases) == 1


@pytest.mark.parametrize("made_at", sorted(SEARCH_ROUNDS))
def test_every_question_has_the_agents_own_searches_at_most_three(made_at):
    searches = searches_of(made_at)
    for sets, _ in VAULTS.values():
        for name, facts in sets:
            assert set(searches[name]) == {f[4] for f in facts}
            for made in searches[name].values():
                assert 1 <= len(made["searches"]) <= 3 and all(q.strip() for q in made["searches"])
                assert made["named"] is None or made["named"] == slugify(made["named"])
