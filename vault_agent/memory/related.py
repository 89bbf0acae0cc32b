"""The built-in related-terms table that lets lexical search find notes written in other words.

The table is related.txt, next to this module: one group per line of words
people use for the same thing (synonyms), or in the same breath about it
(associations: "teeth" and "dentist"). A query word found in a group brings
the group's other words into the query at a lower weight (query.py), and a
note's words bring theirs into the index (query.expansions). Lookup
is by the index's own stem (FTS5 porter), so "invoices", "invoicing" and
"invoice" find the same groups.

It also turns text into words as that tokenizer does (`words`, `fold`), so
that a question's words are the very tokens the index stored, in any script,
and prepares the text the index is given (`index_text`) and the phrase a
question's word is matched as (`phrase`): runs of Chinese, Japanese, Korean
and Thai letters as overlapping pairs, "ß" as "ss".
"""

from __future__ import annotations

import re
import sqlite3
import threading
from functools import lru_cache
from hashlib import sha1
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
# Letters of scripts written without spaces between words (Han, kana, hangul, Thai; the punctuation of their
# blocks, such as "・", stays out). unicode61 makes a whole run of them one token, where no word inside it
# ("デザイン" in "東京デザイン週間") could be found: the index is given such runs as overlapping pairs instead.
_PAIRED = ("\u0e01-\u0e3a\u0e40-\u0e4e\u1100-\u11ff\u3005-\u3007\u3031-\u3035\u303b\u3041-\u3096"
           "\u3099-\u309a\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf"
           "\u4e00-\u9fff\ua960-\ua97c\uac00-\ud7a3\ud7b0-\ud7fb\uf900-\ufaff\uff66-\uff9f\uffa0-\uffdc"
           "\U00020000-\U0003134f")
PAIRED = re.compile(f"[{_PAIRED}]")
_RUN = re.compile(f"[{_PAIRED}]+")
_RUN_AT_END = re.compile(f"[{_PAIRED}]+\\Z")


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
                # Casefolded as the index's text is ("Straße" is "strass" there), not split into pairs: a
                # word's stems stay whole, so "デザイン" does not meet "デザート" in a name by one pair.
                conn.executemany("INSERT INTO w(rowid, x) VALUES (?, ?)",
                                 [(i + 1, _casefolded(t)) for i, t in enumerate(rest)])
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
    conn.execute("INSERT INTO w(rowid, x) VALUES (1, ?)", (_casefolded(" ".join(single)),))
    by_offset = dict(conn.execute("SELECT offset, term FROM v"))
    if len(by_offset) != len(single) or max(by_offset) != len(single) - 1:
        return {}
    return {word: {by_offset[i]: 0} for i, word in enumerate(single)}


# What the tokenizer makes of each character it has been asked about (`_learn`), after the casefolding
# the index's text gets (index_text: "ß" is "ss"): in _FOLD its folded form ("" for an accent it drops;
# a character between words is kept), in _SPLIT the same with a space for a character between words.
# Asked of the tokenizer, not worked out in Python, because it folds by its own tables: it keeps "й",
# "が" and Hangul syllables that a Unicode normalization changes.
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
        probes = [(i + 1, f"a{_casefolded(c)}a") for i, c in enumerate(new) if not 0xD800 <= ord(c) <= 0xDFFF]
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


@lru_cache(maxsize=1)
def _casefolds() -> dict[int, str]:
    """The characters Python's casefold() changes beyond lower(), and what it makes of them: "ß" and "ẞ" are
    "ss", "ﬁ" is "fi", a final "ς" is "σ". unicode61 folds none of them, so "Straße" never met "Strasse".
    All are in Unicode's first plane. Worked out once (~30 ms), when the first text that is not ASCII comes."""
    return {i: c.casefold() for i in range(0x10000) if (c := chr(i)).casefold() != c.lower()}


@lru_cache(maxsize=1)
def _changed() -> re.Pattern[str]:
    """A character that index_text changes."""
    return re.compile(f"[{_PAIRED}{re.escape(''.join(map(chr, _casefolds())))}]")


def _casefolded(text: str) -> str:
    return text if text.isascii() else text.translate(_casefolds())


def index_text(text: str) -> str:
    """The text as the index is given it: casefolded beyond what unicode61 folds (_casefolds), and each run of
    _PAIRED letters as its overlapping pairs. `text` itself when there is nothing to change, as in almost
    every Latin text: that check is all that the index build spends on it."""
    if text.isascii() or not _changed().search(text):
        return text
    return _RUN.sub(_pairs, _casefolded(text))


def _pairs(run: re.Match[str]) -> str:
    # Every character starts a token: the pairs, then the last character alone, so that a one-character
    # word is found wherever it stands ("猫" in "黒猫" as in "猫が"). Spaced off from the letters around.
    chars = run.group()
    return " " + " ".join(chars[i:i + 2] for i in range(len(chars))) + " "


def run_pairs(word: str) -> list[str]:
    """The overlapping pairs of a word that is a run of three or more _PAIRED letters, else []."""
    if len(word) < 3 or not _RUN.fullmatch(word):
        return []
    return [word[i:i + 2] for i in range(len(word) - 1)]


def phrase(word: str) -> tuple[str, bool]:
    """The word as the phrase of index tokens it is matched as (index_text), and whether its last token is
    matched as a prefix.

    A word that ends in a run of _PAIRED letters may go on in the text ("デザイン" in "デザイン週間"), where
    the lone last character the index holds for the end of a run is the start of a pair instead: the
    phrase of a run of two or more ends at its last pair, and a one-character run is a prefix ("猫" finds
    "猫が"). A word's pairs in a row are the word, wherever it stands in a run; a pair alone is not.
    """
    tokens = index_text(word).split()
    end = _RUN_AT_END.search(word)
    if end is not None and len(end.group()) > 1:
        del tokens[-1]
    return " ".join(tokens), end is not None and len(end.group()) == 1


@lru_cache(maxsize=1)
def _table_text() -> str:
    return resources.files(__package__).joinpath("related.txt").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def table_digest() -> str:
    """A hash of the table's groups: the index holds each document's related terms (query.expansions), so an
    index made with other groups is built anew (an edited comment changes none)."""
    return sha1("\n".join(" ".join(g) for g in _groups()).encode("utf-8")).hexdigest()


def _groups() -> list[list[str]]:
    return [line.split() for line in _table_text().splitlines() if line.strip() and not line.startswith("#")]


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

