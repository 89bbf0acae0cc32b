"""Search over the derived index: field-weighted BM25 with boosts, snippets, and reading a note by reference.

These are the functions behind `vault-agent search`, recall and the
`memory_search` / `memory_read` tools:

- `search(catalog, query, type=None, limit=10, readable=None) -> list[Hit]`:
  best first.
- `relevant(catalog, query, today=..., kinds=..., readable=None) -> list[Hit]`:
  for recall: live notes only, plus notes [[linked]] from the best hits.
- `read_note_by_ref(paths, catalog, ref) -> NoteText | None`: a note by
  [[wikilink]], stem, name or path.

`readable` (a test on a document's path: tools.md's read grant) leaves the
documents it refuses out before the limit, so a limit counts only what the
agent may read.

Scoring (`_ranked`): BM25 over name, description, tags, body, type, links,
dates and the related terms of the name and description (query.expansions)
with the field weights below, each term ranked on its own; per
question word the best of it and its related terms (query.RELATED_WEIGHT);
summed over the question's words; then multiplied by a prior per kind and
boosts for pinned notes, for the note type the question points at ("what did
we decide" -> decisions), for recent notes and for notes whose name says the
question's words. Terms found in a large share of the documents carry almost
no BM25 weight but cost the most to rank, so the commonest are left out of
the query (`_affordable`): that bounds a search at 100k notes.
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UnknownSearchType
from ..vault.layout import NOTE_TYPES, AgentPaths
from ..vault.notes import MAX_NOTE_BYTES, link_key, link_refs
from ..vault.reading import read_inside
from .catalog import Catalog, SearchStats, heals
from .embed import rrf
from .query import Term, terms
from .related import fold, run_pairs, stems, token_stems, words
from .sources import KINDS, kind_of

# name, description, tags, body, type, links, dates, related (catalog.FTS_COLUMNS)
FIELD_WEIGHTS = (6.0, 4.0, 3.0, 1.0, 1.0, 0.5, 1.0, 2.0)
PLAIN_WEIGHTS = FIELD_WEIGHTS[:-1] + (0.0,)  # expand=False: the question's words, not what they are related to
KIND_PRIOR = {"memory": 1.0, "wiki": 0.9, "skill": 0.8, "journal": 0.75, "archive": 0.6}
PINNED_BOOST = 1.25
CUE_BOOST = 1.2
RECENCY_BOOST = 0.15  # a note updated today scores up to 15% more
RECENCY_HALF_LIFE_DAYS = 180
LINK_SHARE = 0.5  # a note linked from a hit scores half of the hit
NAME_BOOST = 1.0  # a note whose name says every word of the question scores double
MATCH_BUDGET = 6000  # documents ranked per query, at most: ~2 µs each
# A term in more than this share of the documents is left out of the query. At 100k notes MATCH_BUDGET leaves
# out every term in more than 6% of them. Leaving common terms out of a smaller vault's questions too keeps
# recall there from packing notes that share only such a word with the question (3,000 tokens of them for a
# work item at 1k notes), so the prompt is the same size at 1k notes as at 100k (bench/bench_memory.py).
COMMON_SHARE = 0.1
TYPE_CUES = {
    "decision": {"decide", "decided", "decision", "decisions", "agreed", "chose", "chosen", "settled", "policy"},
    "user": {"prefer", "prefers", "preference", "preferences", "favorite", "favourite", "likes", "dislikes",
             "allergic", "birthday", "personal"},
    "feedback": {"feedback", "correct", "corrected", "mistake", "wrong", "style", "tone", "format"},
    "project": {"project", "projects", "status", "milestone", "progress"},
}
SNIPPET_WORDS = 18
# A "word" can be a whole base64 image or a paragraph of a script written without spaces: a snippet is cut to
# SNIPPET_CHARS, and each word before the match to LEAD_CHARS, so that the match always shows.
SNIPPET_CHARS = 240
LEAD_CHARS = 30
_PUNCT = ".,;:!?()[]{}\"'*_`—–-…"


@dataclass
class Hit:
    """One search result. `path` is relative to the agent folder; `anchor` names a journal entry's run."""

    path: str
    kind: str
    type: str
    stem: str
    name: str
    description: str
    score: float
    snippet: str = ""
    anchor: str = ""
    pinned: bool = False
    updated: str | None = None
    expires: str | None = None
    linked_from: str | None = None  # the stem of the hit that [[links]] here, when found that way
    links: tuple[str, ...] = ()
    doc_id: int = 0

    @property
    def link(self) -> str:
        return f"[[{self.stem}]]"

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "kind": self.kind, "type": self.type, "stem": self.stem, "name": self.name,
                "description": self.description, "score": round(self.score, 4), "snippet": self.snippet,
                "anchor": self.anchor, "pinned": self.pinned, "updated": self.updated,
                "linked_from": self.linked_from}


