"""Typed memory notes: parse, list, create and update `memory/*.md` without losing anything.

Format: spec/note.md. Reading never raises for one bad file; it reports a
Finding and goes on. Writing keeps unknown keys in their order, never rewrites
unchanged content, keeps the replaced version under .vault-agent/versions/, and
never overwrites a person's concurrent edit.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import unicodedata
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from ..errors import ConfigError, EditConflict, Finding
from . import frontmatter
from .atomic import atomic_write, content_hash
from .layout import NOTE_TYPES, AgentPaths
from .reading import (
    Beneath,
    FileTooLarge,
    FolderLink,
    LinkOutside,
    NotRegularFile,
    read_inside,
    read_regular,
    shown,
    utf8_name,
)

MAX_NOTE_BYTES = 1024 * 1024
CANONICAL_KEYS = ("type", "name", "description", "tags", "aliases", "created", "updated", "confidence",
                  "sources", "pinned", "supersedes", "expires")
# atomic-agents-stack spellings of the same properties (spec/compat-atomic-agents-stack.md).
ALIASES = {"created": ("captured",), "updated": ("last_seen",), "expires": ("expires_at",)}
_DATE_KEYS = frozenset(("created", "updated", "expires", *(a for v in ALIASES.values() for a in v)))
_TYPE_PREFIX = re.compile(r"^(user|feedback|project|decision|reference)[_-]")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


@dataclass
class Note:
    """One memory note as read from disk (or about to be written)."""

    path: Path
    meta: dict[str, Any]
    body: str
    hash: str | None = None  # sha256 of the bytes read; None for a note not yet on disk

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def link(self) -> str:
        return f"[[{self.stem}]]"

    @property
    def type(self) -> str:
        value = self.meta.get("type")
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
        m = _TYPE_PREFIX.match(self.stem)
        return m.group(1) if m else "reference"

    @property
    def name(self) -> str:
        value = self.meta.get("name")
        return str(value).strip() if value not in (None, "") else self.stem

    @property
    def description(self) -> str:
        value = self.meta.get("description")
        if value not in (None, ""):
            return " ".join(str(value).split())
        for line in self.body.splitlines():
            line = line.strip().lstrip("#").strip()
            if line:
                return line[:160]
        return ""

    @property
    def tags(self) -> list[str]:
        return _str_list(self.meta.get("tags"), split_words=True)

    @property
    def aliases(self) -> list[str]:
        """Other words for the note (Obsidian's `aliases`); a text value is split on commas, as Obsidian did."""
        value = self.meta.get("aliases")
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        return [a for a in _str_list(value) if a]

    @property
    def sources(self) -> list[str]:
        return _str_list(self.meta.get("sources"))

    @property
    def pinned(self) -> bool:
        return self.meta.get("pinned") is True

    @property
    def supersedes(self) -> list[str]:
        """Stems or names of the notes this one replaces; never its own (a note cannot supersede itself)."""
        own = self._own_keys()
        return [ref for ref in link_refs(self.meta.get("supersedes")) if link_key(ref) not in own]

    @property
    def superseded_by(self) -> str | None:
        """What replaced this note, when the note says so itself (atomic-agents-stack marks the old note):
        the replacement's stem or name, "" when the mark names none (`superseded_by: true`); None when the
        note is not marked, or names itself (a note cannot supersede itself)."""
        value = self.meta.get("superseded_by")
        if value in (None, "", [], False):
            return None
        refs = link_refs(value)
        ref = refs[0] if refs else ""
        return None if ref and link_key(ref) in self._own_keys() else ref

    def _own_keys(self) -> set[str]:
        return {link_key(self.stem), link_key(self.name)}

    @property
    def confidence(self) -> Any:
        return self.meta.get("confidence")

    def date(self, key: str) -> _dt.date | None:
        """created / updated / expires, honouring the atomic-agents-stack spellings."""
        for k in (key, *ALIASES.get(key, ())):
            value = as_date(self.meta.get(k))
            if value is not None:
                return value
        return None

    @property
    def created(self) -> _dt.date | None:
        return self.date("created")

    @property
    def updated(self) -> _dt.date | None:
        return self.date("updated")

    @property
    def expires(self) -> _dt.date | None:
        return self.date("expires")

    def is_expired(self, today: _dt.date) -> bool:
        expires = self.expires
        return expires is not None and expires < today

    def render(self) -> str:
        return frontmatter.render(self.meta, self.body)

    def summary(self) -> dict[str, Any]:
        """The JSON-able listing form used by `vault-agent notes --json`."""
        return {
            "path": self.path.as_posix(),
            "link": self.link,
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "tags": self.tags,
            "aliases": self.aliases,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
            "confidence": self.confidence if isinstance(self.confidence, (int, float, str)) else None,
            "pinned": self.pinned,
            "expires": _iso(self.expires),
        }


def _iso(value: _dt.date | None) -> str | None:
    return value.isoformat() if value else None


# YYYY-MM-DD, optionally with a time (atomic-agents-stack writes timestamps); nothing else may follow the date.
_DATE_TEXT = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def as_date(value: Any) -> _dt.date | None:
    """A date property's value as a date; None when it is not one (`2026-10-01garbage` and `20261001` are not)."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str) and (m := _DATE_TEXT.fullmatch(value.strip())):
        try:
            return _dt.date.fromisoformat(m.group(1))
        except ValueError:
            return None
    return None


def date_findings(note: Note) -> list[Finding]:
    """A warning per date property (created, updated, expires and their other spellings) that is not a date."""
    return [Finding("warning", note.path, f"'{k}' is not a date: {value!r}", "write dates as YYYY-MM-DD")
            for k, value in note.meta.items()
            if k in _DATE_KEYS and value not in (None, "") and as_date(value) is None]


def unique_folded(items: Iterable[str]) -> list[str]:
    """Each item once, compared case-folded; the first spelling is kept."""
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.casefold(), item)
    return list(seen.values())


def _str_list(value: Any, *, split_words: bool = False) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip().lstrip("#") if split_words else str(v).strip() for v in value if v is not None]
    text = str(value)
    if split_words:
        return [t.lstrip("#") for t in re.split(r"[,\s]+", text) if t.strip("#")]
    return [text.strip()] if text.strip() else []


def link_refs(value: Any) -> list[str]:
    """The stems or names a link property holds: `x`, `"[[x|label#heading]]"`, or a list of them. YAML
    reads an unquoted `[[x]]` as a list in a list, which counts the same."""
    if isinstance(value, (list, tuple)):
        return [ref for v in value for ref in link_refs(v)]
    if value is None or isinstance(value, bool):
        return []
    ref = str(value).strip().strip("[]").split("|")[0].split("#")[0].strip()
    return [ref] if ref else []


def link_key(text: str) -> str:
    """How a [[link]], a stem or a name is compared: NFC and case-folded, as Obsidian resolves links and as
    macOS and Windows compare file names ("Café"/"cafe\u0301"/"CAFÉ" are one)."""
    return unicodedata.normalize("NFC", text).casefold()


@dataclass(frozen=True)
class Superseded:
    """Which notes others have replaced: named (stem or name) in another's `supersedes`, or marked
    `superseded_by` themselves (atomic-agents-stack marks the old note). Recall, the INDEX view and dream
    leave them out; a search or a read by name still finds them, marked as not current."""

    replacers: dict[str, str]  # link_key of a stem or name some note supersedes -> that note's path (first by path)
    marked: dict[str, str]  # path -> its own `superseded_by` ("" names none)

    def replacer(self, stem: str, name: str | None) -> str | None:
        """The path of the note that says it replaces the note with this stem or name, if any."""
        return self.replacers.get(link_key(stem)) or (self.replacers.get(link_key(name)) if name else None)

    def covers(self, path: str, stem: str, name: str | None) -> bool:
        return path in self.marked or self.replacer(stem, name) is not None


def superseded(notes: Iterable[tuple[str, list[str], str | None]]) -> Superseded:
    """Superseded of the notes given as (path, Note.supersedes, Note.superseded_by), in path order."""
    replacers: dict[str, str] = {}
    marked: dict[str, str] = {}
    for path, supersedes, superseded_by in notes:
        for ref in supersedes:
            replacers.setdefault(link_key(ref), path)
        if superseded_by is not None:
            marked[path] = superseded_by
    return Superseded(replacers, marked)


# --- reading ----------------------------------------------------------------

def parse_note(path: Path, data: bytes) -> tuple[Note | None, list[Finding]]:
    """Parse one note's bytes. Returns (note or None when unusable, findings)."""
    findings: list[Finding] = []
    if b"\x00" in data[:8192]:
        return None, [Finding("warning", path, "binary file in memory/; skipped",
                              "move attachments out of memory/ (notes are Markdown text)")]
    try:
        # utf-8-sig: the byte-order mark some Windows editors write first is not part of the text.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, [Finding("warning", path, "not UTF-8 text; skipped", "save the note as UTF-8")]
    try:
        fm, body = frontmatter.split(text)
        meta = frontmatter.parse(fm) if fm is not None else {}
    except ConfigError as exc:
        return None, [Finding("error", path, exc.message, exc.fix)]
    note = Note(path=path, meta=meta, body=body, hash=content_hash(data))
    if fm is None:
        findings.append(Finding("warning", path, "note has no frontmatter; using the file name as its name",
                                "add '---' properties with type, name and description"))
    raw_type = meta.get("type")
    if fm is not None and raw_type is None:
        findings.append(Finding("warning", path, f"note has no 'type'; treated as {note.type}",
                                f"add 'type:' ({' | '.join(NOTE_TYPES)})"))
    elif raw_type is not None and note.type not in NOTE_TYPES:
        findings.append(Finding("warning", path, f"unknown note type {raw_type!r}; listed under Other",
                                f"use one of {', '.join(NOTE_TYPES)}"))
    findings.extend(date_findings(note))
    return note, findings


def read_note(path: Path, *, max_bytes: int = MAX_NOTE_BYTES, inside: Path | None = None,
              beneath: Beneath | None = None) -> tuple[Note | None, list[Finding]]:
    """The note at `path`, or None and why. `inside`: the agent folder, whose rule for links (link_inside)
    applies; `beneath`: a Beneath of it to open through (read_inside's), for many notes in a row."""
    try:
        data = read_inside(inside, path, max_bytes, beneath) if inside is not None else read_regular(path, max_bytes)
    except FolderLink:
        return None, [Finding("warning", path, "is inside a linked folder, which is never followed; left out",
                              "move the folder here instead of linking to it")]
    except LinkOutside:
        return None, [Finding("warning", path, "links to a file that is not a Markdown file inside the agent folder; "
                              "left out", "copy the note here instead of linking to it")]
    except FileTooLarge as exc:
        return None, [Finding("warning", path, f"note is {exc.size / 1_048_576:.1f} MiB, over the "
                              f"{max_bytes // 1024} KiB limit; skipped", "split it into smaller notes or move it to wiki/")]
    except NotRegularFile:
        return None, [Finding("warning", path, "not a regular file (a pipe, socket or device); skipped",
                              "remove it or put a Markdown file in its place")]
    except OSError as exc:
        return None, [Finding("error", path, f"cannot read ({exc.strerror or exc})", "check permissions")]
    return parse_note(path, data)


def bad_name(path: Path) -> Finding:
    """The finding for a file or folder whose name is not UTF-8 (utf8_name): nothing can list it by name."""
    return Finding("warning", Path(shown(path)), "the name is not UTF-8; left out", "rename it")


def iter_note_paths(memory: Path, unreadable: list[Path] | None = None,
                    unnamed: list[Path] | None = None) -> Iterator[Path]:
    """memory/**/*.md except memory/INDEX.md, skipping dot-files and dot-folders (temp files, derived state).

    A folder that cannot be listed is skipped and, given `unreadable`, added to it; a note or folder whose
    name is not UTF-8 (utf8_name), to `unnamed`.
    """
    yield from _note_paths(memory, memory, unreadable, unnamed)


def _note_paths(folder: Path, memory: Path, unreadable: list[Path] | None,
                unnamed: list[Path] | None) -> Iterator[Path]:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    except OSError:
        if unreadable is not None:
            unreadable.append(folder)
        return
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        if not is_dir and (not entry.name.endswith(".md") or (entry.name == "INDEX.md" and folder == memory)):
            continue
        if not utf8_name(entry.name):
            if unnamed is not None:
                unnamed.append(Path(entry.path))
        elif is_dir:
            yield from _note_paths(Path(entry.path), memory, unreadable, unnamed)
        else:
            yield Path(entry.path)


# --- file names -------------------------------------------------------------

def slugify(name: str, note_type: str = "note", max_bytes: int = 120) -> str:
    """A file stem that keeps letters of every script (日本語, é) and is safe on every OS."""
    text = unicodedata.normalize("NFC", name).strip().lower()
    slug = re.sub(r"[^\w]+", "-", text).strip("-_")
    while len(slug.encode("utf-8")) > max_bytes:
        slug = slug[:-1]
    slug = slug.rstrip("-_")
    if not slug:
        slug = f"{note_type}-{sha1(name.encode('utf-8')).hexdigest()[:8]}"
    if slug in _RESERVED:
        slug += "-note"
    return slug


def _taken_stems(folder: Path) -> set[str]:
    # Compare case- and normalization-folded: macOS and Windows treat
    # "Café.md"/"cafe\u0301.md"/"CAFÉ.md" as one file. Sub-folders count too:
    # a [[stem]] link must name one note.
    taken: set[str] = set()
    for _, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        taken.update(link_key(n[:-3]) for n in files if n.endswith(".md"))
    return taken


def unique_note_path(memory: Path, name: str, note_type: str) -> Path:
    base = slugify(name, note_type)
    taken = _taken_stems(memory) | {"index"}
    stem, n = base, 1
    while stem.casefold() in taken:
        n += 1
        stem = f"{base}-{n}"
    return memory / f"{stem}.md"


# --- the store --------------------------------------------------------------

@dataclass
class NoteWrite:
    """What a write did: created, updated, unchanged, or conflict (a person's edit won)."""

    action: str
    note: Note
    version_path: Path | None = None
    conflict_path: Path | None = None


@dataclass
class NoteStore:
    """The notes of one agent folder."""

    paths: AgentPaths
    max_bytes: int = MAX_NOTE_BYTES
    findings: list[Finding] = field(default_factory=list)

    def scan(self) -> list[Note]:
        """Every readable note; problems go to self.findings (replaced on each scan)."""
        notes: list[Note] = []
        findings: list[Finding] = []
        unreadable: list[Path] = []
        unnamed: list[Path] = []
        with Beneath(self.paths.root) as beneath:
            for path in iter_note_paths(self.paths.memory, unreadable, unnamed):
                note, problems = read_note(path, max_bytes=self.max_bytes, inside=self.paths.root, beneath=beneath)
                findings.extend(problems)
                if note is not None:
                    notes.append(note)
        findings.extend(Finding("error", folder, "cannot list this folder; its notes are left out",
                                "check its permissions") for folder in unreadable)
        findings.extend(bad_name(path) for path in unnamed)
        self.findings = findings
        return notes

    def find(self, note_type: str, name: str, notes: list[Note] | None = None) -> Note | None:
        key = (note_type.lower(), link_key(name))
        for note in notes if notes is not None else self.scan():
            if (note.type, link_key(note.name)) == key:
                return note
        return None

    def create(self, meta: dict[str, Any], body: str) -> NoteWrite:
        meta = order_meta(meta)
        path = unique_note_path(self.paths.memory, str(meta.get("name", "")), str(meta.get("type", "note")))
        note = Note(path=path, meta=meta, body=body)
        atomic_write(path, note.render(), expected_hash=None, inside=self.paths.root)
        note.hash = content_hash(note.render().encode("utf-8"))
        return NoteWrite("created", note)

    def update(self, old: Note, meta: dict[str, Any], body: str, *, version_tag: str) -> NoteWrite:
        """Replace `old` with new properties and body; the replaced file is kept as a version.

        Unknown keys of the old note survive in their order unless `meta` sets
        them. If the file changed on disk since `old` was read, the person's
        edit stays and the new content goes to .vault-agent/conflicts/.
        """
        merged = dict(old.meta)
        merged.update(meta)
        note = Note(path=old.path, meta=merged, body=body)
        rendered = note.render()
        if rendered == old.render() and old.hash is not None:
            note.hash = old.hash
            return NoteWrite("unchanged", note)
        version_path = new_version_path(self.paths, old.stem, version_tag)
        try:
            current = old.path.read_bytes()
        except FileNotFoundError:
            current = None
        if current is not None and content_hash(current) != old.hash:
            return self._conflict(note, rendered, version_tag)
        if current is not None:
            atomic_write(version_path, current)
        try:
            atomic_write(old.path, rendered, expected_hash=old.hash if current is not None else None,
                         inside=self.paths.root)
        except EditConflict:
            return self._conflict(note, rendered, version_tag)
        note.hash = content_hash(rendered.encode("utf-8"))
        return NoteWrite("updated", note, version_path=version_path if current is not None else None)

    def _conflict(self, note: Note, rendered: str, version_tag: str) -> NoteWrite:
        conflict_path = self.paths.conflicts / f"{note.stem}.{version_tag}.md"
        atomic_write(conflict_path, rendered)
        return NoteWrite("conflict", note, conflict_path=conflict_path)


def new_version_path(paths: AgentPaths, stem: str, tag: str) -> Path:
    """Where to keep a replaced or removed note: .vault-agent/versions/<stem>/<tag>.md, else <tag>-2.md, ...

    Notes in different folders may share a stem, and one run may replace several: a version file is never
    overwritten, or the text it kept would be lost.
    """
    folder = paths.versions / stem
    candidate, n = folder / f"{tag}.md", 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{tag}-{n}.md"
    return candidate


def order_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Canonical keys first in spec order, then every other key in its given order."""
    ordered = {k: meta[k] for k in CANONICAL_KEYS if k in meta}
    ordered.update((k, v) for k, v in meta.items() if k not in ordered)
    return ordered


class IndexEntry(Protocol):
    """What INDEX needs of a note."""

    stem: str
    name: str
    type: str
    description: str


class NoteDirectory(Protocol):
    """Finds notes by type and name and lists INDEX entries, for writers."""

    def find(self, note_type: str, name: str) -> Note | None: ...

    def entries(self) -> list[Any]: ...

    def saved(self, note: Note) -> None:
        """Tell the directory a note was written, so entries() includes it."""


@dataclass
class ScanDirectory:
    """A directory over notes already read (or a fresh scan): fine for small vaults and tests."""

    store: NoteStore
    notes: list[Note]

    def find(self, note_type: str, name: str) -> Note | None:
        return self.store.find(note_type, name, self.notes)

    def entries(self) -> list[Any]:
        return self.notes

    def saved(self, note: Note) -> None:
        self.notes = [n for n in self.notes if n.path != note.path] + [note]
