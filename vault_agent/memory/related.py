"""The built-in related-terms table that lets lexical search find notes written in other words.

The table is related.txt, next to this module: one group per line of words
people use for the same thing (synonyms), or in the same breath about it
(associations: "teeth" and "dentist"). A query word found in a group brings
the group's other words into the query at a lower weight (query.py). Lookup
is by the index's own stem (FTS5 porter), so "invoices", "invoicing" and
"invoice" find the same groups.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from functools import lru_cache
from importlib import resources

_STEMMER_LOCK = threading.Lock()
_WORD = re.compile(r"[^\W_]+")
# Texts already tokenized. A search stems the names of every note it scores, and the same names come
# back search after search: tokenizing them again was a tenth of a search at 100k notes.
_seen: dict[str, dict[str, int]] = {}
_SEEN_MAX = 50_000


@lru_cache(maxsize=1)
def _stemmer() -> sqlite3.Connection:
    # The index's own tokenizer, so that "closing" and "close" meet here exactly when they meet in a search.
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE VIRTUAL TABLE w USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(w, 'instance')")
    return conn


def stems(items: list[str]) -> list[str]:
    """The FTS5 porter stem of each word (its first token; "" when it has none)."""
    return [min(found, key=found.get) if found else "" for found in _tokens(items)]  # type: ignore[arg-type]


def token_stems(texts: list[str]) -> list[set[str]]:
    """The set of FTS5 porter stems in each text."""
    return [set(found) for found in _tokens(texts)]


def _tokens(texts: list[str]) -> list[dict[str, int]]:
    """Per text, stem -> offset of its first token. The dicts are shared with the cache: read them only."""
    with _STEMMER_LOCK:
        known = {t: _seen[t] for t in texts if t in _seen}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            conn = _stemmer()
            fresh = _single_words(conn, [t for t in missing if _WORD.fullmatch(t)])
            rest = [t for t in missing if t not in fresh]
            if rest:
                found: list[dict[str, int]] = [{} for _ in rest]
                conn.execute("DELETE FROM w")
                conn.executemany("INSERT INTO w(rowid, x) VALUES (?, ?)", [(i + 1, t) for i, t in enumerate(rest)])
                for term, doc, offset in conn.execute("SELECT term, doc, offset FROM v"):
                    found[doc - 1].setdefault(term, offset)
                fresh.update(zip(rest, found))
            known.update(fresh)
            if len(_seen) + len(fresh) > _SEEN_MAX:
                _seen.clear()
            _seen.update(fresh)
        return [known[t] for t in texts]


def _single_words(conn: sqlite3.Connection, single: list[str]) -> dict[str, dict[str, int]]:
    """Stems of texts that are one word each, tokenized as one document: 4x faster than a row per word,
    which halves loading the related-terms table (5.6k words). Empty when the tokenizer does not see
    exactly one token per word (its Unicode tables are older than Python's); the caller then goes
    word by word."""
    if len(single) < 2:
        return {}
    conn.execute("DELETE FROM w")
    conn.execute("INSERT INTO w(rowid, x) VALUES (1, ?)", (" ".join(single),))
    by_offset = dict(conn.execute("SELECT offset, term FROM v"))
    if len(by_offset) != len(single) or max(by_offset) != len(single) - 1:
        return {}
    return {word: {by_offset[i]: 0} for i, word in enumerate(single)}


def fold(word: str) -> str:
    """Lowercase without accents: how query words and table words are compared."""
    if word.isascii():  # nothing to decompose: the common case, ~3x faster
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _groups() -> list[list[str]]:
    text = resources.files(__package__).joinpath("related.txt").read_text(encoding="utf-8")
    return [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def _index() -> tuple[list[tuple[tuple[str, str], ...]], dict[str, list[int]]]:
    """Each group as (word, stem) pairs, and stem -> the groups holding a word with that stem, in table order."""
    groups = _groups()
    distinct = list(dict.fromkeys(w for g in groups for w in g))
    stem_of = dict(zip(distinct, stems(distinct)))  # one tokenizer pass for the whole table
    members = [tuple((w, stem_of[w]) for w in g) for g in groups]
    by_stem: dict[str, list[int]] = {}
    for i, g in enumerate(members):
        for k in dict.fromkeys(k for _, k in g):
            by_stem.setdefault(k, []).append(i)
    return members, by_stem


def related(stem: str) -> list[tuple[str, str]]:
    """(word, stem) of the groups that hold a word with this stem, except words with the same stem."""
    members, by_stem = _index()
    found = dict.fromkeys(m for i in by_stem.get(stem, ()) for m in members[i])
    return [(w, k) for w, k in found if k != stem]


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))