@heals
def search(catalog: Catalog, query: str, type: str | None = None, limit: int = 10, *,
           today: _dt.date | None = None, expand: bool = True,
           readable: Callable[[str], bool] | None = None) -> list[Hit]:
    """Documents (notes, wiki pages, journal entries, skills) matching `query`, best first, with snippets.

    `type`: a note type (user, feedback, project, decision, reference, or
    one a person made up) or a kind (memory: every note; wiki, journal, skill,
    archive); UnknownSearchType when it is none of these. Expired and
    superseded notes are included (a person searching wants to see them);
    recall leaves them out. `readable`: only documents whose path it accepts,
    `limit` of them whenever that many match. `expand=False`: the question's
    own words and what the documents say, no related terms on either side.
    """
    found = terms(query, expand=expand)
    # Once per path: a pool that grows brings the same documents back, a journal day holds many entries, and
    # each check of the read grant resolves the path on disk (~0.2 ms).
    asked = functools.cache(readable) if readable is not None else None
    keep = (lambda h: asked(h.path)) if asked is not None else None
    ranked = _ranked(catalog, query, found, type=type, pool=max(limit * 3, 30),
                     today=today or _dt.date.today(), keep=keep, want=limit, expand=expand)[:limit]
    if type and not ranked:
        known = sorted({*NOTE_TYPES, *KINDS, *catalog.types()})
        if type.lower() not in known:
            raise UnknownSearchType(f"unknown type {type!r}", fix=f"use one of {', '.join(known)}, or no type")
    _add_snippets(catalog, ranked, found)
    return ranked


@heals
def relevant(catalog: Catalog, query: str, *, today: _dt.date, kinds: tuple[str, ...] = ("memory", "wiki"),
             limit: int = 40, expand: bool = True, semantic: list[int] | None = None,
             readable: Callable[[str], bool] | None = None, every_word: bool = False) -> list[Hit]:
    """For recall: live documents of these kinds for `query`, and notes [[linked]] from the best of them.

    Live: not expired (`expires` before today), not superseded by another
    note, and accepted by `readable` (when given). A linked note scores
    LINK_SHARE of the hit that links it. `semantic`: doc ids nearest to the
    query by embeddings (embed.nearest), fused with this ranking by reciprocal
    rank fusion; scores are then RRF scores. `every_word`: the query is
    search words a model chose (recall_words.py), which hold no filler, so a
    word too common to rank in full still counts where it is matched in a
    name, description or tags; in a person's question such words ("look",
    "time") are left out.
    """
    superseded = catalog.superseded()
    asked = functools.cache(readable) if readable is not None else None  # once per path, as in search()

    def live(h: Hit) -> bool:
        if h.kind not in kinds or (h.expires is not None and h.expires < today.isoformat()):
            return False
        if asked is not None and not asked(h.path):
            return False
        return not (h.kind == "memory" and superseded.covers(h.path, h.stem, h.name))

    found = terms(query, expand=expand)
    # Ranked among its kinds only: a scheduled run's journal entries, which repeat its work item word for word,
    # would otherwise fill each term's pool, and it would grow until the whole ranking had been read.
    hits = _ranked(catalog, query, found, type=None, pool=limit * 3, today=today, kinds=tuple(kinds), keep=live,
                   want=limit, expand=expand, every_word=every_word)
    by_id = {h.doc_id: h for h in hits}
    for hit in hits[:10]:
        for linked in _docs_by_stems(catalog, hit.links):
            if not live(linked):
                continue
            linked.score = hit.score * LINK_SHARE
            linked.linked_from = hit.stem
            known = by_id.get(linked.doc_id)
            if known is None:
                by_id[linked.doc_id] = linked
            elif known.score < linked.score:
                known.score, known.linked_from = linked.score, hit.stem
    ranked = sorted(by_id.values(), key=lambda h: (-h.score, h.path, h.anchor))
    if semantic:
        missing = [i for i in semantic if i not in by_id]
        if missing:
            by_id.update((h.doc_id, h) for h in _hits(catalog, f"id IN ({','.join(map(str, missing))})", ())
                         if live(h))
        fused = rrf([[h.doc_id for h in ranked], [i for i in semantic if i in by_id]])
        for doc_id, score in fused.items():
            by_id[doc_id].score = score
        ranked = sorted((by_id[i] for i in fused), key=lambda h: (-h.score, h.path, h.anchor))
    return ranked[:limit]


