"""memory/INDEX.md: the routing layer, one line per note under a section per type.

Only the lines between the two markers are the runtime's; everything a person
writes outside them is kept byte for byte. An INDEX without markers (a new
file, or one from atomic-agents-stack) gets the managed block appended.
Format: spec/index.md.
"""

from __future__ import annotations

from pathlib import Path

from .atomic import atomic_write
from .layout import NOTE_TYPES
from .notes import Note

BEGIN = "<!-- vault-agent:index:begin (lines up to the end marker are maintained by vault-agent) -->"
END = "<!-- vault-agent:index:end -->"
_BEGIN_PREFIX = "<!-- vault-agent:index:begin"
SECTION_TITLES = {
    "user": "User",
    "feedback": "Feedback",
    "project": "Projects",
    "decision": "Decisions",
    "reference": "Reference",
}
OTHER = "Other"


def index_line(note: Note) -> str:
    label = note.name.replace("|", "/").replace("]", ")").replace("[", "(")
    link = f"[[{note.stem}]]" if label == note.stem else f"[[{note.stem}|{label}]]"
    description = note.description.replace("\n", " ")
    return f"- {link} — {description}" if description else f"- {link}"


def render_block(notes: list[Note]) -> str:
    by_type: dict[str, list[Note]] = {}
    for note in notes:
        key = note.type if note.type in NOTE_TYPES else OTHER
        by_type.setdefault(key, []).append(note)
    parts = [BEGIN]
    for key in (*NOTE_TYPES, OTHER):
        group = by_type.get(key)
        if not group:
            continue
        group.sort(key=lambda n: (n.name.casefold(), n.stem))
        parts.append("")
        parts.append(f"## {SECTION_TITLES.get(key, OTHER)}")
        parts.append("")
        parts.extend(index_line(n) for n in group)
    parts.append("")
    parts.append(END)
    return "\n".join(parts)


def split_managed(text: str) -> tuple[str, str | None, str]:
    """(before, managed block or None, after). Hand text lives in before/after."""
    start = text.find(_BEGIN_PREFIX)
    if start == -1:
        return text, None, ""
    end = text.find(END, start)
    if end == -1:
        # A person deleted the end marker: treat the rest of the file as managed
        # rather than guessing where their text resumes.
        return text[:start], text[start:], ""
    end += len(END)
    return text[:start], text[start:end], text[end:]


def render_index(existing: str | None, notes: list[Note], title: str = "Memory index") -> str:
    block = render_block(notes)
    if existing is None or not existing.strip():
        return f"# {title}\n\nOne line per note, by type. Text outside the markers is yours to edit.\n\n{block}\n"
    before, managed, after = split_managed(existing)
    if managed is None:
        sep = "" if before.endswith("\n\n") else ("\n" if before.endswith("\n") else "\n\n")
        return f"{before}{sep}{block}\n"
    return f"{before}{block}{after}"


def write_index(path: Path, notes: list[Note], title: str = "Memory index", *, inside: Path | None = None) -> bool:
    """Rewrite the managed block; returns False when nothing changed (no write at all). `inside`: atomic_write's."""
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    return atomic_write(path, render_index(existing, notes, title), inside=inside)


def indexed_stems(text: str) -> set[str]:
    """Stems linked from the managed block (for doctor's consistency check)."""
    _, managed, _ = split_managed(text)
    stems: set[str] = set()
    for line in (managed or "").splitlines():
        if line.startswith("- [["):
            stems.add(line[4:line.index("]]")].split("|")[0] if "]]" in line else "")
    stems.discard("")
    return stems
