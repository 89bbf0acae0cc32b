"""`vault-agent dream`: duplicates merged with versions kept, expired notes archived, journal days summarized;
with a model, near-duplicate merges and the summary written by one capped run, the deterministic merge as fallback."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner, Result
from memory_helpers import agent, files_snapshot, journal_entry, note
from security_kit import files_containing, store_secret

from vault_agent.cli import main
from vault_agent.memory import dream, dream_model
from vault_agent.memory.catalog import Catalog
from vault_agent.memory.search import read_note_by_ref, search
from vault_agent.testing.fakellm import FakeLLMServer, Reply
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.journal import parse_day
from vault_agent.vault.layout import AgentPaths
from vault_agent.vault.notes import NoteStore, NoteWrite, read_note

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
         extra="updated: 2025-12-01\naliases: [sencha]\n")
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
    # Still found by what the merged notes were called and by their aliases.
    assert kept.aliases == ["Tea habit", "sencha", "Tea"] and kept.tags == ["drinks"]
    assert not (paths.memory / "tea-copy.md").exists() and not (paths.memory / "tea-again.md").exists()
    assert (paths.versions / "tea-copy" / "dream-t1.md").read_text().endswith(f"{TEA}\n")
    assert (paths.versions / "tea" / "dream-t1.md").exists()  # the kept note's previous version
    assert (paths.memory / "tea-project.md").exists()
    with Catalog(paths) as cat:
        cat.sync()
        assert read_note_by_ref(paths, cat, "[[tea-copy]]").superseded_by == "tea"


def test_an_expired_note_is_never_moved_through_a_linked_archive_folder(paths: AgentPaths, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (paths.root / "archive").symlink_to(host, target_is_directory=True)  # as a sandboxed command could leave it
    folder = AgentFolder(paths.root)
    done = dream.apply(folder, dream.plan(folder, today=TODAY), tag="dream-t3")
    assert f"skipped memory/voucher.md: {paths.root / 'archive'} is a link, never written through" in done
    assert list(host.iterdir()) == [] and (paths.memory / "voucher.md").exists()


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


def test_aliases_for_a_note_edited_after_the_plan_are_not_written(paths: AgentPaths) -> None:
    folder = AgentFolder(paths.root)
    planned = dream.plan(folder, today=TODAY, aliases=True)
    rate = note(paths, "rate", "Day rate", "€800 a day from January.", type="decision")
    model = dream.ModelText(aliases={n.path: ["fee"] for n in planned.unaliased})
    done = dream.apply(folder, planned, tag="dream-t5", model=model)
    assert "skipped aliases for memory/rate.md: changed since the plan was made" in done
    assert "added aliases to memory/tea-project.md: fee" in done
    assert rate.read_text() == '---\ntype: decision\nname: "Day rate"\n---\n€800 a day from January.\n'


INVOICE = ("Invoice OS-2026-041 for €4,680 goes to maya@cafe-lumiere.example by 2026-12-01, after the logo phase "
           "is signed off by Maya and her partner. It covers the logo, the colour palette, the menu layout and two "
           "rounds of changes. The brief is at https://cafe-lumiere.example/brief and the project is "
           "[[café-lumière-rebrand]].")
INVOICE_AGAIN = INVOICE.replace("The brief is at", "Maya keeps the brief at")
MERGED_INVOICE = ("Invoice OS-2026-041 (€4,680: logo, colour palette, menu layout, two rounds of changes) goes to "
                  "maya@cafe-lumiere.example by 2026-12-01, once Maya and her partner sign off the logo phase. Maya "
                  "keeps the brief at https://cafe-lumiere.example/brief. Project: [[café-lumière-rebrand]].")
MERGED_TEA = "Maya drinks loose green tea from the Tea Company in the afternoon: no sugar, never after six."


def with_invoices(paths: AgentPaths) -> None:
    """Add a second near-duplicate group, full of facts; merge 1 is the invoice, merge 2 the tea."""
    note(paths, "invoice", "Café Lumière invoice", INVOICE, type="project", extra="updated: 2026-03-01\n")
    note(paths, "invoice-again", "Invoice for Café Lumière", INVOICE_AGAIN, type="project",
         extra="updated: 2026-02-01\n")


def model_reply(invoice: str = MERGED_INVOICE, tea: str = MERGED_TEA) -> Reply:
    return Reply(f"=== summary ===\nA quiet week: planning went fine, the rate change failed once.\n"
                 f"=== merge 1 ===\ndescription: Café Lumière invoice OS-2026-041\n\n{invoice}\n"
                 f"=== merge 2 ===\ndescription: Green tea habits\n\n{tea}\n=== end ===\n")


def dream_with_model(paths: AgentPaths, server: FakeLLMServer, *args: str, cost: str = "",
                     env: dict[str, str] | None = None) -> Result:
    """`vault-agent dream a --with-model` against the fake server, priced so the caps can be checked."""
    paths.model_md.write_text(f"---\nprovider: anthropic\nmodel: claude-sonnet-5\nbase_url: {server.anthropic_base_url}"
                              "\nmax_retries: 0\nprices:\n  claude-sonnet-5: {input: 3.0, output: 15.0}\n"
                              f"{cost}---\n")
    return CliRunner(env={"ANTHROPIC_API_KEY": "k", **(env or {})}).invoke(
        main, ["--vault", str(paths.root.parent), "dream", "a", "--with-model", *args])


def run_records(paths: AgentPaths) -> list[dict]:
    return [r for p in sorted(paths.log.rglob("*.jsonl")) for line in p.read_text().splitlines()
            if (r := json.loads(line))["kind"] == "run"]


def test_with_model_one_run_writes_the_near_duplicate_merges_and_the_summary_and_old_versions_are_kept(
        paths: AgentPaths) -> None:
    with_invoices(paths)
    before = {stem: (paths.memory / f"{stem}.md").read_bytes() for stem in ("invoice", "invoice-again", "tea")}
    with FakeLLMServer() as server:
        server.script(model_reply())
        out = dream_with_model(paths, server)
        requests = server.requests
    assert out.exit_code == 0, out.output
    # One model call for both merges and the summary.
    [request] = requests
    assert "=== merge 1 ===" in json.dumps(request.body) and "=== summary ===" in json.dumps(request.body)
    invoice, _ = read_note(paths.memory / "invoice.md")
    assert (invoice.description, invoice.body) == ("Café Lumière invoice OS-2026-041", MERGED_INVOICE + "\n")
    assert invoice.supersedes == ["invoice-again"]
    tea, _ = read_note(paths.memory / "tea.md")
    assert tea.body == MERGED_TEA + "\n" and tea.supersedes == ["tea-again", "tea-copy"]
    [obs] = paths.memory.glob("journal-*.md")
    assert "## Summary (written by the model)\n\nA quiet week" in obs.read_text()
    model_run, dream_run = run_records(paths)
    assert (model_run["trigger"], dream_run["trigger"]) == ("dream", "dream")
    assert dream_run["work_item"] == "consolidate memory (dream)" and dream_run["status"] == "ok"
    assert "merged into memory/invoice.md (updated, written by the model)" in dream_run["dream"]
    assert obs.relative_to(paths.root).as_posix() in dream_run["notes_written"]
    # The spend is in the model run's record, behind its caps; the dream's record points to it, not repeats it.
    assert model_run["cost_usd"] > 0 and dream_run["cost_usd"] == 0 and dream_run["model_run"] == model_run["run_id"]
    # The journal says what the model run did in words, not with the reply's opening marker.
    today = paths.journal_day(dt.date.today()).read_text()
    assert "- **Did:** A quiet week: planning went fine" in today and "**Did:** ===" not in today
    tag = dream_run["run_id"]
    assert not (paths.memory / "invoice-again.md").exists()
    for stem, old in before.items():
        assert (paths.versions / stem / f"{tag}.md").read_bytes() == old


@pytest.mark.parametrize("dropped, kept_as", [("2026-12-01", "early December"), ("€4,680", "the agreed amount")])
def test_a_merge_whose_model_text_drops_a_date_or_number_falls_back_to_the_deterministic_merge(
        paths: AgentPaths, dropped: str, kept_as: str) -> None:
    with_invoices(paths)
    folder = AgentFolder(paths.root)
    [invoice_merge, _] = dream.plan(folder, today=TODAY).merges
    deterministic = dream.merged_body(invoice_merge.keep, invoice_merge.drop)
    with FakeLLMServer() as server:
        server.script(model_reply(invoice=MERGED_INVOICE.replace(dropped, kept_as)))
        out = dream_with_model(paths, server)
    assert out.exit_code == 0, out.output
    invoice, _ = read_note(paths.memory / "invoice.md")
    assert (invoice.description, invoice.body) == (invoice_merge.keep.description, deterministic)
    assert (f"done: merged into memory/invoice.md (updated; deterministic merge: the model's text drops "
            f"{dropped.lstrip('€')})") in out.output
    tea, _ = read_note(paths.memory / "tea.md")
    assert tea.body == MERGED_TEA + "\n"  # the other merge kept every fact: the model's text stands


def test_when_the_caps_refuse_the_model_run_every_merge_is_deterministic_and_says_why(paths: AgentPaths) -> None:
    with_invoices(paths)
    with FakeLLMServer() as server:
        server.script(model_reply())
        out = dream_with_model(paths, server, cost="cost:\n  per_run_usd: 0.000001\n")
        requests = server.requests
    assert out.exit_code == 0, out.output
    assert requests == []  # refused before any spend
    assert "warning: no model text: refused: per_run cost cap" in out.output
    assert "done: merged into memory/tea.md (updated; deterministic merge: no model text: refused: " in out.output
    tea, _ = read_note(paths.memory / "tea.md")
    assert tea.body == f"{TEA}\n\n{TEA_AGAIN.split('. ')[1]}\n"
    [obs] = paths.memory.glob("journal-*.md")
    assert "written by the model" not in obs.read_text()
    assert "done: no aliases for 2 note(s): no model text: refused: per_run cost cap" in out.output
    model_run, dream_run = run_records(paths)
    assert (model_run["status"], model_run["error.type"], dream_run["status"]) == ("refused", "cap_per_run", "ok")


def test_dry_run_with_model_makes_no_model_call_and_says_which_merges_the_model_would_write(
        paths: AgentPaths) -> None:
    hours = "Studio hours are Monday to Thursday from nine to five, Friday mornings only, closed for the holidays."
    note(paths, "hours", "Studio hours", hours)
    note(paths, "hours-copy", "Studio hours", hours)
    before = files_snapshot(paths.root)
    with FakeLLMServer() as server:
        server.script(model_reply())
        out = dream_with_model(paths, server, "--dry-run")
        requests = server.requests
    assert out.exit_code == 0, out.output
    assert requests == []
    assert ("plan: merge into memory/tea.md: memory/tea-again.md (near-duplicate, 0.85), memory/tea-copy.md "
            "(duplicate) — written by the model") in out.output
    assert ("plan: merge into memory/hours.md: memory/hours-copy.md (duplicate) — deterministic (exact duplicates "
            "need no rewrite)") in out.output
    assert "with a model-written summary" in out.output
    # tea-project and rate: the hours and tea notes are merged, and merged notes get their aliases from the merge.
    assert "plan: add model-written aliases to 2 note(s) that have none: " in out.output
    del before["model.md"]  # the test's own edit, pointing the agent at the fake server
    after = files_snapshot(paths.root)
    del after["model.md"]
    assert after == before and not paths.state.exists()


def test_a_secret_the_model_echoes_into_a_merge_is_redacted_before_the_note_is_written(paths: AgentPaths) -> None:
    value = "hunter2-Zq7pV9wX3"
    env = store_secret(paths.root.parent, "WIFI", value)
    with_invoices(paths)
    with FakeLLMServer() as server:
        server.script(model_reply(tea=f"{MERGED_TEA} The studio wifi key is {value}."))
        out = dream_with_model(paths, server, env=env)
    assert out.exit_code == 0, out.output
    tea, _ = read_note(paths.memory / "tea.md")
    assert tea.body.endswith("The studio wifi key is [REDACTED:secret:WIFI].\n")
    assert files_containing(paths.root, value.encode()) == []


def test_a_reply_cut_off_before_its_end_marker_loses_only_its_last_section(paths: AgentPaths) -> None:
    with_invoices(paths)
    planned = dream.plan(AgentFolder(paths.root), today=TODAY)
    cut = model_reply().text.split("=== end ===")[0]
    written = dream_model.read_reply(planned, cut, str)
    assert written.summary and list(written.merges) == [1]
    assert written.fallbacks == {2: "the model's reply has no complete section for it, or an empty one"}


RATE_ALIASES = "fee, price per day, what I charge, tariff"


def aliases_reply(lines: str) -> Reply:
    """A reply with the journal summary, the tea merge (kept as the deterministic text) and an aliases section."""
    return Reply(f"=== summary ===\nA quiet week.\n=== merge 1 ===\ndescription: Green tea habits\n\n{TEA}\n"
                 f"{TEA_AGAIN}\n=== aliases ===\n{lines}\n=== end ===\n")


def test_with_model_notes_without_aliases_get_the_models_aliases_and_are_found_by_them(paths: AgentPaths) -> None:
    planned = dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True)
    # Not the notes that have aliases, are merged or expired: only tea-project and rate, in one task.
    assert sorted(n.path.name for n in planned.unaliased) == ["rate.md", "tea-project.md"]
    number = 1 + [n.path.name for n in planned.unaliased].index("rate.md")
    before = (paths.memory / "rate.md").read_bytes()
    with FakeLLMServer() as server:
        server.script(aliases_reply(f"{number}: {RATE_ALIASES}"))
        out = dream_with_model(paths, server)
        [request] = server.requests
    assert out.exit_code == 0, out.output
    assert "=== aliases ===" in json.dumps(request.body) and "### Note 1: Tea habit" not in json.dumps(request.body)
    rate, _ = read_note(paths.memory / "rate.md")
    assert rate.aliases == ["fee", "price per day", "what I charge", "tariff"]
    assert rate.body == "€780 a day.\n" and rate.updated is None  # only the aliases change
    assert "done: added aliases to memory/rate.md: fee, price per day, what I charge, tariff" in out.output
    assert "done: no aliases for 1 note(s): the model wrote none for them" in out.output
    _, dream_run = run_records(paths)
    assert "memory/rate.md" in dream_run["notes_written"]
    assert (paths.versions / "rate" / f"{dream_run['run_id']}.md").read_bytes() == before
    with Catalog(paths) as catalog:
        catalog.sync()
        assert search(catalog, "tariff", expand=False)[0].path.endswith("rate.md")


def test_aliases_in_the_reply_are_cleaned_like_a_captures(paths: AgentPaths) -> None:
    planned = dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True)
    first, second = planned.unaliased
    section = ("- **1:** \"fee\", FEE, [REDACTED:secret:X], " + "x" * 101 + f", {first.name}, a, b, c, d, e, f, g, h, "
               "i, j, k, l\n2) Tariff;  day   price\n7: out of range\n2: a second line for note 2 is ignored\n")
    written = dream_model.read_reply(planned, f"=== aliases ===\n{section}=== end ===\n", str)
    assert written.aliases[first.path] == ["fee", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
    assert written.aliases[second.path] == ["Tariff", "day price"]
    cut = dream_model.read_reply(planned, f"=== aliases ===\n{section}", str)  # no marker after it: cut off
    assert cut.aliases == {} and cut.aliases_missing == "the model's reply has no complete aliases section"


def test_a_note_the_model_gave_no_aliases_waits_behind_the_others_until_it_changes(
        paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dream, "ALIAS_BATCH", 1)
    [first] = dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True).unaliased
    with FakeLLMServer() as server:
        server.script(aliases_reply("1:"))  # asked, and gave none
        out = dream_with_model(paths, server)
    assert out.exit_code == 0, out.output
    assert "done: no aliases for 1 note(s): the model wrote none for them" in out.output
    [second] = dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True).unaliased
    assert second.path != first.path  # the next dream asks about another note
    with FakeLLMServer() as server:
        server.script(Reply(f"=== aliases ===\n1: {RATE_ALIASES}\n=== end ===\n"))
        assert dream_with_model(paths, server).exit_code == 0
    assert read_note(second.path)[0].aliases  # that one got its aliases; only the declined one is left
    assert [n.path for n in dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True).unaliased] == [first.path]
    monkeypatch.setattr(dream, "ALIAS_BATCH", 2)
    note(paths, "spare", "Spare key", "With the neighbours at number 12.")
    # Undated both, the longer note would come first; the declined one waits until it is edited.
    order = [n.path.name for n in dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True).unaliased]
    assert order == ["spare.md", first.path.name]
    first.path.write_text(first.path.read_text() + "Edited.\n")
    order = [n.path.name for n in dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True).unaliased]
    assert order == [first.path.name, "spare.md"]


def test_a_refused_dream_does_not_count_its_notes_as_asked(paths: AgentPaths) -> None:
    before = [n.path for n in dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True).unaliased]
    with FakeLLMServer() as server:
        server.script(aliases_reply("1:\n2:"))
        out = dream_with_model(paths, server, cost="cost:\n  per_run_usd: 0.000001\n")
    assert "no aliases for 2 note(s): no model text: refused" in out.output
    assert not paths.aliases_asked.exists()
    assert [n.path for n in dream.plan(AgentFolder(paths.root), today=TODAY, aliases=True).unaliased] == before


RATE_TEXT = ("The day rate for all new quotes and all new client projects is {} per day, billed monthly in arrears. "
             "Half days are billed at 55 percent of the day rate. Travel days count as half days.")


# Either note may be the one kept (the most recently updated); either may carry the mark.
@pytest.mark.parametrize("marked_on,old_updated,new_updated", [
    ("new", "2026-11-15", "2026-11-10"), ("old", "2026-11-10", "2026-11-15"), ("both", "2026-11-15", "2026-11-10")])
def test_a_note_is_never_merged_with_the_note_it_supersedes(tmp_path: Path, marked_on: str, old_updated: str,
                                                            new_updated: str) -> None:
    paths = agent(tmp_path)
    old_mark = 'superseded_by: "[[day-rate-2027]]"\n' if marked_on in ("old", "both") else ""
    new_mark = "supersedes: day-rate-2026\n" if marked_on in ("new", "both") else ""
    old = note(paths, "day-rate-2026", "Day rate 2026", RATE_TEXT.format("€720"), type="decision",
               extra=f"updated: {old_updated}\n{old_mark}")
    new = note(paths, "day-rate-2027", "Day rate 2027", RATE_TEXT.format("€780"), type="decision",
               extra=f"updated: {new_updated}\n{new_mark}")
    before = old.read_bytes(), new.read_bytes()
    folder = AgentFolder(paths.root)
    planned = dream.plan(folder, today=TODAY, aliases=True)
    assert planned.merges == [] and [n.stem for n in planned.unaliased] == ["day-rate-2027"]
    dream.apply(folder, planned, tag="dream-s1")
    assert (old.read_bytes(), new.read_bytes()) == before


VENDOR = ("Our print vendor is Tryckeriet AB in Lund, contact Ola at ola@tryckeriet.se, net 30 days, "
          "minimum order 500 sheets.")


def test_notes_sharing_a_stem_in_different_folders_each_keep_their_own_version_and_stay_recalled(
        tmp_path: Path) -> None:
    paths = agent(tmp_path)
    originals = {}
    for i, (rel, vendor_id, updated) in enumerate([("vendor", "ID-.", "2026-11-03"), ("2025/vendor", "ID-2025",
                                                   "2026-11-02"), ("2026/vendor", "ID-2026", "2026-11-01")]):
        originals[vendor_id] = note(paths, rel, f"Print vendor {i}", VENDOR, type="reference",
                                    extra=f"updated: {updated}\nvendor_id: {vendor_id}\n").read_bytes()
    out = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a"])
    assert out.exit_code == 0, out.output
    kept, _ = read_note(paths.memory / "vendor.md")
    assert kept.meta.get("supersedes") is None and kept.meta["vendor_id"] == "ID-."
    # Every removed note and the kept note's previous version: each in a file of its own, none overwritten.
    saved = sorted(p.read_bytes() for p in (paths.versions / "vendor").iterdir())
    assert saved == sorted(originals.values())
    with Catalog(paths) as cat:
        cat.sync()
        assert [c["path"] for c in cat.candidates(today=TODAY.isoformat(), limit=10)] == ["memory/vendor.md"]


def test_a_note_listing_its_own_stem_in_supersedes_is_still_recalled(tmp_path: Path) -> None:
    paths = agent(tmp_path)  # as an earlier dream could leave it
    note(paths, "vendor", "Print vendor", VENDOR, extra="supersedes: [vendor, Print vendor]\n")
    with Catalog(paths) as cat:
        cat.sync()
        assert [c["path"] for c in cat.candidates(today=TODAY.isoformat(), limit=10)] == ["memory/vendor.md"]


def interrupt_at(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """Ctrl-C at one point of a dream: the second merge's write, INDEX's rewrite (after the merges and the
    archiving), the observation note (the last step), or the index sync after every step."""
    def ctrl_c(*args: object, **kwargs: object) -> NoReturn:
        raise KeyboardInterrupt
    if where == "second merge":
        update, calls = NoteStore.update, []

        def second_ctrl_c(self: NoteStore, *args: Any, **kwargs: Any) -> NoteWrite:
            calls.append(1)
            return ctrl_c() if len(calls) == 2 else update(self, *args, **kwargs)
        monkeypatch.setattr(NoteStore, "update", second_ctrl_c)
        return
    owner, name = {"index rewrite": (AgentFolder, "rewrite_index"), "observation note": (AgentFolder, "save_note"),
                   "index sync": (Catalog, "sync")}[where]
    monkeypatch.setattr(owner, name, ctrl_c)


def test_an_interrupted_dream_exits_130_and_is_logged_as_interrupted_with_the_steps_it_did(
        paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    interrupt_at(monkeypatch, "index rewrite")
    out = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a"])
    assert out.exit_code == 130 and "Traceback" not in out.output and "interrupted" in out.output
    [record] = run_records(paths)
    assert (record["status"], record["work_item"]) == ("interrupted", "consolidate memory (dream)")
    assert "merged into memory/tea.md (updated)" in record["dream"] and any(
        step.startswith("archived memory/voucher.md") for step in record["dream"])
    entries = [e for p in sorted(paths.journal.rglob("*.md")) for e in parse_day(p.read_text())]
    assert [e.status for e in entries if "consolidate memory" in " ".join(e.fields.get("asked", []))] == [
        "interrupted"]


def memory_files(paths: AgentPaths) -> dict[str, bytes]:
    return {p.relative_to(paths.root).as_posix(): p.read_bytes() for p in paths.memory.rglob("*.md")
            if p != paths.index_md}


@pytest.mark.parametrize("where", ["second merge", "index rewrite", "observation note", "index sync"])
def test_an_interrupted_dreams_record_lists_exactly_the_notes_it_wrote_and_removed_before_the_interrupt(
        paths: AgentPaths, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    with_invoices(paths)
    before = memory_files(paths)
    interrupt_at(monkeypatch, where)
    assert CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a"]).exit_code == 130
    after = memory_files(paths)
    [record] = run_records(paths)
    written = sorted(rel for rel, data in after.items() if before.get(rel) != data)
    assert written and sorted(record["notes_written"]) == written
    moved = sorted(step.split()[1] for step in record["dream"] if step.startswith(("removed ", "archived ")))
    assert moved == sorted(set(before) - set(after))


def test_a_dream_stopped_before_rewriting_index_leaves_that_to_the_next_dream(
        paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    AgentFolder(paths.root).rewrite_index()
    interrupt_at(monkeypatch, "index rewrite")
    vault = ["--vault", str(paths.root.parent)]
    assert CliRunner().invoke(main, [*vault, "dream", "a"]).exit_code == 130
    monkeypatch.undo()
    assert "[[tea-copy|Tea]]" in paths.index_md.read_text()  # a note the dream removed
    planned = CliRunner().invoke(main, [*vault, "dream", "a", "--dry-run"])
    assert planned.output.splitlines()[0] == "plan: rewrite memory/INDEX.md"  # the merges and archiving were done
    assert CliRunner().invoke(main, [*vault, "dream", "a"]).exit_code == 0
    index = paths.index_md.read_text()
    assert "tea-copy" not in index and "voucher" not in index and "[[tea|Prefers green tea]]" in index
    assert dream.plan(AgentFolder(paths.root), today=TODAY).empty


def test_the_journal_summary_links_a_note_merged_away_by_the_same_dream_as_the_note_that_absorbed_it(
        paths: AgentPaths) -> None:
    journal_entry(paths, dt.datetime.combine(TODAY - dt.timedelta(days=1), dt.time(15)), "r4", "Note the tea",
                  did="Noted", notes=["tea-copy", "tea-again", "tea", "rate"])
    assert CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a"]).exit_code == 0
    [obs] = paths.memory.glob("journal-*.md")
    touched = obs.read_text().split("## Notes touched\n\n")[1].splitlines()[0]
    assert touched == "[[rate]], [[tea]]"


def test_dream_says_which_files_it_passes_over_one_warning_line_each_with_the_fix(paths: AgentPaths) -> None:
    for stem, expires in [("slash", "31/10/2026"), ("words", "next week"), ("number", "20261001"),
                          ("trailing", "2020-10-01garbage")]:
        note(paths, f"flyer-{stem}", f"Flyer {stem}", f"Flyer printed for the {stem} sale.", type="project",
             extra=f"expires: {expires}\n")
    (paths.memory / "broken.md").write_text("---\ntype: user\nname: [unclosed\n---\nMust not be lost.\n")
    (paths.memory / "latin1.md").write_bytes(b"---\ntype: user\nname: Latin1\n---\nCaf\xe9 au lait at 9.\n")
    day = paths.journal_day(TODAY - dt.timedelta(days=3))
    day.parent.mkdir(parents=True, exist_ok=True)
    day.write_bytes(b"---\ndate: x\n---\n## 08:00:00 \xe2\x80\x94 cli \xc2\xb7 run r0 \xc2\xb7 ok\n\n- **Asked:** caf\xe9\n")
    out = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a"])
    assert out.exit_code == 0, out.output
    warnings = sorted(line for line in out.output.splitlines() if line.startswith("warning: "))
    fix = "(fix: write dates as YYYY-MM-DD)"
    assert warnings == sorted([
        f"warning: memory/flyer-slash.md: 'expires' is not a date: '31/10/2026' {fix}",
        f"warning: memory/flyer-words.md: 'expires' is not a date: 'next week' {fix}",
        f"warning: memory/flyer-number.md: 'expires' is not a date: 20261001 {fix}",
        f"warning: memory/flyer-trailing.md: 'expires' is not a date: '2020-10-01garbage' {fix}",
        "warning: memory/broken.md: invalid YAML in frontmatter at line 4: did not find expected ',' or ']' "
        "(fix: correct the YAML between the '---' lines)",
        "warning: memory/latin1.md: not UTF-8 text; skipped (fix: save the note as UTF-8)",
        f"warning: {day.relative_to(paths.root).as_posix()}: not UTF-8 text; this day is not summarized "
        "(fix: save the journal day as UTF-8)"])
    assert (paths.memory / "flyer-trailing.md").exists()  # never read as 2020-10-01, so never archived
    [record] = run_records(paths)
    assert sorted(f"warning: {w}" for w in record["warnings"]) == warnings  # logged too, for a scheduled dream
    doctor = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "doctor", "a"])
    assert "memory/flyer-trailing.md: 'expires' is not a date: '2020-10-01garbage'" in doctor.output


def test_a_dream_record_has_the_time_the_dream_took(paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    apply = dream.apply

    def slow_apply(*args: object, **kwargs: object) -> list[str]:
        time.sleep(0.3)
        return apply(*args, **kwargs)
    monkeypatch.setattr(dream, "apply", slow_apply)
    assert CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a"]).exit_code == 0
    [record] = run_records(paths)
    assert record["latency_ms"] >= 300


def test_a_dream_waits_for_a_run_only_as_long_as_wait_says_and_its_busy_entry_says_it_did_not_run(
        paths: AgentPaths) -> None:
    with AgentFolder(paths.root).run_lock(timeout=1, run_id="holder", on_killed=lambda owner: None):
        t0 = time.monotonic()
        out = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a", "--wait", "0.2"])
        assert time.monotonic() - t0 < 10  # not the default 30 s
    assert out.exit_code == 75 and "agent busy" in out.output and "done: nothing to do" not in out.output
    [record] = run_records(paths)
    assert record["status"] == "busy" and record["dream"] == []
    [entry] = [e for e in parse_day(paths.journal_day(TODAY).read_text()) if e.status == "busy"]
    assert "did" not in entry.fields and "agent busy" in entry.fields["problem"][0]


def test_a_dream_with_nothing_to_do_is_logged_too(tmp_path: Path) -> None:
    paths = agent(tmp_path)
    out = CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a"])
    assert out.exit_code == 0 and "done: nothing to do" in out.output
    [record] = run_records(paths)
    assert (record["status"], record["dream"], record["notes_written"]) == ("ok", [], [])


def test_dream_plans_once_and_shows_the_plan_it_carries_out(paths: AgentPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    plan = dream.plan

    def counted(*args: object, **kwargs: object) -> dream.DreamPlan:
        made.append(1)
        return plan(*args, **kwargs)
    monkeypatch.setattr(dream, "plan", counted)
    assert CliRunner().invoke(main, ["--vault", str(paths.root.parent), "dream", "a"]).exit_code == 0
    assert len(made) == 1


def client_note(i: int) -> str:
    cities, names = ["Lund", "Malmö", "Oslo", "Bergen", "Riga"], ["Anna", "Bo", "Carl", "Dina", "Erik", "Fia"]
    return (f"Client {i} is a design company based in {cities[i % 5]}. Their main contact is {names[i % 6]} "
            f"{i}, reachable at c{i}@example.com. They pay invoices within {10 * (i % 3 + 1)} days and prefer to "
            f"be billed in euros every month.")


def test_notes_written_from_one_template_are_not_all_compared_with_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_agent.memory import similar

    # 1,000 client notes from one sentence template, each once more as an exact copy; and two ordinary
    # near-duplicates, which must still be found.
    items: list[tuple[object, str]] = [(("client", i, copy), client_note(i)) for i in range(1000) for copy in "ab"]
    items += [("tea", TEA), ("tea-again", TEA_AGAIN), ("invoice", INVOICE)]
    compared = []
    jaccard = similar.jaccard
    monkeypatch.setattr(similar, "jaccard", lambda a, b: compared.append(1) or jaccard(a, b))
    groups = sorted(sorted(map(str, g)) for g in similar.clusters(similar.similar_pairs(items, dream.NEAR_DUPLICATE)))
    assert groups == sorted([[str(("client", i, "a")), str(("client", i, "b"))] for i in range(1000)]
                            + [["tea", "tea-again"]])
    assert len(compared) < 5 * len(items)  # every pair would be ~2 million