# --- ranking -------------------------------------------------------------------

def _ranked(catalog: Catalog, query: str, found: list[Term], *, type: str | None, pool: int,
            today: _dt.date, kinds: tuple[str, ...] = (), keep: Callable[[Hit], bool] | None = None,
            want: int = 0, expand: bool = True, every_word: bool = False) -> list[Hit]:
    """Documents scored per concept: a question word and its related terms count once, by the best of them.

    Each term is ranked on its own (BM25 over the weighted fields), down to
    its `pool` best documents; a document's score is the sum over the
    question's words of the best score any of that word's terms gives it.
    Summing a word's synonyms instead would let a note that mentions "car" and
    "drive" in passing beat the note named "Car lease". A related term stands
    in at full weight for a question word that no document contains: it is
    then the only way that word can match. `found`: the query's terms
    (query.terms). `kinds`: only documents of these kinds are ranked. `keep`:
    only the best `want` documents it accepts, all `want` whenever that many
    match: the pool grows until they are found. `every_word`: see relevant.
    """
    if not found:
        return []
    stats = catalog.search_stats()
    found = _sentences_as_pairs(stats, found)
    absent = {t.text for t in found if t.weight == 1.0 and not stats.document_frequency(t.fts(), MATCH_BUDGET)}
    ranking = _affordable(stats, found, every_word)
    while True:
        hits, cut = _pooled(catalog, stats, query, found, ranking, absent, type=type, kinds=kinds, pool=pool,
                            today=today, weights=FIELD_WEIGHTS if expand else PLAIN_WEIGHTS)
        if keep is None:
            return hits
        # Asked in rank order and only until `want` are kept: a check of the read grant costs a path lookup.
        kept = list(itertools.islice((h for h in hits if keep(h)), want))
        # A term ranked to its end holds no more documents: with none cut, every match has been seen.
        if len(kept) == want or not cut:
            return kept
        pool *= 4


def _pooled(catalog: Catalog, stats: SearchStats, query: str, found: list[Term],
            ranking: list[tuple[str, Term, int]], absent: set[str], *, type: str | None, kinds: tuple[str, ...],
            pool: int, today: _dt.date, weights: tuple[float, ...]) -> tuple[list[Hit], bool]:
    """The documents in the `pool` best of each term's ranking, scored and sorted (see _ranked), and
    whether any term's ranking was cut at `pool`."""
    weights_sql = ", ".join(str(w) for w in weights)
    total = stats.document_count()
    best: dict[tuple[str, int], float] = {}  # (question word, doc id) -> best term score
    cut = False
    for fts, term, df in ranking:
        weight = 1.0 if term.weight == 1.0 or term.source in absent else term.weight
        # FTS5's IDF, ln((N - n + 0.5) / (n + 0.5)), is clamped to 1e-6 for a word in half the documents or
        # more: in a small vault the very words a question is about would count for nothing. Swap it for
        # the IDF that stays positive, ln(1 + (N - n + 0.5) / (n + 0.5)) (as Lucene does).
        ratio = (total - df + 0.5) / (df + 0.5)
        idf = math.log(1 + ratio) / max(1e-6, math.log(ratio)) if ratio > 0 else 0.0
        concept = term.source or term.text
        rows = stats.term_ranking(fts, weights_sql, type.lower() if type else None, pool, kinds)
        cut = cut or len(rows) >= pool
        for rowid, bm25 in rows:
            if bm25 < 0:  # bm25() is negative, lower is better
                key = (concept, rowid)
                best[key] = max(best.get(key, 0.0), -weight * bm25 * idf)
    if not best:
        return [], False
    scores: dict[int, float] = {}
    for (_, rowid), value in best.items():
        scores[rowid] = scores.get(rowid, 0.0) + value
    cues = _cued_types(query)
    hits = _hits(catalog, "id IN (" + ",".join(str(i) for i in scores) + ")", ())
    concepts = _concept_stems(found)
    for hit, named in zip(hits, token_stems([h.name for h in hits])):
        # A note named after what the question asks about is about it, whatever BM25's IDF makes of
        # the words (in a small vault a word in half the documents scores next to nothing).
        in_name = sum(1 for stems_of in concepts if stems_of & named) / len(concepts)
        hit.score = scores[hit.doc_id] * _boost(hit, cues, today) * (1 + NAME_BOOST * in_name)
    hits.sort(key=lambda h: (-h.score, h.path, h.anchor))
    return hits, cut


