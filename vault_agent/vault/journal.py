"""The journal: one Markdown entry per run, appended to journal/YYYY-MM/YYYY-MM-DD.md.

Format: spec/journal.md. The day file is rewritten atomically with the new
entry at its end (day files are small), so a crash never leaves half an entry.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import frontmatter
from .atomic import atomic_write

_HEADING = re.compile(r"^## (\d\d:\d\d(?::\d\d)?) — (\S+) · run (\S+) · (\S+)\s*$", re.M)
_FIELD = re.compile(r"^- \*\*([A-Za-z ]+):\*\* ?(.*)$")


@dataclass
class JournalEntry:
    """What a person reads about one run."""

    ts: _dt.datetime
    run_id: str
    status: str
    trigger: str = "cli"
    asked: str = ""
    did: str = ""
    notes: list[str] = field(default_factory=list)  # note stems, rendered as wikilinks
    cost: str = ""
    problems: list[str] = field(default_factory=list)

    def render(self) -> str:
        trigger = "-".join(self.trigger.split()) or "cli"
        lines = [f"## {self.ts:%H:%M:%S} — {trigger} · run {self.run_id} · {self.status}", ""]
        lines.append(f"- **Asked:** {one_line(self.asked)}")
        if self.did:
            lines.append(f"- **Did:** {one_line(self.did)}")
        if self.notes:
            lines.append(f"- **Notes:** {', '.join(f'[[{s}]]' for s in self.notes)}")
        if self.cost:
            lines.append(f"- **Cost:** {self.cost}")
        for problem in self.problems:
            lines.append(f"- **Problem:** {one_line(problem)}")
        return "\n".join(lines) + "\n"


def one_line(text: str, limit: int = 600) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def day_header(day: _dt.date, agent: str) -> str:
    # Names spelled out here: strftime's %A/%B follow the process locale.
    title = f"{_DAYS[day.weekday()]} {day.day:02d} {_MONTHS[day.month - 1]} {day.year}"
    return frontmatter.render({"date": day, "agent": agent}, f"# {title}\n")


def append_entry(path: Path, entry: JournalEntry, agent: str) -> None:
    """Append under the agent's write lock (the caller holds it)."""
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = day_header(entry.ts.date(), agent)
    if not existing.endswith("\n"):
        existing += "\n"
    atomic_write(path, f"{existing}\n{entry.render()}")


@dataclass
class ParsedEntry:
    time: str
    trigger: str
    run_id: str
    status: str
    fields: dict[str, list[str]]
    text: str


def parse_day(text: str) -> list[ParsedEntry]:
    """The entries of a day file, in order; text between headings belongs to the entry above."""
    matches = list(_HEADING.finditer(text))
    entries: list[ParsedEntry] = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        chunk = text[m.start():end].rstrip() + "\n"
        fields: dict[str, list[str]] = {}
        for line in chunk.splitlines()[1:]:
            f = _FIELD.match(line)
            if f:
                fields.setdefault(f.group(1).lower(), []).append(f.group(2))
        entries.append(ParsedEntry(m.group(1), m.group(2), m.group(3), m.group(4), fields, chunk))
    return entries
