"""The labelled recall set in bench/ keeps its own rules: questions in other words, one note per fact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from gen_recall_set import check_overlap, generate_set  # noqa: E402
from recall_facts import DEV, DEV2, DEV3, HELDOUT, HELDOUT2  # noqa: E402

ALL = DEV + DEV2 + DEV3 + HELDOUT + HELDOUT2


def test_every_question_shares_at_most_one_stemmed_word_with_its_note():
    shared = check_overlap(ALL)
    assert max(shared) <= 1
    assert shared.count(0) > len(ALL) / 2


def test_the_overlap_check_rejects_a_question_that_reuses_the_notes_words():
    fact = ("user", "Dentist", "Dr. Alvarez at Smile Clinic", "Check-ups at the clinic.", "Which clinic is my dentist?")
    with pytest.raises(ValueError, match="shares"):
        check_overlap([fact])


def test_each_fact_becomes_its_own_note_with_one_label(tmp_path):
    root, labels = generate_set(tmp_path, "mem", 30)
    stems = [lab["stem"] for lab in labels]
    assert len(labels) == len(ALL) and len(set(stems)) == len(stems)
    assert {lab["set"] for lab in labels} == {"dev", "heldout", "heldout2"}
    assert all((root / "memory" / f"{s}.md").is_file() for s in stems)