def _concept_stems(found: list[Term]) -> list[set[str]]:
    """Per question word, the stems of it and of its related terms."""
    own = [t for t in found if t.weight == 1.0]
    stems_of = token_stems([t.text for t in found])
    by_word = {t.text: set(s) for t, s in zip(found, stems_of) if t.weight == 1.0}
    for t, s in zip(found, stems_of):
        if t.source in by_word:
            by_word[t.source] |= s
    return [by_word[t.text] for t in own] or [set()]


def _sentences_as_pairs(stats: SearchStats, found: list[Term]) -> list[Term]:
    """The terms, with a question's run of CJK or Thai letters that no document holds taken for a sentence
    (those scripts are written without spaces: "デザイン週間のブースを準備して" is one run), whose
    overlapping pairs then count as its words, each scored on its own as in a bigram search engine. A run
    that some document holds stays one word, matched as its phrase: "デザイン" never finds "デザート"."""
    out: list[Term] = []
    seen = {t.text for t in found}
    for term in found:
        pairs = run_pairs(term.text) if term.weight == 1.0 else []
        if pairs and not stats.document_frequency(term.fts(), MATCH_BUDGET):
            fresh = [p for p in dict.fromkeys(pairs) if p not in seen]
            seen.update(fresh)
            out.extend(Term(p, 1.0) for p in fresh)
        else:
            out.append(term)
    return out


