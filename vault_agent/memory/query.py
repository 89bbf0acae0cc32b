"""Turning a question into search terms: words, stopwords out, related terms in, FTS5-safe quoting.

Plain BM25 only finds notes that share the question's words. Three things
widen that without embeddings: the index stems (FTS5 porter: "invoices" and
"invoicing" meet), the related-terms table (related.py: "dentist" finds
"dental"), and an OR query, so a note matching some of the words still ranks.
Related terms count for less than the question's own words (search.py).
"""

from __future__ import annotations

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
    candidates = [w for w in words(query) if w not in STOPWORDS and (len(w) > 1 or w.isdigit() or PAIRED.search(w))]
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
        for r, rk in related(k)[:MAX_RELATED_PER_WORD]:
            if rk not in seen and r not in STOPWORDS:
                seen.add(rk)
                extra.append(Term(r, RELATED_WEIGHT, term.text))
    return [t for t, _ in own] + extra
