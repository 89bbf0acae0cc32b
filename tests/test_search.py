"""Search over the derived index: ranking on a small labelled set, fields, filters, snippets, reading by reference."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from memory_helpers import agent, journal_entry, note, outranked_notes, page

from vault_agent.cli import main
from vault_agent.memory.catalog import Catalog
from vault_agent.memory.search import read_note_by_ref, relevant, search
from vault_agent.vault.layout import AgentPaths

TODAY = dt.date(2026, 11, 20)
NOTES = [
    ("dentist", "Dentist", "Dr. Alvarez at Smile Clinic, check-up twice a year", "user"),
    ("coffee", "Usual coffee order", "Flat white with oat milk, no sugar", "user"),
    ("day-rate-2027", "Day rate from January 2027", "€780 per day from 2027-01-01", "decision"),
    ("accountant", "Accountant: Lindqvist & Partners", "Bookkeeping and VAT returns", "reference"),
    ("car-lease", "Car lease", "Lease of a Polestar 2 until 2028", "reference"),
    ("fridays", "No client calls on Fridays", "Friday is studio day", "decision"),
    ("babysitter", "Babysitter", "Noor babysits on Wednesdays, €15/hour", "reference"),
    ("printer", "Printer for large formats", "Drukkerij Mondriaan prints posters and banners", "reference"),
]
# (question, the note that answers it): words of the notes, other forms of them, and related words.
LABELLED = [
    ("dentist appointment", "dentist"),
    ("who looks after my teeth", "dentist"),
    ("how do I take my latte", "coffee"),
    ("what do I charge per day in 2027", "day-rate-2027"),
    ("who does the bookkeeping", "accountant"),
    ("until when do I have the vehicle", "car-lease"),
    ("can I book customer meetings on friday", "fridays"),
    ("who watches the kids midweek", "babysitter"),
    ("where can I get big posters printed", "printer"),
]


@pytest.fixture
def paths(tmp_path: Path) -> AgentPaths:
    paths = agent(tmp_path)
    for stem, name, description, note_type in NOTES:
        note(paths, stem, name, description + ".", type=note_type, description=description)
    for i in range(30):  # distractors that share everyday words with the questions
        note(paths, f"misc-{i}", f"Misc {i}", f"A note about the day, a call, the week and some client {i}.")
    return paths


def test_each_labelled_question_finds_its_note_first(paths: AgentPaths) -> None:
    with Catalog(paths) as cat:
        cat.sync()
        found = {q: [h.stem for h in search(cat, q, limit=3, today=TODAY)] for q, _ in LABELLED}
    assert {q: top[:1] for q, top in found.items()} == {q: [stem] for q, stem in LABELLED}


def test_a_name_match_outranks_a_passing_mention(paths: AgentPaths) -> None:
    note(paths, "mention", "Weekly errands", "Pick up the car from the garage and buy stamps.")
    with Catalog(paths) as cat:
        cat.sync()
        assert [h.stem for h in search(cat, "car", limit=2, today=TODAY)] == ["car-lease", "mention"]


def test_a_search_after_the_index_changed_ranks_anew_whichever_connection_changed_it(paths: AgentPaths) -> None:
    def top(cat: Catalog) -> str:
        return search(cat, "car", limit=1, today=TODAY)[0].stem

    with Catalog(paths) as cat, Catalog(paths) as other:
        cat.sync()
        assert top(cat) == "car-lease"
        note(paths, "car", "Car", "The car is a Polestar.")
        other.sync()  # as the watcher or another run indexes it
        assert top(cat) == "car"
        note(paths, "polestar", "Car", "Car, car and car again.")
        cat.sync()  # this connection's own write
        assert top(cat) == "polestar"


@pytest.mark.parametrize("aliases", ["aliases: aangifte, Belastingdienst\n",
                                     "aliases:\n  - aangifte\n  - Belastingdienst\n"])
def test_a_notes_aliases_find_it_by_words_it_does_not_contain(paths: AgentPaths, aliases: str) -> None:
    tax = note(paths, "tax", "Tax adviser", "Henk de Vries at Fiscaal Partners.")
    with Catalog(paths) as cat:
        cat.sync()
        assert "tax" not in [h.stem for h in search(cat, "aangifte", today=TODAY)]
        tax.write_text(tax.read_text().replace("---\n", f"---\n{aliases}", 1))  # as a person adds them in Obsidian
        cat.sync()
        assert [h.stem for h in search(cat, "aangifte", limit=1, today=TODAY)] == ["tax"]
        assert [h.stem for h in search(cat, "belastingdienst", limit=1, today=TODAY)] == ["tax"]


def test_a_question_finds_a_note_whose_words_share_a_related_term_with_its_own_though_neither_is_related_to_the_other(
        paths: AgentPaths) -> None:
    # "receipt" and "refund" are in no group together; both are in the group of "reimbursement". A question's
    # related terms alone never reach the note: the index holds the note's related terms too.
    note(paths, "toaster", "Toaster refund", "The shop refunds the broken toaster.", description="Shop refunds it")
    with Catalog(paths) as cat:
        cat.sync()
        assert [h.stem for h in search(cat, "receipt", limit=1, today=TODAY)] == ["toaster"]
        assert [h.stem for h in relevant(cat, "where is the receipt", today=TODAY, limit=1)] == ["toaster"]
        assert search(cat, "receipt", expand=False, today=TODAY) == []  # plain BM25: related terms on neither side


def test_type_filter_snippets_and_journal_entries(paths: AgentPaths) -> None:
    journal_entry(paths, dt.datetime(2026, 11, 18, 9, 0), "r1", "Ask the dentist to move the check-up")
    with Catalog(paths) as cat:
        cat.sync()
        hits = search(cat, "dentist", limit=5, today=TODAY)
        assert {(h.kind, h.stem) for h in hits} == {("memory", "dentist"), ("journal", "2026-11-18")}
        [entry] = search(cat, "dentist", type="journal", today=TODAY)
        assert entry.anchor == "r1" and "[dentist]" in entry.snippet
        assert [h.stem for h in search(cat, "dentist", type="user", today=TODAY)] == ["dentist"]
        assert search(cat, "dentist", type="decision", today=TODAY) == []


def test_a_search_within_a_read_grant_returns_its_limit_of_readable_hits_however_many_unreadable_ones_outrank_them(
        tmp_path: Path) -> None:
    # 70 journal entries outrank the notes: more than each term's ranking holds at first (max(3 * limit, 30)).
    paths = agent(tmp_path)
    notes = outranked_notes(paths, above="journal")

    def readable(rel: str) -> bool:
        return not rel.startswith("journal/")

    with Catalog(paths) as cat:
        cat.sync()
        assert {h.kind for h in search(cat, "kayak", limit=70, today=TODAY)} == {"journal"}
        found = {limit: [h.path for h in search(cat, "kayak", limit=limit, today=TODAY, readable=readable)]
                 for limit in (1, 3, 4, 10)}
        assert [h.stem for h in search(cat, "kayak", type="memory", limit=2, today=TODAY, readable=readable)] == \
            ["lake-0", "lake-1"]
    assert found == {1: notes[:1], 3: notes[:3], 4: notes, 10: notes}  # 10: every readable match there is


def test_a_snippet_is_the_window_around_the_first_match_with_every_match_in_it_bracketed(paths: AgentPaths) -> None:
    filler = " ".join(f"w{i}" for i in range(40))
    note(paths, "boiler", "Zorblat", f"{filler} the Boiler, serviced in May; boilers last long (boilers). {filler}",
         description="Zorblat")
    with Catalog(paths) as cat:
        cat.sync()
        [hit] = search(cat, "boiler", limit=1, today=TODAY)
    # "Zorblat — Zorblat" (name and description come first), 40 filler words, "the": the first match is the 45th word;
    # the window starts six words before it and holds 18.
    assert hit.snippet == ("…w35 w36 w37 w38 w39 the [Boiler], serviced in May; [boilers] last long ([boilers]). w0 w1 "
                           "w2 w3…")


def test_a_snippet_leaves_a_matching_wikilink_as_written(paths: AgentPaths) -> None:
    note(paths, "rates", "Zorblat", "Quoted for [[boiler-room]] (boiler) at the 2026 rate.", description="Zorblat")
    with Catalog(paths) as cat:
        cat.sync()
        [hit] = search(cat, "boiler", limit=1, today=TODAY)
    assert "for [[boiler-room]] ([boiler]) at" in hit.snippet


def test_a_snippet_stays_short_around_a_base64_image_or_text_without_spaces_and_keeps_its_match(
        paths: AgentPaths) -> None:
    image = "![logo](data:image/png;base64," + "iVBORw0KGgo" * 70_000 + ")"  # ~770 KB without a space
    japanese = "ボイラーの点検は毎年五月に行います。" * 1_000
    note(paths, "boiler", "Zorblat", f"{image} the boiler {japanese}", description="Zorblat")
    with Catalog(paths) as cat:
        cat.sync()
        [hit] = search(cat, "boiler", limit=1, today=TODAY)
    assert len(hit.snippet) <= 250 and "the [boiler] ボイラーの点検" in hit.snippet
    assert hit.snippet.startswith("Zorblat — Zorblat ![logo](data:image/png;base…") and hit.snippet.endswith("…")


def test_words_without_meaning_and_query_syntax_are_harmless(paths: AgentPaths) -> None:
    with Catalog(paths) as cat:
        cat.sync()
        assert search(cat, "what is the", today=TODAY) == []
        assert search(cat, 'AND OR NOT "( * ^ :', today=TODAY) == []
        assert search(cat, "", today=TODAY) == []


def test_a_japanese_name_is_found_by_its_first_word(paths: AgentPaths) -> None:
    note(paths, "東京デザイン週間", "東京デザイン週間", "Tokyo Design Week 2027 booth.")
    with Catalog(paths) as cat:
        cat.sync()
        assert search(cat, "東京", today=TODAY)[0].stem == "東京デザイン週間"


def test_read_note_by_ref_resolves_links_stems_names_paths_and_replaced_notes(paths: AgentPaths) -> None:
    note(paths, "day-rate-2026", "Day rate 2026", "€720.", type="decision")
    note(paths, "day-rate-2027", "Day rate from January 2027", "€780.", type="decision",
         extra="supersedes: '[[day-rate-2026]]'\n")
    (paths.memory / "day-rate-2026.md").unlink()  # dream removes a merged note this way
    page(paths, "wiki/handbook.md", "# Studio handbook\n\nRules.\n")
    with Catalog(paths) as cat:
        cat.sync()
        assert read_note_by_ref(paths, cat, "[[dentist|my dentist]]").path == "memory/dentist.md"
        assert read_note_by_ref(paths, cat, "Car lease").path == "memory/car-lease.md"
        assert read_note_by_ref(paths, cat, "car lease").path == "memory/car-lease.md"
        assert read_note_by_ref(paths, cat, "wiki/handbook.md").text.startswith("# Studio handbook")
        assert read_note_by_ref(paths, cat, "Studio handbook").kind == "wiki"
        replaced = read_note_by_ref(paths, cat, "[[day-rate-2026]]")
        assert replaced.path == "memory/day-rate-2027.md" and replaced.superseded_by == "day-rate-2027"
        for outside in ("model.md", "../a/model.md", "memory/../model.md", ".vault-agent/index.db", "nothing"):
            assert read_note_by_ref(paths, cat, outside) is None


def test_search_command_prints_json_hits(paths: AgentPaths) -> None:
    out = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "search", "a", "teeth", "--json"])
    assert out.exit_code == 0, out.output
    [first, *_] = json.loads(out.output)
    assert (first["path"], first["type"]) == ("memory/dentist.md", "user")
    text = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "search", "a", "car", "lease", "-k", "1"])
    assert "memory/car-lease.md" in text.output and "[reference] Car lease" in text.output


def test_a_type_filter_takes_a_note_type_a_made_up_one_or_a_kind_and_names_the_types_when_none_has_it(
        paths: AgentPaths) -> None:
    from vault_agent.errors import UnknownSearchType

    note(paths, "sourdough", "Sourdough starter", "Feed the dentist's sourdough starter", type="recipe")
    page(paths, "wiki/dentists.md", "# Dentists\n\nThe dentist on Keizersgracht takes walk-ins.\n")
    with Catalog(paths) as cat:
        cat.sync()
        assert {h.stem for h in search(cat, "dentist", type="memory", today=TODAY)} == {"dentist", "sourdough"}
        assert [h.stem for h in search(cat, "dentist", type="Recipe", today=TODAY)] == ["sourdough"]
        assert [h.kind for h in search(cat, "dentist", type="wiki", today=TODAY)] == ["wiki"]
        assert search(cat, "dentist", type="decision", today=TODAY) == []  # a type there is, nothing matches
        with pytest.raises(UnknownSearchType) as raised:
            search(cat, "dentist", type="notes", today=TODAY)
    assert raised.value.one_line() == ("unknown type 'notes' (fix: use one of archive, decision, feedback, journal, "
                                       "memory, project, recipe, reference, skill, user, wiki, or no type)")
    out = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "search", "a", "dentist", "--type", "notes"])
    assert (out.exit_code, out.output.splitlines()) == (2, [f"error: {raised.value.one_line()}"])  # bad input


def test_search_help_names_the_same_types_as_the_agents_memory_search() -> None:
    from vault_agent.tools.memory_tools import TYPE_CHOICES

    shown = " ".join(CliRunner().invoke(main, ["search", "--help"]).output.split())
    assert TYPE_CHOICES[1:] in shown


def test_index_command_syncs_incrementally_and_rebuilds_on_request(paths: AgentPaths) -> None:
    vault = str(paths.root.parent)
    first = CliRunner().invoke(main, ["--vault", vault, "index", "a"])
    assert first.exit_code == 0 and "a: 38 added, 0 changed, 0 removed, 0 unchanged" in first.output
    again = CliRunner().invoke(main, ["--vault", vault, "index", "a"])
    assert "0 added, 0 changed, 0 removed, 38 unchanged" in again.output
    rebuilt = CliRunner().invoke(main, ["--vault", vault, "index", "a", "--rebuild"])
    assert "38 added" in rebuilt.output and "38 documents" in rebuilt.output


def test_index_names_each_note_it_leaves_out_on_stderr_and_does_not_count_it_as_added(paths: AgentPaths) -> None:
    vault = str(paths.root.parent)
    bad = paths.memory / "typo.md"
    bad.write_text("---\ntype: decision\nname: D\nupdated: 2026-02-30\n---\nbody\n")
    first = CliRunner().invoke(main, ["--vault", vault, "index", "a"])
    assert first.exit_code == 0
    [line] = [x for x in first.stderr.splitlines() if "typo.md" in x]
    assert line.startswith(f"ERROR {bad}: invalid value in frontmatter at line 4") and "fix:" in line
    assert "a: 38 added, 0 changed, 0 removed, 0 unchanged, 0 touched without a change, 1 left out" in first.stdout
    searched = CliRunner().invoke(main, ["--vault", vault, "search", "a", "teeth"])
    assert searched.stderr.splitlines() == [line] and "memory/dentist.md" in searched.stdout


def test_a_long_first_index_says_on_stderr_that_it_is_under_way(paths: AgentPaths,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import catalog

    monkeypatch.setattr(catalog, "BATCH_FILES", 10)
    vault = str(paths.root.parent)
    first = CliRunner().invoke(main, ["--vault", vault, "search", "a", "teeth"])
    lines = first.output.splitlines()
    assert lines[0] == "a: indexing 38 new or changed files (0 done)"
    assert lines[1].startswith("a: indexed 38 files in ") and lines[1].endswith(" s")
    assert "memory/dentist.md" in lines[2]
    again = CliRunner().invoke(main, ["--vault", vault, "search", "a", "teeth"])
    assert "indexing" not in again.output and "memory/dentist.md" in again.output.splitlines()[0]


def test_words_stemmed_together_get_the_stems_they_get_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import related

    # "ab\u19b0cd" is one word to Python and two tokens to FTS5's older Unicode tables: a batch holding it
    # cannot be read one token per word.
    for batch in (["Invoices", "Café", "running", "2027", "東京", "naïve"],
                  ["Invoices", "ab\u19b0cd", "running", "2027", "naïve"]):
        monkeypatch.setattr(related, "_seen", {})
        together = related.stems(batch)
        apart = []
        for word in batch:
            monkeypatch.setattr(related, "_seen", {})
            apart += related.stems([word])
        assert together == apart
    assert [together[i] for i in (0, 2, 3, 4)] == ["invoic", "run", "2027", "naiv"]


def test_stems_are_the_same_fresh_or_remembered_and_the_memory_of_them_stays_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import related

    texts = ["Invoices for Café Lumière", "invoicing", "Running late", "東京デザイン週間", "", "Invoices for Café Lumière"]
    first = related.token_stems(texts)
    assert first[0] == first[5] == {"invoic", "for", "cafe", "lumier"} and first[4] == set()
    assert related.token_stems(list(reversed(texts))) == list(reversed(first))
    assert related.stems(["invoicing", "running"]) == ["invoic", "run"]
    monkeypatch.setattr(related, "_seen", {})
    monkeypatch.setattr(related, "_SEEN_MAX", 50)
    for start in range(0, 400, 7):  # each batch: a text seen before and new ones that overflow the memory
        batch = ["running late"] + [f"note number {i}" for i in range(start, start + 7)]
        assert related.token_stems(batch) == [{"run", "late"}] + [{"note", "number", str(i)}
                                                                  for i in range(start, start + 7)]
        assert len(related._seen) <= 50


# A note in each script, and questions in its own words: unicode61 folds only case and Latin accents, so the
# question must not lose what it keeps (the voiced mark of "デ", the breve of "й", the accent of "ά").
SCRIPTS = [
    ("korean", "한국어 수업은 서울에서 화요일에", ["한국어", "수업은"]),
    ("kana", "データベース の ひらがな 表記 ガイド", ["データベース", "ひらがな", "ガイド"]),
    ("russian", "Новый офис: мой район, улица Толстого", ["Новый", "мой", "улица"]),
    ("greek", "Ελληνικά μαθήματα: άλφα και ωμέγα", ["Ελληνικά", "άλφα", "ΩΜΈΓΑ"]),
    ("hindi", "हिन्दी भाषा की कक्षा", ["हिन्दी", "भाषा", "कक्षा"]),
    ("german", "Lieferadresse: Hauptstraße 5, Gießen", ["Hauptstraße", "Gießen"]),
]


@pytest.mark.parametrize(("stem", "body", "questions"), SCRIPTS, ids=[s for s, _, _ in SCRIPTS])
def test_a_note_in_any_script_is_found_by_its_own_words(paths: AgentPaths, stem: str, body: str,
                                                       questions: list[str]) -> None:
    note(paths, stem, stem, body)
    with Catalog(paths) as cat:
        cat.sync()
        found = {q: [h.stem for h in search(cat, q, today=TODAY)] for q in questions}
    assert found == {q: [stem] for q in questions}


# Scripts written without spaces between words: a note, words from inside its runs of letters (and one-letter
# words: "周" inside a run, "猫" ending one), and another note that shares letters or a pair of letters with
# those words but not the words ("デザート", dessert, begins as "デザイン" does; "디자이너", designer, as "디자인").
RUNS = [
    ("japanese", "東京デザイン週間のブースを予約した", "駅前のデザート店", ["デザイン", "ブース", "週間"]),
    ("chinese", "我们下周在北京开会讨论预算和黑猫", "讨论会开始于北方", ["北京", "开会", "预算", "周", "猫"]),
    ("korean", "서울디자인위크에서 부스를 예약했다", "디자이너 채용", ["디자인", "위크"]),
    ("thai", "ประชุมงบประมาณที่กรุงเทพ", "งานประจำปี", ["งบประมาณ", "กรุงเทพ"]),
]


@pytest.mark.parametrize(("stem", "body", "other", "questions"), RUNS, ids=[r[0] for r in RUNS])
def test_a_word_inside_a_run_of_letters_without_spaces_is_found(paths: AgentPaths, stem: str, body: str, other: str,
                                                                questions: list[str]) -> None:
    note(paths, stem, stem, body)
    note(paths, "other", "other", other)
    with Catalog(paths) as cat:
        cat.sync()
        found = {q: [h.stem for h in search(cat, q, today=TODAY)] for q in questions}
    assert found == {q: [stem] for q in questions}


def test_a_snippet_shows_the_text_as_written_not_the_pairs_the_index_holds(paths: AgentPaths) -> None:
    note(paths, "tdw", "Tokyo", "東京デザイン週間のブース。 Hauptstraße 5", description="Booth")
    with Catalog(paths) as cat:
        cat.sync()
        [by_pairs] = search(cat, "デザイン", today=TODAY)
        [by_street] = search(cat, "Hauptstrasse", today=TODAY)
    assert by_pairs.snippet == "Tokyo — Booth 東京デザイン週間のブース。 Hauptstraße 5"
    assert by_street.snippet == "Tokyo — Booth 東京デザイン週間のブース。 [Hauptstraße] 5"


def test_a_name_with_sharp_s_says_the_question_s_word_as_its_other_spelling_does(paths: AgentPaths) -> None:
    note(paths, "sharp", "Hauptstraße", "Where the studio is.")
    note(paths, "spelled-out", "Hauptstrasse", "Where the studio is.")
    with Catalog(paths) as cat:
        cat.sync()
        hits = search(cat, "Hauptstrasse", today=TODAY)
    assert sorted(h.stem for h in hits) == ["sharp", "spelled-out"]
    assert hits[0].score == hits[1].score  # both have the name boost


def test_an_index_rebuilt_from_scratch_answers_as_the_synced_one_in_scripts_without_spaces(paths: AgentPaths) -> None:
    note(paths, "tdw", "東京デザイン週間", "ブースの設計。Hauptstraße 5")
    note(paths, "seoul", "서울디자인위크", "부스 예약")
    questions = ["デザイン", "ブース", "変更", "strasse", "giessen", "디자인", "งบประมาณ"]
    with Catalog(paths) as cat:
        cat.sync()
        note(paths, "tdw", "東京デザイン週間", "ブースの設計を変更。Gießener Straße 5")
        (paths.memory / "seoul.md").unlink()
        note(paths, "bkk", "กรุงเทพ", "ประชุมงบประมาณ")
        cat.sync()
        cat.conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check')")  # raises when out of step
        synced = {q: [h.as_dict() for h in search(cat, q, today=TODAY)] for q in questions}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{paths.state / 'index.db'}{suffix}").unlink(missing_ok=True)
    with Catalog(paths) as cat:
        cat.sync()
        assert {q: [h.as_dict() for h in search(cat, q, today=TODAY)] for q in questions} == synced
    assert {q: [h["stem"] for h in hits] for q, hits in synced.items()} == {
        "デザイン": ["tdw"], "ブース": ["tdw"], "変更": ["tdw"], "strasse": ["tdw"], "giessen": ["tdw"], "디자인": [],
        "งบประมาณ": ["bkk"]}


def test_a_korean_or_japanese_word_finds_the_longer_words_it_begins(paths: AgentPaths) -> None:
    note(paths, "seoul", "Seoul office", "사무실은 서울에서 가깝다")  # "in Seoul": the particle is part of the word
    with Catalog(paths) as cat:
        cat.sync()
        assert [h.stem for h in search(cat, "서울", today=TODAY)] == ["seoul"]


def test_the_specs_example_name_is_found_by_its_name(paths: AgentPaths) -> None:
    note(paths, "東京デザイン週間", "東京デザイン週間", "Booth identity and wayfinding.")
    with Catalog(paths) as cat:
        cat.sync()
        assert [h.stem for h in search(cat, "東京デザイン週間", today=TODAY)] == ["東京デザイン週間"]


def test_a_hindi_word_is_one_word_in_the_index_not_its_letters(paths: AgentPaths) -> None:
    # Split at its vowel signs, "भाषा" (language) would be "भ ष", as "भेष" (disguise) is.
    note(paths, "language", "language", "भाषा")
    note(paths, "disguise", "disguise", "भेष")
    with Catalog(paths) as cat:
        cat.sync()
        assert [h.stem for h in search(cat, "भाषा", today=TODAY)] == ["language"]


@pytest.mark.parametrize(("written", "asked"), [("Müller", "muller"), ("Muller", "Müller"),
                                                ("José García", "jose garcia"), ("Bjo\u0308rk", "björk"),
                                                # casefolds unicode61 misses: ß and ẞ are ss, ligatures
                                                ("Straße", "Strasse"), ("Strasse", "Straße"), ("STRAẞE", "Strasse"),
                                                ("Gießen", "GIESSEN"), ("ﬂamingo", "flamingo")])
def test_latin_accents_and_casefolds_fold_both_ways(paths: AgentPaths, written: str, asked: str) -> None:
    note(paths, "accents", "accents", f"Meeting with {written} about the brochure.")
    with Catalog(paths) as cat:
        cat.sync()
        hits = search(cat, asked, today=TODAY)
    assert [h.stem for h in hits] == ["accents"]
    assert all(f"[{word}]" in hits[0].snippet for word in written.split())


def test_a_questions_words_are_the_words_the_index_stored_in_any_script(paths: AgentPaths) -> None:
    from vault_agent.memory import related

    text = " ".join(body for _, body, _ in SCRIPTS) + " Müller cafe\u0301 ｱｲｳ Ⅻ x² 東京デザイン週間 İstanbul ΣΊΣΥΦΟΣ"
    note(paths, "mixed", "mixed", text)
    with Catalog(paths) as cat:
        cat.sync()
        cat.conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, docs_fts, 'instance')")
        stored = [term for term, in cat.conn.execute(
            "SELECT term FROM temp.vocab JOIN docs ON docs.id = doc WHERE docs.stem = 'mixed' AND col = 'body' "
            "ORDER BY offset")]
    # Runs of Chinese, Japanese, Korean or Thai letters are stored as pairs (related.index_text): so is a question's word.
    assert related.stems([t for w in related.words(text) for t in related.index_text(w).split()]) == stored


@pytest.mark.parametrize(("body", "other", "question"), [
    ("東京デザイン週間のブースを予約した", "駅前のデザート店", "デザイン週間のブースの準備をしてください"),
    ("我们下周在北京开会讨论预算", "讨论会开始于北方", "请准备北京开会的预算表"),
    ("서울디자인위크에서부스를예약했다", "디자이너채용", "디자인위크부스준비"),
], ids=["japanese", "chinese", "korean"])
def test_a_question_written_as_one_run_without_spaces_finds_the_note_sharing_most_of_its_words(
        paths: AgentPaths, body: str, other: str, question: str) -> None:
    # The whole question is one run of letters that no note holds: its pairs are searched instead.
    note(paths, "meant", "meant", body)
    note(paths, "other", "other", other)
    with Catalog(paths) as cat:
        cat.sync()
        found = [h.stem for h in search(cat, question, today=TODAY)]
        recalled = [h.stem for h in relevant(cat, question, today=TODAY)]
    assert found[0] == "meant" and recalled[0] == "meant"


def test_a_search_within_a_read_grant_asks_the_grant_about_each_file_once(tmp_path: Path) -> None:
    # 70 journal entries in 28 day files outrank the notes, and the pool grows twice to get past them: each
    # check of the grant resolves the path on disk, so none is made twice.
    paths = agent(tmp_path)
    notes = outranked_notes(paths, above="journal")
    asked: list[str] = []

    def readable(rel: str) -> bool:
        asked.append(rel)
        return not rel.startswith("journal/")

    with Catalog(paths) as cat:
        cat.sync()
        found = [h.path for h in search(cat, "kayak", limit=10, today=TODAY, readable=readable)]
        searched = sorted(asked)
        asked.clear()
        recalled = [h.path for h in relevant(cat, "kayak", today=TODAY, kinds=("memory", "journal"), limit=10,
                                             readable=readable)]
    assert found == notes and recalled == notes
    assert len(set(searched)) == 28 + 4 and sorted(set(searched)) == searched
    assert len(set(asked)) == 28 + 4 and len(asked) == len(set(asked))


def test_a_long_lived_process_keeps_a_bounded_number_of_ranked_rows_however_deep_its_searches_rank(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A search within a read grant ranks deeper while unreadable documents outrank the rest: what the index keeps
    # of its rankings for the next search is bounded by rows, not by how many rankings (1,024 of 6,000 rows each
    # would be ~700 MB in a long-lived MCP server or daemon).
    from vault_agent.memory import catalog as catalog_mod

    paths = agent(tmp_path)
    outranked_notes(paths, above="journal")
    monkeypatch.setattr(catalog_mod, "_RANKED_ROWS_MAX", 200, raising=False)
    with Catalog(paths) as cat:
        cat.sync()
        for word in ("kayak", "rack", "rental", "trip", "booked", "kayak rack", "kayak trip"):
            search(cat, word, limit=10, today=TODAY, readable=lambda rel: not rel.startswith("journal/"))
            kept = cat.search_stats()._rankings
            assert kept and sum(len(rows) + 1 for rows in kept.values()) <= 200


def test_a_prefix_term_is_counted_exactly_under_the_cap_and_not_scanned_when_its_whole_word_is_over_it(
        tmp_path: Path) -> None:
    # Counting a prefix merges the doclists of every word it starts (7 ms for "draft*" at 100k notes); a prefix
    # matches every document its whole word does, so the whole word's count over the cap answers for it.
    paths = agent(tmp_path)
    for i in range(3):
        note(paths, f"baker-{i}", f"Baker {i}", "The baker on the corner.")
    for i in range(5):
        note(paths, f"bakery-{i}", f"Bakery {i}", "A bakery in town.")
    for i in range(12):
        note(paths, f"draft-{i}", f"Draft {i}", "A draft of the letter.")
    with Catalog(paths) as cat:
        cat.sync()
        stats = cat.search_stats()
        ran: list[str] = []
        cat.conn.set_trace_callback(ran.append)
        assert stats.document_frequency('"baker"*', 10) == 8  # its whole word is in 3: the prefix is counted
        assert stats.document_frequency('"draft"*', 10) == 11  # its whole word is in 12, over the cap of 10
        assert stats.document_frequency('name : "draft"*', 10) == 11
        cat.conn.set_trace_callback(None)
    assert any('"baker"*' in sql for sql in ran) and not any('"draft"*' in sql for sql in ran)


def test_a_models_search_word_too_common_to_rank_still_counts_where_a_note_is_named_for_it(tmp_path: Path) -> None:
    # "sent" and "newsletter" are each in a fifth of the notes, over COMMON_SHARE: a person's question loses them
    # as filler, while the rarer "plan" ranks the plan notes. Search words a model chose hold no filler
    # (recall_words): each is tried in the names, descriptions and tags, rarest first ("sent" matches too many).
    paths = agent(tmp_path)
    note(paths, "newsletter-relaunch", "Newsletter relaunch", "Moving to Buttondown in March.",
         description="Monthly studio newsletter")
    for i in range(130):
        note(paths, f"sent-{i}", f"Sent {i}", f"The newsletter went out on time, issue {i}.")
    for i in range(3):
        note(paths, f"plan-{i}", f"Garden {i}", f"The plan for bed {i}.")
    for i in range(400):
        note(paths, f"misc-{i}", f"Misc {i}", f"Invoice {i} was paid.")
    with Catalog(paths) as cat:
        cat.sync()
        asked = [h.stem for h in relevant(cat, "plan sent newsletter", today=TODAY, kinds=("memory",), limit=3)]
        chosen = [h.stem for h in relevant(cat, "plan sent newsletter", today=TODAY, kinds=("memory",), limit=3,
                                           every_word=True)]
    assert "newsletter-relaunch" not in asked and chosen[0] == "newsletter-relaunch"
