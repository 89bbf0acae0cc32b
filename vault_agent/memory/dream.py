"""Consolidation (`vault-agent dream`): merge duplicate notes, retire expired ones, summarize recent journal days.

Every step is deterministic and needs no model; spec/dream.md describes them.
A dream with a model also has it write `aliases` for notes that have none
(search finds a note by them), a step no deterministic rule can do.
`plan()` only reads files (a dry run changes nothing, not even the derived
index); `apply()` carries a plan out under the agent's write lock, keeping
every replaced or removed note under .vault-agent/versions/ and never
overwriting a file a person changed after the plan read it. Model text is
optional: the caller gets it (ops/consolidate.py runs the agent itself on
`dream_model.prompt`, so the agent's cost caps apply), checks it with
`dream_model.read_reply` and hands the resulting `ModelText` to `apply`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Finding
from ..vault import index_md, journal
from ..vault.atomic import atomic_write, content_hash, read_state
from ..vault.folder import AgentFolder
from ..vault.notes import Note, NoteWrite, date_findings, link_key, new_version_path, superseded, unique_folded
from ..vault.reading import FolderLink, no_folder_link
from .similar import clusters, similar_pairs

NEAR_DUPLICATE = 0.8  # Jaccard of 3-word shingles of description + body
# Notes per dream the model writes aliases for: the prompt stays bounded; later dreams do the rest.
ALIAS_BATCH = 20
SUMMARY_DAYS = 7
OBSERVATION_TAG = "observation"
_COST = re.compile(r"\$(\d+(?:\.\d+)?)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_SHOWN_UNALIASED = 5


@dataclass
class Merge:
    keep: Note
    drop: list[Note]
    similarity: list[float]  # per absorbed note: Jaccard with the kept one (1.0: a duplicate)

    @property
    def near_duplicate(self) -> bool:
        """Whether an absorbed note says something differently: only such a merge is worth a model rewrite."""
        return any(sim < 1 for sim in self.similarity)


@dataclass
class MergeText:
    """A merged note as the model wrote it (already leak-scanned and checked to keep every fact)."""

    description: str  # "" when the model wrote none: the kept note's description stays
    body: str


@dataclass
class ModelText:
    """What the model wrote for a dream, and why any part of it is not used (see dream_model.py)."""

    summary: str | None = None
    summary_missing: str | None = None  # why the observation note has no model summary
    merges: dict[int, MergeText] = field(default_factory=dict)  # by merge number (1-based, plan order)
    fallbacks: dict[int, str] = field(default_factory=dict)  # merge number -> why the deterministic merge stands
    aliases: dict[Path, list[str]] = field(default_factory=dict)  # by note path: the aliases to add
    aliases_missing: str | None = None  # why some planned notes get no aliases
    replied: bool = False  # the model answered (it was asked, and neither refused nor failed)


@dataclass
class Summary:
    name: str
    days: list[_dt.date]
    sources: list[str]  # journal day files, relative to the agent folder
    description: str
    body: str


@dataclass
class Progress:
    """What a dream has done so far, added to as each step is on disk: an interrupted dream logs exactly this."""

    steps: list[str] = field(default_factory=list)  # one line per step done, or skipped and why
    written: list[NoteWrite] = field(default_factory=list)  # every note write, in order (conflicts too)


@dataclass
class DreamPlan:
    today: _dt.date
    merges: list[Merge] = field(default_factory=list)
    expired: list[Note] = field(default_factory=list)
    summary: Summary | None = None
    unaliased: list[Note] = field(default_factory=list)  # notes without aliases the model is asked to write some for
    problems: list[Finding] = field(default_factory=list)  # files it could not read, or not all of
    # INDEX's managed block lists other notes than memory/ holds (e.g. a dream was killed before rewriting it).
    index_stale: bool = False

    @property
    def empty(self) -> bool:
        return not (self.merges or self.expired or self.summary or self.unaliased or self.index_stale)

    def lines(self, root: Path, *, with_model: bool = False) -> list[str]:
        """The plan as a person reads it, one step a line; `with_model` says which merges the model would write."""
        out = []
        for m in self.merges:
            dropped = ", ".join(f"{_rel(n.path, root)} ({'duplicate' if sim >= 1 else f'near-duplicate, {sim:.2f}'})"
                                for n, sim in zip(m.drop, m.similarity))
            by = ""
            if with_model:
                by = (" — written by the model (deterministic if its text is unusable)" if m.near_duplicate
                      else " — deterministic (exact duplicates need no rewrite)")
            out.append(f"merge into {_rel(m.keep.path, root)}: {dropped}{by}")
        for n in self.expired:
            out.append(f"archive expired ({n.expires}): {_rel(n.path, root)} -> {_rel(archive_path(root, n), root)}")
        if self.merges or self.expired or self.index_stale:
            out.append("rewrite memory/INDEX.md")
        if self.summary:
            days = ", ".join(d.isoformat() for d in self.summary.days)
            model = " with a model-written summary" if with_model else ""
            out.append(f"write observation note {self.summary.name!r} summarizing journal days {days}{model}")
        if self.unaliased:
            shown = ", ".join(_rel(n.path, root) for n in self.unaliased[:_SHOWN_UNALIASED])
            more = len(self.unaliased) - _SHOWN_UNALIASED
            out.append(f"add model-written aliases to {len(self.unaliased)} note(s) that have none: {shown}"
                       + (f" and {more} more" if more > 0 else ""))
        return out or ["nothing to do"]

    def warnings(self, root: Path) -> list[str]:
        """One line per problem: the file (in the agent folder), what is wrong, and the fix."""
        return [f"{_rel(f.path, root) if f.path is not None and f.path.is_relative_to(root) else f.path}: "
                f"{f.message}" + (f" (fix: {f.fix})" if f.fix else "") for f in self.problems]


def plan(folder: AgentFolder, *, today: _dt.date, days: int = SUMMARY_DAYS,
         threshold: float = NEAR_DUPLICATE, aliases: bool = False) -> DreamPlan:
    """What a dream would do now. Reads the files only.

    `aliases`: also choose the notes the model writes aliases for (only a
    dream with a model does): up to ALIAS_BATCH live notes without any and in
    no merge, pinned first, then the most recently updated; a note the model
    was asked about and gave none goes after all the others until it changes
    (so a few such notes cannot hold up the rest for ever).
    """
    notes = folder.notes.scan()
    result = DreamPlan(today)
    # What the dream passes over, said rather than skipped silently: unreadable notes, and dates it cannot
    # read (an `expires` that is not a date is never archived); doctor reports the same findings.
    read = {n.path for n in notes}
    result.problems = [f for f in folder.notes.findings if f.path not in read]
    result.problems += [f for n in notes for f in date_findings(n)]
    result.expired = sorted((n for n in notes if n.is_expired(today)), key=lambda n: n.path)
    # A superseded note is not live (recall leaves it out): merging it would bring its outdated facts back.
    replaced = _superseded(notes)
    live = [n for n in notes if not n.is_expired(today) and OBSERVATION_TAG not in n.tags and n.path not in replaced]
    by_path = {n.path: n for n in live}
    pairs = similar_pairs((((n.type, n.path), f"{n.description}\n{n.body}") for n in
                           sorted(live, key=lambda n: (n.type, str(n.path)))), threshold)
    # Only notes of the same type are duplicates of each other.
    same_type = [(a[1], b[1], sim) for a, b, sim in pairs if a[0] == b[0]]  # type: ignore[index]
    sims = {frozenset((a, b)): sim for a, b, sim in same_type}
    for group in clusters(same_type):  # type: ignore[arg-type]
        members = [by_path[p] for p in group]  # type: ignore[index]
        keep = max(members, key=_keep_rank)
        drop = sorted((n for n in members if n is not keep), key=lambda n: n.path)
        # A note in the group only through a third one has no pair score with the kept note: it is at
        # least `threshold` alike to something in the group.
        result.merges.append(Merge(keep, drop, [sims.get(frozenset((keep.path, n.path)), threshold) for n in drop]))
    result.merges.sort(key=lambda m: m.keep.path)
    result.index_stale = _index_stale(folder.paths.index_md, notes)
    # The summary links the notes the runs touched: one this dream removes is linked as the note that absorbs it.
    absorbed = {n.stem: m.keep.stem for m in result.merges for n in m.drop}
    result.summary = _journal_summary(folder, notes, today, days, absorbed, result.problems)
    if aliases:
        merged = {n.path for m in result.merges for n in (m.keep, *m.drop)}
        asked = _asked_before(folder.paths.aliases_asked)
        result.unaliased = sorted((n for n in live if not n.aliases and n.path not in merged),
                                  key=lambda n: (asked.get(_rel(n.path, folder.root)) != n.hash, *_keep_rank(n)),
                                  reverse=True)[:ALIAS_BATCH]
    return result


def _index_stale(index: Path, notes: list[Note]) -> bool:
    """Whether INDEX's managed block differs from what a rewrite would put there.

    Only a block INDEX already has: a missing INDEX, or one without markers (atomic-agents-stack's), is left
    to the next capture, as before; a dream alone does not add one.
    """
    try:
        _, managed, _ = index_md.split_managed(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False
    return managed is not None and managed != index_md.render_block(notes)


def _superseded(notes: list[Note]) -> set[Path]:
    """Notes another note `supersedes`, or that are marked `superseded_by`: as recall sees them (notes.superseded)."""
    ordered = sorted(notes, key=lambda n: n.path)
    replaced = superseded((n.path.as_posix(), n.supersedes, n.superseded_by) for n in ordered)
    return {n.path for n in notes if replaced.covers(n.path.as_posix(), n.stem, n.name)}


def _asked_before(path: Path) -> dict[str, str]:
    """Notes the model was asked for aliases and gave none: their path in the folder -> their hash then."""
    # Derived state: without it a note is only asked again sooner.
    return {k: v for k, v in read_state(path).items() if isinstance(v, str)}


def _remember_asked(folder: AgentFolder, asked_now: list[Note], declined: list[Note]) -> None:
    """Record the notes the model gave no aliases, forgetting those given some now and those gone."""
    root = folder.root
    with folder.write_lock():
        asked = _asked_before(folder.paths.aliases_asked)
        for note in asked_now:
            asked.pop(_rel(note.path, root), None)
        asked.update((_rel(n.path, root), n.hash) for n in declined if n.hash)
        kept = {k: v for k, v in sorted(asked.items()) if (root / k).is_file()}
        atomic_write(folder.paths.aliases_asked, json.dumps(kept, indent=1) + "\n")


def _keep_rank(note: Note) -> tuple[bool, str, int, str]:
    # Pinned first, then the most recently updated, then the longest; the path settles ties.
    updated = note.updated or note.created
    return (note.pinned, updated.isoformat() if updated else "", len(note.body), str(note.path))


def archive_path(root: Path, note: Note) -> Path:
    """Where an expired note goes: archive/<its path inside memory/>."""
    return root / "archive" / note.path.relative_to(root / "memory")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def merged_body(keep: Note, drop: list[Note]) -> str:
    """The kept body, then per absorbed note the sentences the kept body does not already say (one paragraph)."""
    body = keep.body.rstrip()
    have = {_norm(s) for s in _SENTENCE.split(body)}
    extra = []
    for note in drop:
        new = []
        for sentence in _SENTENCE.split(note.body.strip()):
            if sentence.strip() and _norm(sentence) not in have:
                have.add(_norm(sentence))
                new.append(sentence.strip())
        if new:
            extra.append(" ".join(new))
    return body + ("\n\n" + "\n\n".join(extra) if extra else "") + "\n"


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _journal_summary(folder: AgentFolder, notes: list[Note], today: _dt.date, days: int,
                     absorbed: dict[str, str], unreadable: list[Finding]) -> Summary | None:
    """The observation note for the past days no observation note covers; a day file it cannot read goes to
    `unreadable` (a day without a file had no runs)."""
    covered = {s for n in notes if OBSERVATION_TAG in n.tags for s in n.sources}
    chosen: list[tuple[_dt.date, list[journal.ParsedEntry]]] = []
    for back in range(days, 0, -1):  # up to yesterday: today's journal is still being written
        day = today - _dt.timedelta(days=back)
        path = folder.paths.journal_day(day)
        if _rel(path, folder.root) in covered:
            continue
        try:
            entries = journal.parse_day(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except UnicodeDecodeError:
            unreadable.append(Finding("warning", path, "not UTF-8 text; this day is not summarized",
                                      "save the journal day as UTF-8"))
            continue
        except OSError as exc:
            unreadable.append(Finding("warning", path, f"cannot read ({exc.strerror or exc}); this day is not "
                                      "summarized", "check permissions"))
            continue
        if entries:
            chosen.append((day, entries))
    if not chosen:
        return None
    first, last = chosen[0][0], chosen[-1][0]
    name = f"Journal {first.isoformat()}" + (f" to {last.isoformat()}" if last != first else "")
    runs = [e for _, entries in chosen for e in entries]
    statuses: dict[str, int] = {}
    for e in runs:
        statuses[e.status] = statuses.get(e.status, 0) + 1
    cost = sum(float(m.group(1)) for e in runs for c in e.fields.get("cost", []) for m in _COST.finditer(c))
    description = (f"{len(runs)} run(s) over {len(chosen)} day(s): "
                   + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + f"; ${cost:.2f}")
    lines: list[str] = []
    linked: dict[str, None] = {}
    problems = []
    for day, entries in chosen:
        lines.append(f"## {day.isoformat()} ({len(entries)} run(s))\n")
        for e in entries:
            asked = " ".join(e.fields.get("asked", []))
            did = " ".join(e.fields.get("did", []))
            lines.append(f"- {e.time[:5]} {e.trigger} · {e.status} — {asked}" + (f" → {did}" if did else ""))
            for notes_line in e.fields.get("notes", []):
                for stem in re.findall(r"\[\[([^\]|]+)", notes_line):
                    linked[absorbed.get(stem, stem)] = None
            problems += [f"{day.isoformat()} {e.time[:5]}: {p}" for p in e.fields.get("problem", [])]
        lines.append("")
    if linked:
        lines += ["## Notes touched", "", ", ".join(f"[[{s}]]" for s in linked), ""]
    if problems:
        lines += ["## Problems", "", *(f"- {p}" for p in problems), ""]
    sources = [_rel(folder.paths.journal_day(day), folder.root) for day, _ in chosen]
    return Summary(name, [d for d, _ in chosen], sources, description, "\n".join(lines).rstrip() + "\n")


def apply(folder: AgentFolder, dream: DreamPlan, *, tag: str, model: ModelText | None = None,
          progress: Progress | None = None) -> list[str]:
    """Carry out the plan; returns what was done (and what was skipped because a person changed a file).

    `model`: what the model wrote, if it was asked: merged notes replace the
    deterministic merge, a summary is added to the observation note under its
    own heading; where it wrote nothing usable, the line done says why.
    `progress`: where each step and note write goes as soon as it is on disk, so an interrupted dream can
    still log them.
    """
    progress = Progress() if progress is None else progress
    done = progress.steps
    root = folder.root
    model = model or ModelText()
    for number, m in enumerate(dream.merges, 1):
        _merge(folder, m, dream.today, tag, model.merges.get(number), model.fallbacks.get(number), progress)
    for note in dream.expired:
        target = _unique(archive_path(root, note))
        with folder.write_lock():
            if _changed(note):
                done.append(f"skipped {_rel(note.path, root)}: changed since the plan was made")
                continue
            try:  # archive/ swapped for a link by a command would move the note out of the agent folder
                no_folder_link(root, target)
            except FolderLink as exc:
                done.append(f"skipped {_rel(note.path, root)}: {exc.filename} is a link, never written through")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(note.path, target)
        done.append(f"archived {_rel(note.path, root)} -> {_rel(target, root)}")
    if dream.merges or dream.expired or dream.index_stale:
        if folder.rewrite_index():
            done.append("rewrote memory/INDEX.md")
    for note in dream.unaliased:
        if note.path in model.aliases:
            _add_aliases(folder, note, model.aliases[note.path], tag, progress)
    left = [n for n in dream.unaliased if n.path not in model.aliases]
    if left:
        done.append(f"no aliases for {len(left)} note(s): "
                    f"{model.aliases_missing or 'the model wrote none for them'}")
    if model.replied and dream.unaliased:
        _remember_asked(folder, dream.unaliased, left)
    if dream.summary:
        s = dream.summary
        body = s.body + (f"\n## Summary (written by the model)\n\n{model.summary.strip()}\n" if model.summary else "")
        meta = {"type": "reference", "name": s.name, "description": s.description,
                "tags": [OBSERVATION_TAG, "journal"], "created": dream.today, "updated": dream.today,
                "sources": s.sources}
        result = folder.save_note(meta, body, version_tag=tag, notes=folder.notes.scan())
        progress.written.append(result)
        missing = f" (digest only: {model.summary_missing})" if model.summary_missing else ""
        done.append(f"{result.action} observation note {_rel(result.note.path, root)}{missing}")
    return done


def _merged_aliases(keep: Note, drop: list[Note]) -> list[str]:
    """Every note's aliases, and the merged-away notes' names: the merged note stays findable by all of them."""
    every = unique_folded([*keep.aliases, *(a for n in drop for a in (n.name, *n.aliases))])
    return [alias for alias in every if alias.casefold() != keep.name.casefold()]


def _merge(folder: AgentFolder, m: Merge, today: _dt.date, tag: str, written: MergeText | None,
           fallback: str | None, progress: Progress) -> None:
    """Merge one group: the model's text when it wrote a usable one (`written`), else the deterministic merge.
    Each step goes to `progress` as soon as it is on disk."""
    root = folder.root
    done = progress.steps
    keep = m.keep
    tags = list(dict.fromkeys([*keep.tags, *(t for n in m.drop for t in n.tags)]))
    sources = list(dict.fromkeys([*keep.sources, *(s for n in m.drop for s in n.sources), f"dream {tag}"]))
    # An absorbed note in another folder may share the kept note's stem: a note listing itself is not superseded.
    own = {link_key(keep.stem), link_key(keep.name)}
    supersedes = [s for s in dict.fromkeys([*keep.supersedes, *(n.stem for n in m.drop)]) if link_key(s) not in own]
    aliases = _merged_aliases(keep, m.drop)
    meta = {"updated": today, "sources": sources,
            **({"supersedes": supersedes} if supersedes or "supersedes" in keep.meta else {}),
            **({"tags": tags} if tags else {}), **({"aliases": aliases} if aliases else {})}
    body = merged_body(keep, m.drop)
    how = f"; deterministic merge: {fallback}" if fallback else ""
    if written is not None:
        body, how = written.body, ", written by the model"
        if written.description:
            meta["description"] = written.description
    with folder.write_lock():
        if any(_changed(n) for n in (keep, *m.drop)):
            done.append(f"skipped merge into {_rel(keep.path, root)}: a note changed since the plan was made")
            return
        # Straight to the store, not save_note: two duplicates may share a type and name, and the
        # note to update is the one the plan chose. INDEX is rewritten once, after all merges.
        result = folder.notes.update(keep, meta, body, version_tag=tag)
        progress.written.append(result)
        if result.action == "conflict":  # a person saved it this very moment: their edit stays
            done.append(f"skipped merge into {_rel(keep.path, root)}: a person edited it meanwhile")
            return
        done.append(f"merged into {_rel(keep.path, root)} ({result.action}{how})")
        for note in m.drop:
            kept_as = new_version_path(folder.paths, note.stem, tag)
            atomic_write(kept_as, note.path.read_bytes())
            note.path.unlink()
            done.append(f"removed {_rel(note.path, root)} (kept as {_rel(kept_as, root)})")


def _add_aliases(folder: AgentFolder, note: Note, aliases: list[str], tag: str, progress: Progress) -> None:
    """Give a note the model's aliases; its body and dates stay, its previous version is kept."""
    where = _rel(note.path, folder.root)
    with folder.write_lock():
        if _changed(note):
            progress.steps.append(f"skipped aliases for {where}: changed since the plan was made")
            return
        result = folder.notes.update(note, {"aliases": aliases}, note.body, version_tag=tag)
        progress.written.append(result)
    if result.action == "conflict":
        progress.steps.append(f"skipped aliases for {where}: a person edited it meanwhile")
    else:
        progress.steps.append(f"added aliases to {where}: {', '.join(aliases)}")


def _changed(note: Note) -> bool:
    try:
        return content_hash(note.path.read_bytes()) != note.hash
    except FileNotFoundError:
        return True


def _unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
