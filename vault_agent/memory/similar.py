"""Near-duplicate detection for notes: word shingles, one-permutation MinHash bands, exact Jaccard check.

Comparing every pair of 100k notes is 5e9 comparisons; instead each note gets
a signature of BINS minimum shingle hashes (one hash per shingle, binned by
its value), and only notes that agree on a whole band of the signature are
compared exactly. With bands of 3 of 18 bins, two notes with Jaccard 0.8
meet with probability 0.99, two unrelated notes almost never.

A sentence that many notes share (a template) would put its shingles into
most signatures, every band would collide and nearly every pair be compared
(3,000 such notes: 18 s instead of 1). So a shingle that is a signature
minimum of more than COMMON_SHARE of the notes (and of COMMON_MIN_NOTES) is
left out of the signatures; the exact Jaccard still counts it. Ordinary notes
have no such shingle, so which pairs are found does not change for them.
"""

from __future__ import annotations

import zlib
from collections import Counter
from itertools import chain
from typing import Hashable, Iterable

from .related import words

SHINGLE = 3
BINS = 18
BAND = 3
COMMON_SHARE = 0.01
# Below this many notes a bucket costs little to compare in full: a group of near-duplicates stays found.
COMMON_MIN_NOTES = 100


def shingles(text: str) -> frozenset[int]:
    """Hashes of the text's overlapping 3-word runs (of its words, lowercased, accents removed)."""
    ws = words(text)
    if len(ws) < SHINGLE:
        return frozenset(zlib.crc32(w.encode()) for w in ws)
    return frozenset(zlib.crc32(" ".join(ws[i:i + SHINGLE]).encode()) for i in range(len(ws) - SHINGLE + 1))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _signature(sh: frozenset[int] | set[int]) -> tuple[int, ...]:
    mins = [-1] * BINS
    for h in sh:
        b = h % BINS
        if mins[b] < 0 or h < mins[b]:
            mins[b] = h
    return tuple(mins)


def _without_common(sets: list[frozenset[int]], sigs: list[tuple[int, ...]]) -> None:
    """Recompute, without the common shingles, the signatures that hold one (see the module docstring).

    Leaving some out makes others the minima, so this repeats until no minimum is common. A note made of
    common shingles only keeps its full signature: exact copies of a template note still meet.
    """
    limit = max(COMMON_MIN_NOTES, COMMON_SHARE * len(sets))
    common: set[int] = set()
    while True:
        # A hash falls in one bin only, so it is at most once in a signature.
        new = {h for h, n in Counter(chain.from_iterable(sigs)).items() if n > limit and h >= 0} - common
        if not new:
            return
        common |= new
        for i, sig in enumerate(sigs):
            if not common.isdisjoint(sig):
                rest = sets[i] - common
                if rest:
                    sigs[i] = _signature(rest)


def similar_pairs(items: Iterable[tuple[Hashable, str]], threshold: float) -> list[tuple[Hashable, Hashable, float]]:
    """(a, b, Jaccard) for the pairs of items whose texts have Jaccard >= threshold, a before b in input order."""
    keys: list[Hashable] = []
    sets: list[frozenset[int]] = []
    for key, text in items:
        keys.append(key)
        sets.append(shingles(text))
    sigs = [_signature(sh) for sh in sets]
    _without_common(sets, sigs)
    buckets: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for i, sig in enumerate(sigs):
        for band in range(0, BINS, BAND):
            part = sig[band:band + BAND]
            if all(v < 0 for v in part):
                continue  # an empty band says nothing: short notes would all meet there
            buckets.setdefault((band, part), []).append(i)
    candidates: set[tuple[int, int]] = set()
    for members in buckets.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                candidates.add((members[x], members[y]))
    out = []
    for i, j in sorted(candidates):
        sim = jaccard(sets[i], sets[j])
        if sim >= threshold:
            out.append((keys[i], keys[j], sim))
    return out


def clusters(pairs: list[tuple[Hashable, Hashable, float]]) -> list[list[Hashable]]:
    """Connected groups of the pairs (union-find), each in first-seen order."""
    parent: dict[Hashable, Hashable] = {}

    def root(x: Hashable) -> Hashable:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    groups: dict[Hashable, list[Hashable]] = {}
    for x in parent:
        groups.setdefault(root(x), []).append(x)
    return [g for g in groups.values() if len(g) > 1]
