"""Recall: which notes a run sees in full, packed into the recall budget, and the bounded INDEX view.

`Recaller` is the plug point. `SearchRecaller` (the default) ranks notes and
wiki pages by relevance to the work item (search.py: BM25 with related
terms, boosts, and notes [[linked]] from the best hits), after the pinned
notes; `RecentRecaller` (pinned, then most recently updated) remains for
agents that want it. Both read the derived index, never all notes, so a run
costs the same at 10 or 100k notes.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from itertools import chain
from typing import Callable, Iterator, Protocol

from ..context.data import inert
from ..context.tokens import estimate_tokens, truncate_to_tokens
from ..vault.index_md import SECTION_TITLES
from ..vault.layout import NOTE_TYPES, AgentPaths
from ..vault.notes import read_note
from .catalog import Catalog
from .embed import Embedder, EmbeddingError, embedder_for, nearest
from .search import Hit, relevant


@dataclass
class RecalledNote:
    path: str  # relative to the agent folder
    stem: str
    name: str
    type: str
    text: str  # what the model sees (possibly cut to fit)
    truncated: bool = False


# Whether the agent may read a path (relative to its folder): tools.md's read grant. Recall and the INDEX
# view show the model only what memory_read would, so a note outside the grant, or a link in memory/ to a
# file elsewhere, never reaches the prompt.
Readable = Callable[[str], bool]


def _anything(rel: str) -> bool:
    return True


class Recaller(Protocol):
    def recall(self, work_item: str, budget_tokens: int) -> list[RecalledNote]:
        """Notes relevant to the work item whose rendered size fits `budget_tokens`."""
        ...


def render_note(stem: str, name: str, note_type: str, body: str) -> str:
    return f'<note link="[[{stem}]]" type="{note_type}" name="{_attr(name)}">\n{inert(body.strip())}\n</note>'


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

    def __init__(self, paths: AgentPaths, catalog: Catalog, *, max_candidates: int = 40,
                 readable: Readable = _anything) -> None:
        self.paths = paths
        self.catalog = catalog
        self.max_candidates = max_candidates
        self.readable = readable

    def recall(self, work_item: str, budget_tokens: int) -> list[RecalledNote]:
        today = _dt.date.today().isoformat()
        rows = self.catalog.candidates(today=today, limit=self.max_candidates, readable=self.readable)
        candidates = []
        for row in rows:
            note, _ = read_note(self.paths.root / row["path"], inside=self.paths.root)
            if note is not None:
                candidates.append((row["path"], note.stem, note.name, note.type, note.body))
        return pack(candidates, budget_tokens)


QUERY_EMBED_TIMEOUT_S = 5.0  # a run waits at most this long for an embeddings server before going on without


class SearchRecaller:
    """Pinned notes (up to a share of the budget), then the notes and wiki pages most relevant to the work item.

    Expired and superseded notes are left out. When the work item matches
    nothing (a vague "what next?"), the most recently updated notes fill in,
    as RecentRecaller would.
    """

    def __init__(self, paths: AgentPaths, catalog: Catalog, *, kinds: tuple[str, ...] = ("memory", "wiki"),
                 pinned_share: float = 0.34, max_candidates: int = 100, today: _dt.date | None = None,
                 embedder: Embedder | None | bool = True, readable: Readable = _anything,
                 every_word: bool = False) -> None:
        """`embedder`: True reads model.md's `embeddings:` (spec/index-db.md); None or False: BM25 only.
        `every_word`: the work item recall is given is the model's search words (search.relevant).

        `max_candidates`: enough that the budget fills even when the best notes
        are short, so the prompt's size does not depend on how many notes exist.
        """
        self.paths = paths
        self.catalog = catalog
        self.kinds = kinds
        self.pinned_share = pinned_share
        self.max_candidates = max_candidates
        self.today = today
        self.readable = readable
        self.every_word = every_word
        self.embedder: Embedder | None = embedder_for(paths, timeout_s=QUERY_EMBED_TIMEOUT_S) \
            if embedder is True else embedder or None

    def recall(self, work_item: str, budget_tokens: int) -> list[RecalledNote]:
        today = self.today or _dt.date.today()
        pinned = [r for r in self.catalog.candidates(today=today.isoformat(), limit=self.max_candidates,
                                                     readable=self.readable) if r["pinned"]]
        out = pack([c for c in (self._candidate(r["path"]) for r in pinned) if c],
                   int(budget_tokens * self.pinned_share)) if pinned else []
        used = sum(estimate_tokens(r.text) + 1 for r in out)
        taken = {r.path for r in out}
        hits = relevant(self.catalog, work_item, today=today, kinds=self.kinds, limit=self.max_candidates,
                        semantic=self._semantic(work_item), readable=self.readable, every_word=self.every_word)
        paths = [h.path for h in hits] or [r["path"] for r in self.catalog.candidates(
            today=today.isoformat(), limit=self.max_candidates, readable=self.readable)]
        rest = [c for c in (self._candidate(p) for p in dict.fromkeys(paths) if p not in taken) if c]
        return out + pack(rest, budget_tokens - used)

    def _semantic(self, work_item: str) -> list[int] | None:
        embedder = self.embedder
        if embedder is None or not work_item.strip() or self.catalog.conn.execute(
                "SELECT 1 FROM vectors WHERE model = ? LIMIT 1", (embedder.model,)).fetchone() is None:
            return None
        try:
            vector = embedder.embed([work_item])[0]
            return nearest(self.catalog, embedder.model, vector, kinds=self.kinds, limit=self.max_candidates,
                           readable=self.readable)
        except EmbeddingError:
            return None  # the endpoint is down: this run recalls by BM25 alone

    def _candidate(self, rel: str) -> tuple[str, str, str, str, str] | None:
        """What to pack for `rel`, a path already checked against the read grant."""
        # The index holds each document's text as of this run's sync: no file is opened here.
        row = self.catalog.conn.execute(
            "SELECT d.stem, d.name, d.type, t.body FROM docs d JOIN docs_text t ON t.id = d.id "
            "WHERE d.path = ? AND d.anchor = '' LIMIT 1", (rel,)).fetchone()
        return (rel, *row) if row else None


def index_view(catalog: Catalog, budget_tokens: int, *, work_item: str = "", per_section: int = 12,
               today: _dt.date | None = None, readable: Readable = _anything, every_word: bool = False) -> str:
    """A bounded view of INDEX: the sections most relevant to the work item first, and a count of the rest.

    Each section shown lists the notes that match the work item, then pinned
    and recently updated ones, as far as its share of the budget goes; the
    sections that do not fit are named with their note counts. The model
    reads any note with memory_search / memory_read. Like recall, it lists
    only live notes the agent may read. `every_word`: as for SearchRecaller.
    """
    counts = catalog.count_by_type()
    if not counts:
        return "(no notes yet)"
    today = today or _dt.date.today()
    hits = relevant(catalog, work_item, today=today, kinds=("memory",), limit=4 * per_section,
                    readable=readable, every_word=every_word) if work_item.strip() else []
    by_type: dict[str, list[Hit]] = {}
    for hit in hits:
        by_type.setdefault(hit.type, []).append(hit)
    order = [t for t in dict.fromkeys(h.type for h in hits) if counts.get(t)]
    order += [t for t in NOTE_TYPES if counts.get(t) and t not in order]
    order += sorted(t for t in counts if t not in order)
    share = max(48, budget_tokens // max(1, min(len(order), 3)))
    sections: list[str] = []
    used = 0
    left_out: list[str] = []
    for note_type in order:
        title = SECTION_TITLES.get(note_type, note_type.title())
        room = min(share, budget_tokens - used - 24)  # 24: the closing line about the sections left out
        lines = ((stem, name, description, pinned) for path, stem, name, description, pinned
                 in catalog.index_lines(note_type, today=today.isoformat()) if readable(path))
        section = _section(note_type, title, counts[note_type], by_type.get(note_type, []), lines,
                           per_section, room)
        if section is None:
            left_out.append(f"{title} ({counts[note_type]:,})")
            continue
        sections.append(section)
        used += estimate_tokens(section) + 2
    if left_out:
        sections.append(_not_shown(left_out, budget_tokens - used))
    return truncate_to_tokens("\n\n".join(sections), budget_tokens)


def _not_shown(titles: list[str], room: int) -> str:
    """The closing line: as many of the sections left out as fit by name, then how many more."""
    def line(named: list[str]) -> str:
        more = len(titles) - len(named)
        listed = ", ".join(named) + (f" and {more:,} more" if named and more else "")
        return f"Not shown: {listed or f'{more:,} sections'} — use memory_search / memory_read"

    named: list[str] = []
    for title in titles:
        if estimate_tokens(line([*named, title])) > room:
            break
        named.append(title)
    return line(named)


def _section(note_type: str, title: str, count: int, hits: list[Hit], recent: Iterator[tuple[str, str, str, bool]],
             per_section: int, room: int) -> str | None:
    head = f"## {title} ({count:,})"
    used = estimate_tokens(head) + 16  # 16: the "… N more" line
    if used + 8 > room:
        return None
    lines = [head]
    seen: set[str] = set()
    for stem, name, description, pinned in chain(((h.stem, h.name, h.description, h.pinned) for h in hits), recent):
        if len(seen) >= per_section:
            break
        if stem in seen:
            continue
        line = f"- [[{stem}]] {name}{' (pinned)' if pinned else ''} — {description}"
        cost = estimate_tokens(line) + 1
        if used + cost > room:
            break
        lines.append(line)
        seen.add(stem)
        used += cost
    if count > len(seen):
        lines.append(f"- … {count - len(seen):,} more {note_type} note(s)")
    return "\n".join(lines)
