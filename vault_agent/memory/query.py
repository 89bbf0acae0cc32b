"""Turning a question into search terms: words, stopwords out, related terms in, FTS5-safe quoting.

Plain BM25 only finds notes that share the question's words. Four things
widen that without embeddings: the index stems (FTS5 porter: "invoices" and
"invoicing" meet), the related-terms table (related.py: "dentist" finds
"dental"), the same table on the notes' side (`expansions`: the index holds
the related terms of each document's name and description, so "receipt"
meets "refund" through "reimbursement", a group each is in), and an OR
query, so a note matching some of the words still ranks. Related terms count
for less than the question's own words (search.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .related import PAIRED, phrase, related, stems, words

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can cannot could did do does doing done down during each either else ever few for from
further get gets getting got had has have having he her here hers herself him himself his how i if in into
is it its itself just let lets me might mine more most much must my myself nor of off on once only or other
ought our ours ourselves out over own please quite rather really same say says she should so some something
such tell than that the their theirs them themselves then there these they thing things this those through
thus to too under until up upon us very was we were what whatever when whenever where wherever whether which
while who whoever whom whose why will with within without would yet you your yours yourself yourselves
anything everything nothing someone anyone everyone somebody anybody one ones way ways kind sort lot lots
know knew remind recall remember need needs use used using want wanted like again still already
not no go goes going went gone come comes coming came make makes making made take takes taking took taken put puts
give gives giving gave given keep keeps keeping kept happen happens happened usually often ever
""".split())
MAX_RELATED_PER_WORD = 8
RELATED_WEIGHT = 0.7
PREFIX_MIN_STEM = 5  # shorter stems as prefixes match too much ("car" -> "career")


@dataclass(frozen=True)
class Term:
    text: str
    weight: float  # 1.0 for the question's own words, RELATED_WEIGHT for related ones
    source: str = ""  # for a related term: the question's word it stands for
    prefix: bool = False  # also match longer words starting with its stem ("baker" -> "bakery")

    def fts(self) -> str:
        """The term as an FTS5 string: the phrase of the tokens the index holds for it (related.phrase)."""
        tokens, open_end = phrase(self.text)
        quoted = '"' + tokens.replace('"', '""') + '"'
        return quoted + "*" if self.prefix or open_end else quoted


def terms(query: str, *, expand: bool = True) -> list[Term]:
    """The question's content words (weight 1), then their related terms (lower weight), one per stem."""
    candidates = _content(words(query))
    seen: set[str] = set()
    own: list[tuple[Term, str]] = []
    for w, k in zip(candidates, stems(candidates)):
        if k and k not in seen:
            seen.add(k)
            own.append((Term(w, 1.0, prefix=len(k) >= PREFIX_MIN_STEM), k))
    if not expand:
        return [t for t, _ in own]
    extra: list[Term] = []
    for term, k in own:
        for r, rk in _related_terms(k):
            if rk not in seen:
                seen.add(rk)
                extra.append(Term(r, RELATED_WEIGHT, term.text))
    return [t for t, _ in own] + extra


def expansions(texts: list[str]) -> list[str]:
    """Per text, the related terms of its content words that it does not say itself, as one text: what the
    index holds in a document's `related` column, so that a question's word and a note's word meet when
    they share a related term, or when one is in the other's group ("teeth" finds "dentist" by either road).
    Many texts at once: their words are stemmed in one pass of the tokenizer, not one a text."""
    said = [[w for w in _content(words(text)) if not w.isdigit()] for text in texts]
    distinct = list(dict.fromkeys(w for ws in said for w in ws))
    stem_of = dict(zip(distinct, stems(distinct)))
    out: list[str] = []
    for ws in said:
        own = dict.fromkeys(stem_of[w] for w in ws if stem_of[w])
        found: dict[str, str] = {}
        for k in own:
            for r, rk in _related_terms(k):
                if rk not in own:
                    found.setdefault(rk, r)
        out.append(" ".join(found.values()))
    return out


def _content(candidates: list[str]) -> list[str]:
    return [w for w in candidates if w not in STOPWORDS and (len(w) > 1 or w.isdigit() or PAIRED.search(w))]


@functools.lru_cache(maxsize=20_000)
def _related_terms(stem: str) -> tuple[tuple[str, str], ...]:
    """The first MAX_RELATED_PER_WORD related terms of a stem that are no stopwords: a build asks for the
    same few thousand stems again and again."""
    return tuple((r, rk) for r, rk in related(stem)[:MAX_RELATED_PER_WORD] if r not in STOPWORDS)
