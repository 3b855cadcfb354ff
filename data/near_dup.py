"""Exact and near-duplicate detection with shingled Jaccard similarity."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9']+")


def normalise(text: str) -> str:
    """Lower-case word sequence, used for exact-duplicate and shingle comparison."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, size: int = 5) -> frozenset[str]:
    words = normalise(text).split()
    if len(words) < size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def near_duplicate_pairs(texts: Sequence[str], threshold: float = 0.8, size: int = 5) -> list[tuple[int, int, float]]:
    """Pairs (i, j, jaccard) with shingled Jaccard >= threshold, found through an inverted index."""
    sets = [shingles(t, size) for t in texts]
    index: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for sh in s:
            index[sh].append(i)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for members in index.values():
        if len(members) < 2 or len(members) > 200:
            continue
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1 :]:
                shared[(a, b)] += 1
    pairs = []
    for (a, b), inter in shared.items():
        union = len(sets[a]) + len(sets[b]) - inter
        score = inter / union if union else 0.0
        if score >= threshold:
            pairs.append((a, b, round(score, 3)))
    return sorted(pairs)
