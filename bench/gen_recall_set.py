"""Generate a labelled recall set: an agent with N distractor notes plus facts whose questions use other words.

How the questions are phrased: every fact in bench/recall_facts.py is a note
(type, name, description, body) and a question a person would ask to get at
it, written in other words than the note ("Who looks after my teeth?" for a
note about a dentist). `check_overlap` enforces it with the index's own
tokenizer (FTS5 porter, the question's stopwords removed): a question may
share at most one stemmed word with its note, so BM25 alone cannot find the
note by its words; the bench reports how many share none. Distractors are
bench/gen_agent.py's notes; every third gets a body of everyday sentences
(SENTENCES) so the questions' vocabulary also turns up in notes that do not
answer them.

With `aliases=True` every fact note carries its aliases from
recall_aliases.json (what the agent adds when it remembers a note), and every
distractor 3 to 8 aliases drawn at random from the same pool, so aliases alone
do not single out the facts.

The facts are about four people, each in a vault of their own (`VAULTS`):
Maya (the dev and held-out sets up to HELDOUT3), Jonas (HELDOUT4, with
recall_aliases_jonas.json), Priya (HELDOUT5, recall_aliases_priya.json) and
Aisha (HELDOUT6, recall_aliases_aisha.json).

    python bench/gen_recall_set.py VAULT NAME N [--aliases] [--person maya|jonas|priya|aisha]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_agent import generate  # noqa: E402
from recall_facts import DEV, DEV2, DEV3, HELDOUT, HELDOUT2, HELDOUT3, HELDOUT4, HELDOUT5, HELDOUT6, Fact  # noqa: E402

Sets = tuple[tuple[str, list[Fact]], ...]
# One vault per person the facts are about: Maya's sets, and Jonas's (whose facts partly echo hers).
SETS: Sets = (("dev", DEV + DEV2 + DEV3), ("heldout", HELDOUT), ("heldout2", HELDOUT2), ("heldout3", HELDOUT3))
JONAS: Sets = (("heldout4", HELDOUT4),)
PRIYA: Sets = (("heldout5", HELDOUT5),)
AISHA: Sets = (("heldout6", HELDOUT6),)
VAULTS: dict[str, tuple[Sets, str]] = {"maya": (SETS, "recall_aliases.json"),
                                       "jonas": (JONAS, "recall_aliases_jonas.json"),
                                       "priya": (PRIYA, "recall_aliases_priya.json"),
                                       "aisha": (AISHA, "recall_aliases_aisha.json")}
ALL = [fact for sets, _ in VAULTS.values() for _, facts in sets for fact in facts]


def aliases_of(person: str) -> dict[str, list[str]]:
    """Each of the person's facts' aliases, by "type/name"."""
    file = Path(__file__).resolve().parent / VAULTS[person][1]
    return json.loads(file.read_text(encoding="utf-8"))


# The rounds of the agent's own memory_search calls (see recall_facts.py), by the vault size they were made at.
SEARCH_ROUNDS = {1000: "recall_searches.json", 100_000: "recall_searches_100k.json"}


def searches_of(made_at: int = 1000) -> dict[str, dict[str, dict]]:
    """The agent's own memory_search calls per set and question, made at `made_at` notes:
    {"searches": [query, ...], "named": the stem it judged answers, or None}."""
    file = Path(__file__).resolve().parent / SEARCH_ROUNDS[made_at]
    return json.loads(file.read_text(encoding="utf-8"))


def recall_words_of() -> dict[str, dict[str, str]]:
    """Per set and question, the model's reply to recall_words.INSTRUCTION (see recall_facts.py)."""
    file = Path(__file__).resolve().parent / "recall_words.json"
    return json.loads(file.read_text(encoding="utf-8"))


SENTENCES = """\
Water the plants before leaving on Thursday.
The team call moved to Tuesday morning.
Order more paper for the studio printer.
Send the signed contract back by the end of the month.
Check whether the parking permit needs renewing.
The library books are due next week.
Ask the neighbours to feed the fish over the long weekend.
Renew the domain for the old portfolio site or let it lapse.
The quarterly numbers look better than last year.
Book a table for six for the team dinner.
Pick up the dry cleaning on the way home.
The new intern starts on a Monday and needs a laptop.
Update the shared calendar with the school holidays.
Back up the photo archive to the external drive.
The heating engineer comes between 8 and 12.
Remember the recycling goes out on Wednesday evening.
Call the bank about the new card.
The conference hotel is a ten minute walk from the venue.
Draft a thank-you note for the workshop hosts.
Print the boarding passes the night before.
The plumber said the kitchen tap needs a new washer.
Collect receipts for the expense report.
The client prefers video calls over phone calls.
Move the sketching session to the afternoon.
Ask the printer for paper samples.
Share the mood board with the team before the review.
The lease on the storage unit ends in spring.
Buy a present for the neighbours' housewarming.
The museum is closed on Mondays.
Set up a reminder for the car service.
Compare two quotes for the new office chairs.
The grocery delivery arrives Saturday morning.
File the warranty for the new monitor.
The podcast interview was recorded in one take.
Prepare questions for the parent-teacher meeting.
The train was delayed by forty minutes.
Try the new lunch place around the corner.
Cancel the trial before it turns into a paid plan.
The running club meets on Sunday at nine.
Keep the brand colours consistent across the slides.
""".strip().splitlines()


