"""What each indexed file contributes to search: one document per note, wiki page or skill, one per journal entry.

The search index (spec/index-db.md) covers memory/**/*.md (except
memory/INDEX.md), wiki/**/*.md, journal/**/*.md, skills/<name>/SKILL.md and
archive/**/*.md (notes that `dream` retired). Dot-files and dot-folders are
never indexed: temp files and derived state live there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..vault import journal
from ..vault.notes import Note, parse_note

KINDS = ("memory", "wiki", "journal", "skill", "archive")
SOURCE_FOLDERS = {"memory": "memory", "wiki": "wiki", "journal": "journal", "skills": "skill", "archive": "archive"}
_LINK = re.compile(r"\[\[([^\]|#\n]+)(?:#[^\]|\n]*)?(?:\|[^\]\n]*)?\]\]")
_H1 = re.compile(r"^# +(.+?)\s*$", re.M)
_NAMED_FILES = ("INDEX.md", "SKILL.md")  # the file names kind_of treats apart from their folder


@dataclass
class Doc:
    """One searchable unit. `type` is the note type for memory notes, else the kind."""

    kind: str
    type: str
    stem: str
    name: str
    description: str
    body: str
    anchor: str = ""  # which part of the file: a journal entry's run id; "" for a whole file
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # other words for it: indexed with the tags
    links: list[str] = field(default_factory=list)  # stems this document links to with [[...]]
    dates: list[str] = field(default_factory=list)  # ISO dates: created, updated, expires, the journal day
    updated: str | None = None
    expires: str | None = None
    pinned: bool = False


def kind_of(rel: str) -> str | None:
    """The kind of an agent-relative POSIX path, or None when it is not indexed."""
    if not rel.endswith(".md"):
        return None
    parts = rel.split("/")
    if len(parts) < 2 or any(p.startswith(".") for p in parts):
        return None
    kind = SOURCE_FOLDERS.get(parts[0])
    if kind == "memory" and rel == "memory/INDEX.md":  # names kind_in must know: _NAMED_FILES
        return None
    if kind == "skill" and (len(parts) != 3 or parts[2] != "SKILL.md"):
        return None
    return kind


def kind_in(prefix: str) -> Callable[[str], str | None]:
    """kind_of for the file names of one folder (`prefix`: its agent-relative path and "/").

    The folder is judged once: past that, only a leading dot, the .md suffix
    and the two names kind_of singles out tell files apart. At 10k notes,
    judging each path from scratch costs a fifth of a sync that finds nothing
    changed.
    """
    usual = kind_of(f"{prefix}_.md")

    def kind(name: str) -> str | None:
        if name[:1] == "." or not name.endswith(".md"):
            return None
        return kind_of(prefix + name) if name in _NAMED_FILES else usual

    return kind


def wikilinks(text: str) -> list[str]:
    """Stems linked with [[stem]], [[folder/stem|label]] or [[stem#heading]], in order, without repeats."""
    out: dict[str, None] = {}
    for m in _LINK.finditer(text):
        target = m.group(1).strip().rsplit("/", 1)[-1]
        if target.endswith(".md"):
            target = target[:-3]
        if target:
            out[target] = None
    return list(out)


def note_doc(note: Note, kind: str = "memory", summary: dict[str, Any] | None = None) -> Doc:
    """`summary`: note.summary() when the caller has it already (it computes the dates once)."""
    info = summary if summary is not None else note.summary()
    dates = [d for d in (info["created"], info["updated"], info["expires"]) if d]
    return Doc(kind=kind, type=info["type"] if kind == "memory" else kind, stem=note.stem, name=info["name"],
               description=info["description"], body=note.body, tags=info["tags"], aliases=info["aliases"],
               links=wikilinks(note.body),
               dates=list(dict.fromkeys(dates)), updated=info["updated"] or info["created"],
               expires=info["expires"], pinned=info["pinned"])


def page_doc(path: Path, data: bytes, kind: str) -> Doc | None:
    """A wiki page, skill or archived note; None when the bytes are not usable text."""
    note, _ = parse_note(path, data)
    if note is None:
        return None
    doc = note_doc(note, kind)
    if kind == "skill":
        # Skills are named by their folder (Agent Skills format), not by the file SKILL.md.
        doc.stem = path.parent.name
        if "name" not in note.meta:
            doc.name = path.parent.name
    elif "name" not in note.meta:
        heading = _H1.search(note.body)
        if heading:
            doc.name = heading.group(1)
    return doc


def journal_docs(path: Path, data: bytes) -> list[Doc]:
    """One document per run entry of a day file; a day file without entries is one document."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    day = path.stem
    entries = journal.parse_day(text)
    if not entries:
        doc = page_doc(path, data, "journal")
        if doc is not None:
            doc.dates, doc.updated = [day], day
        return [doc] if doc is not None else []
    docs = []
    for e in entries:
        asked = " ".join(e.fields.get("asked", []))
        docs.append(Doc(kind="journal", type="journal", stem=day, anchor=e.run_id,
                        name=f"{day} {e.time} {e.trigger} run {e.run_id} ({e.status})", description=asked,
                        body=e.text, links=wikilinks(e.text), dates=[day], updated=day))
    return docs
