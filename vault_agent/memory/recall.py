"""Recall: which notes a run sees in full, packed into the recall budget, and the bounded INDEX view.

`Recaller` is the plug point. `RecentRecaller` (pinned, then most recently
updated) is the default until search-based recall replaces it; both read the
derived catalog, never all notes, so a run costs the same at 10 or 100k notes.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Protocol

from ..context.tokens import estimate_tokens, truncate_to_tokens
from ..vault.index_md import SECTION_TITLES
from ..vault.layout import NOTE_TYPES, AgentPaths
from ..vault.notes import read_note
from .catalog import Catalog


@dataclass
class RecalledNote:
    path: str  # relative to the agent folder
    stem: str
    name: str
    type: str
    text: str  # what the model sees (possibly cut to fit)
    truncated: bool = False


class Recaller(Protocol):
    def recall(self, work_item: str, budget_tokens: int) -> list[RecalledNote]:
        """Notes relevant to the work item whose rendered size fits `budget_tokens`."""
        ...


def render_note(stem: str, name: str, note_type: str, body: str) -> str:
    return f'<note link="[[{stem}]]" type="{note_type}" name="{_attr(name)}">\n{body.strip()}\n</note>'


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def pack(candidates: list[tuple[str, str, str, str, str]], budget_tokens: int,
         per_note_share: float = 0.34) -> list[RecalledNote]:
    """Fill the budget in candidate order; one note may take at most a third of it (cut, and marked so)."""
    out: list[RecalledNote] = []
    used = 0
    per_note = max(64, int(budget_tokens * per_note_share))
    for path, stem, name, note_type, body in candidates:
        text = render_note(stem, name, note_type, body)
        truncated = False
        if estimate_tokens(text) > per_note:
            head = render_note(stem, name, note_type, "")
            text = render_note(stem, name, note_type,
                               truncate_to_tokens(body, per_note - estimate_tokens(head) - 2,
                                                  marker=f"\n[… cut; read it all with memory_read {stem}]"))
            truncated = True
        cost = estimate_tokens(text) + 1  # the joining newline
        if used + cost > budget_tokens:
            continue  # a smaller note further down may still fit
        used += cost
        out.append(RecalledNote(path, stem, name, note_type, text, truncated))
    return out


class RecentRecaller:
    """Pinned notes first, then the most recently updated; expired and superseded notes left out."""

    def __init__(self, paths: AgentPaths, catalog: Catalog, *, max_candidates: int = 40) -> None:
        self.paths = paths
        self.catalog = catalog
        self.max_candidates = max_candidates

    def recall(self, work_item: str, budget_tokens: int) -> list[RecalledNote]:
        today = _dt.date.today().isoformat()
        rows = self.catalog.candidates(today=today, limit=self.max_candidates)
        candidates = []
        for row in rows:
            note, _ = read_note(self.paths.root / row["path"])
            if note is not None:
                candidates.append((row["path"], note.stem, note.name, note.type, note.body))
        return pack(candidates, budget_tokens)


def index_view(catalog: Catalog, budget_tokens: int, *, per_type: int = 12) -> str:
    """A bounded view of INDEX: per type the pinned and newest lines, and how many more there are."""
    counts = catalog.count_by_type()
    if not counts:
        return "(no notes yet)"
    types = [t for t in NOTE_TYPES if counts.get(t)] + sorted(t for t in counts if t not in NOTE_TYPES)
    share = max(24, budget_tokens // max(1, len(types)))
    sections = []
    for note_type in types:
        title = SECTION_TITLES.get(note_type, note_type.title())
        lines = [f"## {title} ({counts[note_type]})"]
        used = estimate_tokens(lines[0])
        shown = 0
        for stem, name, description, pinned in catalog.index_lines(note_type, per_type):
            line = f"- [[{stem}]] {name}{' (pinned)' if pinned else ''} — {description}"
            cost = estimate_tokens(line) + 1
            if used + cost > share - 12:
                break
            lines.append(line)
            used += cost
            shown += 1
        rest = counts[note_type] - shown
        if rest > 0:
            lines.append(f"- … {rest} more {note_type} note(s): use memory_search / memory_read")
        sections.append("\n".join(lines))
    return truncate_to_tokens("\n\n".join(sections), budget_tokens)
