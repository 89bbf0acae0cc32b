"""Generate a synthetic agent folder with N realistic notes (for benchmarks)."""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
from pathlib import Path

TYPES = ("user", "feedback", "project", "decision", "reference")
TOPICS = ["invoice", "newsletter", "client", "roadmap", "hiring", "budget", "design", "research", "launch",
          "pricing", "onboarding", "retention", "contract", "workshop", "portfolio", "travel", "tax",
          "calendar", "podcast", "website", "branding", "analytics", "support", "security", "backup"]
WORDS = ("the a of to and in for on with by from about weekly monthly quarterly review plan draft send "
         "check update decide prefer avoid keep track follow share schedule confirm prepare summarize "
         "email call meeting deadline owner priority risk scope estimate feedback approval").split()


def note_text(i: int, rng: random.Random) -> tuple[str, str]:
    t = TYPES[i % len(TYPES)]
    topic = rng.choice(TOPICS)
    name = f"{topic.title()} {t} note {i}"
    created = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(300))
    body = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(40, 160)))
    text = (f"---\ntype: {t}\nname: {name}\ndescription: {topic} {' '.join(rng.choice(WORDS) for _ in range(8))}\n"
            f"tags: [{topic}, {rng.choice(TOPICS)}]\ncreated: {created}\nupdated: {created}\n"
            f"confidence: {rng.choice(['0.6', '0.8', '0.9'])}\nsources:\n  - journal/{created:%Y-%m}/{created}.md\n"
            f"---\n{body}\n\nSee also [[{topic}-{t}-note-{max(i - 1, 0)}]].\n")
    return f"{topic}-{t}-note-{i}", text


def generate(vault: Path, name: str, n: int, seed: int = 7) -> Path:
    """Create vault/name with the sample agent's config and n generated notes (replacing any old one)."""
    from vault_agent.vault.index_md import render_index
    from vault_agent.vault.notes import Note, parse_note
    from vault_agent.vault.templates import create_agent

    root = vault / name
    if root.exists():
        shutil.rmtree(root)
    vault.mkdir(parents=True, exist_ok=True)
    create_agent(vault, name, "sample")
    memory = root / "memory"
    for old in memory.glob("*.md"):
        old.unlink()
    rng = random.Random(seed)
    notes: list[Note] = []
    for i in range(n):
        stem, text = note_text(i, rng)
        path = memory / f"{stem}.md"
        path.write_text(text, encoding="utf-8")
        note, _ = parse_note(path, text.encode())
        notes.append(note)
    (memory / "INDEX.md").write_text(render_index(None, notes, f"{name} — memory index"), encoding="utf-8")
    return root


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("vault", type=Path)
    ap.add_argument("name")
    ap.add_argument("n", type=int)
    args = ap.parse_args()
    print(generate(args.vault, args.name, args.n))