def _affordable(stats: SearchStats, found: list[Term], every_word: bool = False) -> list[tuple[str, Term, int]]:
    """The terms worth ranking, as FTS5 strings: rarest first, while the documents they match fit the budget.

    Ranking costs ~2 µs per matching document; a term found in a tenth of
    all documents adds little to BM25 (its IDF is low) but would make a
    100k-note search slow. When none of the question's own words is
    affordable, the rarest is kept anyway, matched only in the name,
    description and tags (or only the name). With `every_word` (see
    `relevant`), every own word left out so is kept that way, rarest first,
    as far as the budget goes.
    """
    common = max(50, int(stats.document_count() * COMMON_SHARE))
    counted = sorted((stats.document_frequency(t.fts(), MATCH_BUDGET), i, t) for i, t in enumerate(found))
    budget = MATCH_BUDGET
    kept: list[tuple[str, Term, int]] = []
    left_out: list[Term] = []
    for df, _, term in counted:
        if df and (df > common or df > budget):
            left_out.append(term)
        elif df:
            kept.append((term.fts(), term, df))
            budget -= df
    own = [t for t in left_out if t.weight == 1.0]
    for term in own if every_word else own[:1]:
        first = not any(t.weight == 1.0 for _, t, _ in kept)
        if not (first or every_word):
            break
        for narrowed in (f"{{name description tags}} : {term.fts()}", f"name : {term.fts()}"):
            df = stats.document_frequency(narrowed, MATCH_BUDGET)
            if 0 < df <= (max(budget, MATCH_BUDGET // 4) if first else min(budget, common)):
                kept.append((narrowed, term, df))
                budget -= df
                break
    return kept


def _cued_types(query: str) -> set[str]:
    said = set(words(query))
    return {t for t, cue in TYPE_CUES.items() if said & cue}


def _boost(hit: Hit, cues: set[str], today: _dt.date) -> float:
    factor = KIND_PRIOR.get(hit.kind, 1.0)
    if hit.pinned:
        factor *= PINNED_BOOST
    if hit.type in cues:
        factor *= CUE_BOOST
    if hit.updated:
        try:
            age = max(0, (today - _dt.date.fromisoformat(hit.updated)).days)
        except ValueError:
            age = None
        if age is not None:
            factor *= 1 + RECENCY_BOOST * math.pow(0.5, age / RECENCY_HALF_LIFE_DAYS)
    return factor


_COLUMNS = "id, path, kind, type, stem, name, description, anchor, pinned, updated, expires, links"


def _hits(catalog: Catalog, where: str, args: tuple[object, ...]) -> list[Hit]:
    rows = catalog.conn.execute(f"SELECT {_COLUMNS} FROM docs WHERE {where}", args)
    return [Hit(path=path, kind=kind, type=t, stem=stem, name=name, description=description, score=0.0,
                anchor=anchor, pinned=bool(pinned), updated=updated, expires=expires,
                links=tuple(json.loads(links)), doc_id=doc_id)
            for doc_id, path, kind, t, stem, name, description, anchor, pinned, updated, expires, links in rows]


def _docs_by_stems(catalog: Catalog, stems: tuple[str, ...]) -> list[Hit]:
    if not stems:
        return []
    keys = [link_key(s) for s in stems[:20]]
    return _hits(catalog, f"stem_key IN ({','.join('?' * len(keys))}) AND kind != 'journal'", tuple(keys))


def _add_snippets(catalog: Catalog, hits: list[Hit], found: list[Term]) -> None:
    """A window of ~SNIPPET_WORDS words around the first matching word, matches in [brackets].

    Done here rather than with FTS5's snippet(), which re-runs the whole query
    for every hit (~1 ms each at 10k notes). A word matches when it starts
    with a term's stem, which is how porter stems relate to their words.
    """
    if not hits or not found:
        return
    prefixes = tuple(s for s in stems([t.text for t in found]) if s)
    ids = ",".join(str(h.doc_id) for h in hits)
    texts = dict(catalog.conn.execute(f"SELECT d.id, d.name || ' — ' || d.description || ' ' || t.body "
                                      f"FROM docs d JOIN docs_text t ON t.id = d.id WHERE d.id IN ({ids})"))

    def matches(word: str) -> bool:
        return bool(prefixes) and fold(word.strip(_PUNCT)).startswith(prefixes)

    for hit in hits:
        tokens = texts.get(hit.doc_id, "").split()
        # Words are folded only up to the first match: folding all of them cost ~1 ms a search.
        first = next((i for i, w in enumerate(tokens) if matches(w)), 0)
        start = max(0, first - SNIPPET_WORDS // 3)
        window: list[str] = []
        left = SNIPPET_CHARS
        for i, word in enumerate(tokens[start:start + SNIPPET_WORDS], start):
            room = min(left, LEAD_CHARS) if i < first else left
            if len(word) > room:
                word = word[:max(0, room - 3)] + "…"
            window.append(_bracketed(word) if matches(word) else word)
            left -= len(window[-1]) + 1
            if left <= 3:
                break
        more = start + len(window) < len(tokens) and not window[-1].rstrip("]").endswith("…")
        hit.snippet = ("…" if start else "") + " ".join(window) + ("…" if more else "")


def _bracketed(word: str) -> str:
    """`(boiler,` -> `([boiler],`: the mark goes round the word, not the punctuation stuck to it. A [[link]]
    stays as written: marked, it would read as a link in brackets."""
    if "[[" in word:
        return word
    core = word.strip(_PUNCT)
    at = word.find(core)
    return f"{word[:at]}[{core}]{word[at + len(core):]}"


# --- reading by reference ------------------------------------------------------

@dataclass
class NoteText:
    """A file the index knows, read in full. `superseded_by`: set when `ref` named a replaced note."""

    path: str  # relative to the agent folder
    kind: str
    type: str
    stem: str
    name: str
    text: str
    superseded_by: str | None = None


def read_note_by_ref(paths: AgentPaths, catalog: Catalog, ref: str) -> NoteText | None:
    """Read the note, wiki page, skill or journal day that `ref` names; None when nothing matches.

    `ref` may be a [[wikilink]] (label and #heading ignored), a stem, a note
    name, or a path relative to the agent folder. Tried in that order: path,
    stem (memory notes first, then wiki, skills, archive, journal), name
    (case-folded); and last, a stem or name that a note `supersedes`, which
    resolves to the note that replaced it. Only indexed files are readable
    (never model.md, tools.md or anything under a dot-folder).
    """
    return catalog.healing(lambda: _read_by_ref(paths, catalog, ref))


def _read_by_ref(paths: AgentPaths, catalog: Catalog, ref: str) -> NoteText | None:
    refs = link_refs(ref)
    if not refs:
        return None
    target = refs[0]
    rel = target if target.endswith(".md") else f"{target}.md"
    if kind_of(rel) is not None and _inside(paths.root, rel):
        hit = _first(catalog, "path = ?", (rel,))
        if hit is not None:
            return _read(paths, hit)
    stem = target.rsplit("/", 1)[-1]
    stem = stem[:-3] if stem.endswith(".md") else stem
    order = "CASE kind WHEN 'memory' THEN 0 WHEN 'wiki' THEN 1 WHEN 'skill' THEN 2 WHEN 'archive' THEN 3 ELSE 4 END"
    named = catalog.conn.execute("SELECT path FROM notes WHERE name_key = ? ORDER BY path LIMIT 1",
                                 (link_key(target),)).fetchone()
    for where, args in ((f"stem_key = ? ORDER BY {order}, path", (link_key(stem),)),
                        ("path = ?", (named[0] if named else "",)),
                        (f"kind IN ('wiki', 'skill') AND lower(name) = ? ORDER BY {order}, path",
                         (target.casefold(),))):
        hit = _first(catalog, where, args)
        if hit is not None:
            return _read(paths, hit)
    newer = catalog.superseded().replacer(stem, target)
    hit = _first(catalog, "path = ?", (newer,)) if newer is not None else None
    if hit is not None:
        found = _read(paths, hit)
        if found is not None:
            found.superseded_by = hit.stem
        return found
    return None


def outdated(catalog: Catalog, notes: list[tuple[str, str, str]], *, today: str) -> dict[str, str]:
    """Which of these documents (path, stem, name) are memory notes past their time, and why:
    path -> "superseded by [[x]]" or "expired YYYY-MM-DD". Recall leaves such notes out; a search or
    a read by name still finds them, and the agent must not take them for current."""
    superseded = catalog.superseded()
    out: dict[str, str] = {}
    for path, stem, name in notes:
        if kind_of(path) != "memory":
            continue
        replacer = superseded.replacer(stem, name)
        newer = _first(catalog, "path = ?", (replacer,)) if replacer is not None else None
        if newer is not None:
            out[path] = f"superseded by {newer.link}"
            continue
        if path in superseded.marked:
            out[path] = f"superseded by [[{superseded.marked[path]}]]" if superseded.marked[path] else "superseded"
            continue
        row = catalog.conn.execute("SELECT expires FROM notes WHERE path = ?", (path,)).fetchone()
        if row is not None and row[0] is not None and row[0] < today:
            out[path] = f"expired {row[0]}"
    return out


def _inside(root: Path, rel: str) -> bool:
    try:
        (root / rel).resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return ".." not in rel.split("/")


def _first(catalog: Catalog, where: str, args: tuple[object, ...]) -> Hit | None:
    found = _hits(catalog, f"{where} LIMIT 1" if "ORDER BY" in where else f"{where} ORDER BY path LIMIT 1", args)
    return found[0] if found else None


def _read(paths: AgentPaths, hit: Hit) -> NoteText | None:
    try:
        text = read_inside(paths.root, paths.root / hit.path, MAX_NOTE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as a text-mode read gives it
    return NoteText(hit.path, hit.kind, hit.type, hit.stem, hit.name, text)
