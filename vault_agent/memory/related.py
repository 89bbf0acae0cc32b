"""The built-in related-terms table that lets lexical search find notes written in other words.

The table is related.txt, next to this module: one group per line of words
people use for the same thing (synonyms), or in the same breath about it
(associations: "teeth" and "dentist"). A query word found in a group brings
the group's other words into the query at a lower weight (query.py). Lookup
is by the index's own stem (FTS5 porter), so "invoices", "invoicing" and
"invoice" find the same groups.

It also turns text into words as that tokenizer does (`words`, `fold`), so
that a question's words are the very tokens the index stored, in any script.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from functools import lru_cache
from importlib import resources

# The index's tokenizer (catalog.py). Marks count as letters: by default unicode61 splits words at them,
# so Hindi "भाषा" would be stored as "भ" and "ष". remove_diacritics still drops the accents that Latin
# text writes as separate marks ("cafe\u0301" is "cafe").
TOKENIZE = "porter unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
_STEMMER_LOCK = threading.Lock()
_WORD = re.compile(r"[^\W_]+")  # on ASCII text, exactly the tokenizer's words: letters and digits
# Texts already tokenized. A search stems the names of every note it scores, and the same names come
# back search after search: tokenizing them again was a tenth of a search at 100k notes.
_seen: dict[str, dict[str, int]] = {}
_SEEN_MAX = 50_000


@lru_cache(maxsize=1)
def _stemmer() -> sqlite3.Connection:
    # The index's own tokenizer, so that "closing" and "close" meet here exactly when they meet in a search.
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute(f'CREATE VIRTUAL TABLE w USING fts5(x, tokenize="{TOKENIZE}")')
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(w, 'instance')")
    conn.execute(f'CREATE VIRTUAL TABLE f USING fts5(x, tokenize="{TOKENIZE.removeprefix("porter ")}")')
    conn.execute("CREATE VIRTUAL TABLE fv USING fts5vocab(f, 'instance')")
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


# What the tokenizer makes of each character it has been asked about (`_learn`): in _FOLD its folded
# form ("" for an accent it drops; a character between words is kept), in _SPLIT the same with a space
# for a character between words. Asked of the tokenizer, not worked out in Python, because it folds
# by its own tables: it keeps "ß", "й", "が" and Hangul syllables that a Unicode normalization changes.
_FOLD: dict[int, str] = {i: chr(i).lower() for i in range(128)}
_SPLIT: dict[int, str] = {i: chr(i).lower() if chr(i).isalnum() else " " for i in range(128)}
_known: set[str] = {chr(i) for i in range(128)}


def fold(word: str) -> str:
    """Lowercase, without the accents the index's tokenizer removes: how a word is compared with its stems."""
    if word.isascii():  # the common case, and ~3x faster
        return word.lower()
    if not _known.issuperset(word):
        _learn(word)
    return word.translate(_FOLD)


def words(text: str) -> list[str]:
    """The text's words as the index's tokenizer splits and folds them, before stemming."""
    if text.isascii():
        return _WORD.findall(text.lower())
    if not _known.issuperset(text):
        _learn(text)
    return text.translate(_SPLIT).split()


def _learn(text: str) -> None:
    """Ask the tokenizer about the characters of the text not yet in _FOLD, all in one statement."""
    with _STEMMER_LOCK:
        new = list(set(text).difference(_known))
        # A lone surrogate (a file name's undecodable byte) cannot be given to SQLite; it is no letter.
        probes = [(i + 1, f"a{c}a") for i, c in enumerate(new) if not 0xD800 <= ord(c) <= 0xDFFF]
        conn = _stemmer()
        conn.execute("DELETE FROM f")
        conn.executemany("INSERT INTO f(rowid, x) VALUES (?, ?)", probes)
        tokens: dict[int, list[str]] = {}
        for term, doc in conn.execute("SELECT term, doc FROM fv"):
            tokens.setdefault(doc, []).append(term)
        for i, c in enumerate(new):
            found = tokens.get(i + 1, [])
            # "a" + c + "a" is one token when c is part of a word; c's folded form is its middle.
            _FOLD[ord(c)], _SPLIT[ord(c)] = (found[0][1:-1],) * 2 if len(found) == 1 else (c, " ")
        _known.update(new)


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

