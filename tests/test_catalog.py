"""The derived note catalog: incremental sync, rebuild equals incremental, damage means rebuild."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from memory_helpers import damage, note

from vault_agent.errors import VaultAgentError
from vault_agent.memory.catalog import Catalog
from vault_agent.memory.search import search
from vault_agent.vault.layout import AgentPaths
from vault_agent.vault.notes import NoteStore


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


def test_a_new_connection_sees_a_change_made_after_a_partial_sync_and_then_undone(paths: AgentPaths) -> None:
    # A full sync leaves a digest of the stats it synced, which lets the next process skip loading them. A watch's
    # partial sync changes the table without a full walk: the digest must go, or restoring a file's bytes and
    # mtime in place (rsync --inplace -t, a backup tool) would match it while the index holds the edit.
    path = write(paths, "a.md", "A", desc="xxxx")
    st = path.stat()
    with Catalog(paths) as cat:
        cat.sync()
        path.write_text(path.read_text().replace("xxxx", "yyyy"))
        assert cat.sync(only={"memory/a.md"}).changed == 1
    path.write_text(path.read_text().replace("yyyy", "xxxx"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_ino == st.st_ino and path.stat().st_size == st.st_size
    with Catalog(paths) as cat:
        assert cat.sync().changed == 1
        assert cat.summaries()[0]["description"] == "xxxx"


def test_a_sync_that_changed_nothing_does_not_wait_for_another_writer(paths: AgentPaths) -> None:
    write(paths, "a.md", "A")
    with Catalog(paths) as cat:
        cat.sync()
        write(paths, "a.md", "A", desc="edited")
        cat.sync(only={"memory/a.md"})  # the digest of the last full sync is gone now
    other = sqlite3.connect(paths.state / "index.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    try:
        started = time.monotonic()
        with Catalog(paths) as cat:
            assert cat.sync().unchanged == 1
        assert time.monotonic() - started < 10  # not the 30 s a write would wait for the lock
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Catalog(paths) as cat:
        assert cat.sync().unchanged == 1
        # stored once the lock was free
        assert cat.conn.execute("SELECT count(*) FROM meta WHERE key = 'files'").fetchone()[0] == 1


def test_no_digest_is_stored_beside_a_table_another_process_changed_during_the_sync(paths: AgentPaths) -> None:
    write(paths, "a.md", "A")
    with Catalog(paths) as slow, Catalog(paths) as other:
        slow.sync()
        seen = slow._version()  # where a sync started reading the table
        write(paths, "b.md", "B")
        other.sync()  # commits in the middle of it
        slow._store_digest("0" * 32, seen)
        assert slow._stored_digest() != "0" * 32
        slow._store_digest("0" * 32, slow._version())
        assert slow._stored_digest() == "0" * 32


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


def test_a_sync_of_what_changed_after_the_index_file_was_deleted_indexes_every_file(paths: AgentPaths) -> None:
    write(paths, "a.md", "A")
    write(paths, "b.md", "B")
    with Catalog(paths) as cat:
        cat.sync()
        for suffix in ("", "-wal", "-shm"):  # a person deleting the derived index while a watcher runs
            Path(f"{cat.db_path}{suffix}").unlink(missing_ok=True)
        write(paths, "c.md", "C")
        cat.sync(only={"memory/c.md"})
        assert [r[0] for r in cat.conn.execute("SELECT path FROM files ORDER BY path")] == \
            ["memory/a.md", "memory/b.md", "memory/c.md"]


def test_a_vault_agent_file_instead_of_a_folder_is_one_line_saying_to_move_it_aside(paths: AgentPaths) -> None:
    from vault_agent.errors import StorageError

    paths.state.write_text("")
    with pytest.raises(StorageError) as raised:
        Catalog(paths)
    assert raised.value.one_line() == f"{paths.state}: not a folder (fix: move this file aside: vault-agent makes " \
                                      "the folder anew and keeps its index and locks in it)"


def test_a_sync_after_its_agent_folder_was_deleted_does_not_bring_the_folder_back(paths: AgentPaths) -> None:
    import shutil

    from vault_agent.errors import StorageError

    write(paths, "a.md", "A")
    with Catalog(paths) as cat:
        cat.sync()
        shutil.rmtree(paths.root)
        with pytest.raises(StorageError, match="the agent folder is gone"):
            cat.sync(only={"memory/a.md"})
    assert not paths.root.exists()


def test_a_damaged_index_is_discarded_and_rebuilt(paths: AgentPaths) -> None:
    write(paths, "a.md", "A")
    paths.state.mkdir(parents=True, exist_ok=True)
    (paths.state / "index.db").write_bytes(b"this is not a database" * 100)
    with Catalog(paths) as cat:
        cat.sync()
        assert [s["name"] for s in cat.summaries()] == ["A"]


def _indexed(paths: AgentPaths, count: int) -> list[str]:
    names = [f"N{i:03}" for i in range(count)]
    for name in names:
        write(paths, f"{name}.md", name, "words " * 40)
    with Catalog(paths) as cat:
        cat.sync()
    return names


@pytest.mark.parametrize("table, use", [
    ("notes", lambda cat: cat.summaries()),
    ("docs", lambda cat: (write(cat.paths, "N000.md", "N000", "words"), cat.sync())),
    ("docs", lambda cat: cat.rebuild()),
    ("docs_fts_data", lambda cat: search(cat, "words")),
])
def test_an_index_with_damaged_pages_is_rebuilt_by_the_read_sync_rebuild_or_search_that_finds_it(
        paths: AgentPaths, table: str, use: Callable[[Catalog], object]) -> None:
    names = _indexed(paths, 300)
    damage(paths.state / "index.db", table)
    with Catalog(paths) as cat:
        use(cat)
        assert [s["name"] for s in cat.summaries()] == names
        assert len(search(cat, "words", limit=500)) == 300
        assert cat.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_index_still_damaged_after_its_rebuild_is_rebuilt_once_not_once_per_nested_read(
        paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stand-in, not a real part: the rebuild only counts, so the damage stays (no real disk fails on cue).
    _indexed(paths, 50)
    damage(paths.state / "index.db", "notes_superseding")  # what superseded() reads, inside candidates()
    rebuilds: list[int] = []
    monkeypatch.setattr(Catalog, "_rebuild_damaged", lambda self: rebuilds.append(1))
    with Catalog(paths) as cat, pytest.raises(VaultAgentError):
        cat.candidates(today="2026-11-21", limit=5)  # a healed read whose superseded() is healed too
    assert rebuilds == [1]


def test_a_damaged_index_another_process_has_replaced_already_is_not_discarded_again(paths: AgentPaths) -> None:
    names = _indexed(paths, 50)
    with Catalog(paths) as first:  # open before the damage, as a chat or the daemon would be
        damage(paths.state / "index.db", "notes")
        with Catalog(paths) as second:
            assert [s["name"] for s in second.summaries()] == names  # discards the file and builds a new one
            replaced = os.stat(paths.state / "index.db").st_ino
            # `first` still has the damaged file open and finds the damage only now: the new file must stay.
            assert [s["name"] for s in first.summaries()] == names
            assert os.stat(paths.state / "index.db").st_ino == replaced
            write(paths, "N000.md", "Renamed")
            assert first.sync().changed == 1 and second.summaries()[0]["name"] == "Renamed"


def test_a_full_index_is_a_one_line_error_that_keeps_the_last_state_and_the_next_sync_goes_on(
        paths: AgentPaths) -> None:
    from vault_agent.errors import StorageError

    write(paths, "a.md", "A")
    with Catalog(paths) as cat:
        cat.sync()
        # SQLite's own page limit makes the database full the way a full disk does (SQLITE_FULL),
        # without needing a real full file system.
        cat.conn.execute(f"PRAGMA max_page_count={cat.conn.execute('PRAGMA page_count').fetchone()[0]}")
        for i in range(40):
            write(paths, f"n{i}.md", f"N{i}", "words " * 300)
        with pytest.raises(StorageError) as err:
            cat.sync()
        assert err.value.one_line() == (f"{paths.state / 'index.db'}: disk full while writing the search index; "
                                        "the notes are untouched (fix: free some disk space and run again)")
        assert [s["name"] for s in cat.summaries()] == ["A"]
        cat.conn.execute("PRAGMA max_page_count=1073741823")
        assert cat.sync().added == 40
        cat.conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check')")
    with Catalog(paths) as cat:
        assert cat.sync().unchanged == 41


def test_an_index_another_process_keeps_locked_is_a_one_line_error_not_damage(paths: AgentPaths) -> None:
    import sqlite3

    from vault_agent.errors import StorageError

    write(paths, "a.md", "A")
    with Catalog(paths) as cat:
        cat.sync()
    other = sqlite3.connect(paths.state / "index.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    try:
        write(paths, "b.md", "B")
        with Catalog(paths) as cat:
            cat.conn.execute("PRAGMA busy_timeout=200")  # instead of waiting the usual 30 s
            with pytest.raises(StorageError, match="stayed locked by another process") as err:
                cat.sync()
            assert "try again once the other vault-agent command or run has finished" in err.value.one_line()
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Catalog(paths) as cat:
        assert (cat.sync().added, [s["name"] for s in cat.summaries()]) == (1, ["A", "B"])


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


def test_a_note_with_an_impossible_date_is_a_finding_and_every_other_note_is_indexed(paths: AgentPaths) -> None:
    write(paths, "a.md", "A")
    typo = paths.memory / "typo.md"
    typo.write_text("---\ntype: decision\nname: D\nupdated: 2026-02-30\n---\nbody\n")
    write(paths, "z.md", "Z")
    with Catalog(paths) as cat:
        cat.rebuild()
        assert [s["name"] for s in cat.summaries()] == ["A", "Z"]
        [finding] = cat.findings()
        assert finding.path == typo and "line 4 ('updated: 2026-02-30')" in finding.message


def test_a_file_or_folder_whose_name_is_not_utf8_is_left_out_with_one_finding_and_the_rest_is_indexed(
        paths: AgentPaths) -> None:
    write(paths, "a.md", "A")
    memory = os.fsencode(paths.memory)
    try:
        os.mkdir(memory + b"/fold\xe9r")
    except OSError:
        pytest.skip("this file system takes only UTF-8 names")
    for name in (b"/caf\xe9.md", b"/fold\xe9r/n.md"):
        with open(memory + name, "wb") as f:
            f.write(b"---\ntype: reference\nname: L\n---\nx\n")
    expected = [f"WARNING {paths.memory}/{name}: the name is not UTF-8; left out — fix: rename it"
                for name in ("caf\\xe9.md", "fold\\xe9r")]
    with Catalog(paths) as cat:
        assert cat.sync().added == 1
        assert [s["name"] for s in cat.summaries()] == ["A"]
        assert [f.one_line() for f in cat.findings()] == [f.one_line() for f in cat.findings(left_out=True)] == expected
        assert cat.sync({os.fsdecode(memory + b"/caf\xe9.md")}).added == 0  # as `vault-agent watch` reports it
    store = NoteStore(paths)
    assert [n.name for n in store.scan()] == ["A"] and [f.one_line() for f in store.findings] == expected


# --- the search tables (schema 6) ----------------------------------------------

def docs(cat: Catalog) -> list[tuple[str, str, str, str]]:
    return cat.conn.execute("SELECT path, anchor, kind, name FROM docs ORDER BY path, anchor").fetchall()


def test_a_touch_without_a_content_change_re_indexes_nothing(paths: AgentPaths) -> None:
    path = write(paths, "a.md", "A")
    with Catalog(paths) as cat:
        cat.sync()
        before = cat.conn.execute("SELECT id FROM docs").fetchall()
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
        stats = cat.sync()
        assert (stats.touched, stats.changed, stats.added) == (1, 0, 0)
        assert cat.conn.execute("SELECT id FROM docs").fetchall() == before  # same rows, not re-inserted
        assert cat.sync().unchanged == 1  # and the new stat was stored


def test_wiki_pages_journal_entries_and_skills_are_indexed_one_entry_a_document(paths: AgentPaths) -> None:
    import datetime as dt

    from memory_helpers import journal_entry, page

    write(paths, "a.md", "A")
    page(paths, "wiki/handbook.md", "# Studio handbook\n\nInvoices are numbered OS-YYYY-NNN.\n")
    page(paths, "skills/pdf/SKILL.md", "---\nname: pdf\ndescription: Fill PDF forms\n---\nSteps.\n")
    page(paths, "skills/pdf/reference.md", "not a skill file\n")
    day = dt.datetime(2026, 11, 18, 9, 12, 4)
    journal_entry(paths, day, "r1", "Plan the week")
    journal_entry(paths, day.replace(hour=16), "r2", "Evening digest")
    with Catalog(paths) as cat:
        cat.sync()
        assert docs(cat) == [
            ("journal/2026-11/2026-11-18.md", "r1", "journal", "2026-11-18 09:12:04 cli run r1 (ok)"),
            ("journal/2026-11/2026-11-18.md", "r2", "journal", "2026-11-18 16:12:04 cli run r2 (ok)"),
            ("memory/a.md", "", "memory", "A"),
            ("skills/pdf/SKILL.md", "", "skill", "pdf"),
            ("wiki/handbook.md", "", "wiki", "Studio handbook"),
        ]
        journal_entry(paths, day.replace(hour=18), "r3", "Late question")
        assert cat.sync().changed == 1
        assert [a for _, a, k, _ in docs(cat) if k == "journal"] == ["r1", "r2", "r3"]
        (paths.root / "wiki" / "handbook.md").unlink()
        assert cat.sync().removed == 1
        assert "wiki" not in {k for _, _, k, _ in docs(cat)}
        assert cat.conn.execute("SELECT count(*) FROM docs_fts").fetchone()[0] == len(docs(cat))


def test_a_byte_order_mark_before_the_text_is_not_part_of_a_name_or_description(paths: AgentPaths) -> None:
    import datetime as dt

    from memory_helpers import journal_entry

    bom = "\ufeff".encode("utf-8")
    (paths.memory / "thought.md").write_bytes(bom + b"Just a thought.\n")
    (paths.root / "wiki").mkdir()
    (paths.root / "wiki" / "handbook.md").write_bytes(bom + b"# Studio handbook\n\nInvoices.\n")
    day = journal_entry(paths, dt.datetime(2026, 11, 18, 9, 12, 4), "r1", "Plan the week")
    day.write_bytes(bom + day.read_bytes())
    with Catalog(paths) as cat:
        cat.sync()
        assert [(s["name"], s["description"]) for s in cat.summaries()] == [("thought", "Just a thought.")]
        assert [(a, n) for _, a, _, n in docs(cat)] == [("r1", "2026-11-18 09:12:04 cli run r1 (ok)"),
                                                        ("", "thought"), ("", "Studio handbook")]


def test_rebuilding_from_scratch_gives_the_same_search_results(paths: AgentPaths) -> None:
    from vault_agent.memory.search import search

    for i in range(40):
        write(paths, f"n{i}.md", f"Note {i}", desc=f"topic {'alpha' if i % 3 else 'beta'} number {i}")
    queries = ["alpha", "beta number 7", "note 12", "topic"]
    with Catalog(paths) as cat:
        cat.sync()
        write(paths, "n3.md", "Note 3", desc="gamma edited")
        (paths.memory / "n4.md").unlink()
        (paths.memory / "n5.md").rename(paths.memory / "renamed.md")
        write(paths, "new.md", "Brand new", desc="beta and gamma")
        cat.sync()
        incremental = [[h.as_dict() for h in search(cat, q, limit=20)] for q in queries]
        incremental_notes = cat.summaries_json()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{paths.state / 'index.db'}{suffix}").unlink(missing_ok=True)
    with Catalog(paths) as cat:
        cat.sync()
        assert [[h.as_dict() for h in search(cat, q, limit=20)] for q in queries] == incremental
        assert cat.summaries_json() == incremental_notes


def test_an_index_from_an_older_schema_is_rebuilt(paths: AgentPaths) -> None:
    import sqlite3

    write(paths, "a.md", "A")
    paths.state.mkdir(parents=True)
    old = sqlite3.connect(paths.state / "index.db")
    old.execute("CREATE TABLE notes (path TEXT PRIMARY KEY, ino INTEGER)")
    old.execute("PRAGMA user_version=5")
    old.commit()
    old.close()
    with Catalog(paths) as cat:
        assert cat.sync().added == 1
        assert [n for _, _, _, n in docs(cat)] == ["A"]


def indexed_the_old_way(paths: AgentPaths, unfound: str, **old_ways: object) -> None:
    """Index the agent with catalog's names in `old_ways` standing in for what an older version had, and check
    that `unfound` finds nothing in that index."""
    from vault_agent.memory import catalog

    with pytest.MonkeyPatch.context() as old:
        for name, value in old_ways.items():
            old.setattr(catalog, name, value)
        with Catalog(paths) as cat:
            cat.sync()
            assert search(cat, unfound) == []


def test_an_index_of_schema_9_whose_runs_of_japanese_letters_are_whole_words_is_rebuilt(paths: AgentPaths) -> None:
    note(paths, "tdw", "tdw", "東京デザイン週間のブース")
    # Indexed as schema 9 did: the run as given, one word to unicode61.
    indexed_the_old_way(paths, "デザイン", SCHEMA_VERSION=9, index_text=lambda text: text)
    with Catalog(paths) as cat:
        assert cat.sync().added == 1
        assert [h.stem for h in search(cat, "デザイン")] == ["tdw"]


def test_an_index_made_with_another_related_terms_table_is_rebuilt_and_a_rebuild_keeps_the_table_it_used(
        paths: AgentPaths) -> None:
    note(paths, "toaster", "Toaster refund", "The shop refunds the broken toaster.")
    # Made with a table that related nothing to the note's words.
    indexed_the_old_way(paths, "receipt", table_digest=lambda: "an older table",
                        expansions=lambda texts: [""] * len(texts))
    with Catalog(paths) as cat:
        assert cat.sync().added == 1
        assert [h.stem for h in search(cat, "receipt")] == ["toaster"]
        cat.rebuild()
    with Catalog(paths) as cat:
        assert cat.sync().added == 0  # not thrown away again: the rebuilt index says which table it was made with


def test_the_related_terms_tables_digest_follows_its_groups_not_its_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import related

    def digest(text: str) -> str:
        monkeypatch.setattr(related, "_table_text", lambda: text)
        related.table_digest.cache_clear()
        return related.table_digest()

    try:
        commented, recommented = digest("# teeth\ntooth dentist\n"), digest("# the mouth\n\ntooth  dentist\n")
        grown = digest("# teeth\ntooth dentist floss\n")
    finally:
        related.table_digest.cache_clear()
    assert commented == recommented != grown  # an edited comment rebuilds no index


def test_a_folder_judged_once_indexes_exactly_the_files_kind_of_would() -> None:
    from vault_agent.memory.sources import kind_in, kind_of

    prefixes = ["memory/", "memory/people/", "wiki/", "journal/2026-11/", "skills/", "skills/pdf/",
                "skills/pdf/refs/", "archive/2026/", "persona/", "log/2026-11/"]
    names = ["note.md", "INDEX.md", "SKILL.md", ".hidden.md", "notes.txt", "draft.md.tmp", "index.md", "skill.MD",
             "a", ".md"]
    for prefix in prefixes:
        kind = kind_in(prefix)
        for name in names:
            assert kind(name) == kind_of(prefix + name), prefix + name


def test_a_sync_that_re_indexes_many_files_merges_the_search_index_and_keeps_its_answers(
        paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import catalog
    from vault_agent.memory.search import search

    today = dt.date(2026, 11, 20)

    def note(i: int, year: int) -> None:
        write(paths, f"n{i}.md", f"Boiler service {i}", f"The boiler was serviced in {year}")

    def optimized() -> int:
        return sum("'optimize'" in s for s in statements)

    monkeypatch.setattr(catalog, "BATCH_FILES", 2)  # several commits: several FTS5 segments to merge
    monkeypatch.setattr(catalog, "OPTIMIZE_AFTER", 6)
    statements: list[str] = []
    for i in range(5):
        note(i, 2020 + i)
    with Catalog(paths) as cat:
        cat.conn.set_trace_callback(statements.append)
        assert cat.sync().added == 5 and optimized() == 0
        for i in range(3):
            note(i, 2030 + i)
            note(5 + i, 2025 + i)
        stats = cat.sync()
        assert (stats.added, stats.changed, optimized()) == (3, 3, 1)
        cat.conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check')")  # raises when damaged
        merged = [(h.stem, h.score, h.snippet) for h in search(cat, "boiler serviced 2026", today=today)]
        monkeypatch.setattr(catalog, "OPTIMIZE_AFTER", 10**9)
        cat.rebuild()
        assert optimized() == 1
        unmerged = [(h.stem, h.score, h.snippet) for h in search(cat, "boiler serviced 2026", today=today)]
    assert merged == unmerged and merged[0][0] == "n6"


def test_a_sync_that_re_reads_more_than_a_batch_reports_its_progress_batch_by_batch(
        paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import catalog

    monkeypatch.setattr(catalog, "BATCH_FILES", 2)
    seen: list[tuple[int, int]] = []
    for i in range(5):
        write(paths, f"n{i}.md", f"N{i}")
    with Catalog(paths, progress=lambda done, total: seen.append((done, total))) as cat:
        cat.sync()
        assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]
        write(paths, "n0.md", "N0 again")
        write(paths, "n1.md", "N1 again")
        cat.sync()  # one batch: over before anyone would wait
        assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]


def test_stat_by_open_folder_sees_what_stat_by_path_sees_and_closes_every_folder(
        paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import catalog

    write(paths, "a.md", "A")
    write(paths, "people/b.md", "B")
    write(paths, "people/family/c.md", "C")
    write(paths, ".trash/d.md", "D")
    (paths.memory / "notes.txt").write_text("not a note")
    (paths.root / "skills" / "pdf").mkdir(parents=True)
    (paths.root / "skills" / "pdf" / "SKILL.md").write_text("---\nname: pdf\n---\n")
    (paths.root / "elsewhere").mkdir()
    (paths.root / "elsewhere" / "e.md").write_text("---\nname: E\n---\n")
    (paths.memory / "linked").symlink_to(paths.root / "elsewhere", target_is_directory=True)  # not followed
    (paths.memory / "f.md").symlink_to(paths.memory / "a.md")  # a linked file counts, as its target

    def stat_all() -> dict[str, tuple[int, int, int]]:
        out: dict[str, tuple[int, int, int]] = {}
        for folder in catalog.SOURCE_FOLDERS:
            catalog._stat_tree(paths.root, str(paths.root / folder), f"{folder}/", out, [])
        return out

    fds = Path("/proc/self/fd")
    before = len(list(fds.iterdir())) if fds.is_dir() else 0
    by_fd = stat_all()
    assert (len(list(fds.iterdir())) if fds.is_dir() else 0) == before
    monkeypatch.setattr(catalog, "_BY_FD", False)
    assert by_fd == stat_all()
    assert sorted(by_fd) == ["memory/a.md", "memory/f.md", "memory/people/b.md", "memory/people/family/c.md",
                             "skills/pdf/SKILL.md"]
    assert by_fd["memory/f.md"] == by_fd["memory/a.md"]