def _porter(conn: sqlite3.Connection, text: str) -> set[str]:
    conn.execute("DELETE FROM t")
    conn.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (text,))
    return {row[0] for row in conn.execute("SELECT term FROM v")}


def check_overlap(facts: list[Fact]) -> list[int]:
    """Stemmed words each question shares with its note; raises when a question shares more than one."""
    from vault_agent.memory.query import terms

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'row')")
    shared = []
    for note_type, name, description, body, question in facts:
        asked = _porter(conn, " ".join(t.text for t in terms(question, expand=False)))
        common = asked & _porter(conn, f"{note_type} {name} {description} {body}")
        if len(common) > 1:
            raise ValueError(f"question {question!r} shares {sorted(common)} with its note {name!r}")
        shared.append(len(common))
    return shared


def fact_text(fact: Fact, updated: dt.date, aliases: list[str] | None = None) -> str:
    note_type, name, description, body, _ = fact
    also = f"aliases: {json.dumps(aliases, ensure_ascii=False)}\n" if aliases else ""
    return (f"---\ntype: {note_type}\nname: {name}\ndescription: {description}\n{also}created: {updated}\n"
            f"updated: {updated}\n---\n{body}\n")


def generate_set(vault: Path, name: str, n: int, seed: int = 11, aliases: bool = False,
                 person: str = "maya") -> tuple[Path, list[dict[str, str]]]:
    """The agent folder and its labels: [{"question", "stem", "set"}] (set: dev | heldout | heldout2 | ...)."""
    from vault_agent.vault.notes import slugify

    root = generate(vault, name, n, seed=seed)
    rng = random.Random(seed)
    sets = VAULTS[person][0]
    given_aliases = aliases_of(person) if aliases else {}
    pool = [a for _, facts in sets for fact in facts for a in given_aliases.get(f"{fact[0]}/{fact[1]}", ())]
    pick = random.Random(seed + 1)  # its own stream: with or without aliases, the notes are otherwise the same
    memory = root / "memory"
    for path in sorted(memory.glob("*-note-*.md")):
        rewrite = int(path.stem.rsplit("-", 1)[1]) % 3 == 0
        if rewrite or aliases:
            head, _, body = path.read_text(encoding="utf-8").partition("\n---\n")
            if rewrite:
                body = " ".join(rng.sample(SENTENCES, rng.randrange(3, 7))) + "\n"
            if aliases:
                head += f"\naliases: {json.dumps(pick.sample(pool, pick.randrange(3, 9)), ensure_ascii=False)}"
            path.write_text(f"{head}\n---\n{body}", encoding="utf-8")
    labels = []
    for label, facts in sets:
        for fact in facts:
            stem = slugify(fact[1], fact[0])
            updated = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(300))
            given = given_aliases[f"{fact[0]}/{fact[1]}"] if aliases else None
            (memory / f"{stem}.md").write_text(fact_text(fact, updated, given), encoding="utf-8")
            labels.append({"question": fact[4], "stem": stem, "set": label})
    return root, labels


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vault", type=Path)
    ap.add_argument("name")
    ap.add_argument("n", type=int)
    ap.add_argument("--aliases", action="store_true", help="notes carry aliases (recall_aliases*.json)")
    ap.add_argument("--person", choices=sorted(VAULTS), default="maya", help="whose facts the vault holds")
    args = ap.parse_args()
    shared = check_overlap([fact for _, facts in VAULTS[args.person][0] for fact in facts])
    root, labels = generate_set(args.vault, args.name, args.n, aliases=args.aliases, person=args.person)
    (root.parent / f"{args.name}.labels.json").write_text(json.dumps(labels, indent=1, ensure_ascii=False))
    print(f"{root}: {args.n} distractors, {len(labels)} labelled questions "
          f"({shared.count(0)} share no stemmed word with their note, {shared.count(1)} share one)")
