"""Grouped, stratified, deterministic train/dev/test assignment.

Records that share a (normalised) prompt or a near-duplicate reply form one group, and a group never
spans two splits. Groups are placed one by one, rarest label first, into the split whose share of that
label lags its target most (iterative stratification); ties break on a hash of the group, so the same
corpus always yields the same splits.

With ``keep_existing`` (the command's default) records that already have a split keep it, so the test
split stays fixed as the corpus grows: new records that join an existing group take that group's split,
and new groups are placed against the counts the fixed records already hold.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from data.near_dup import near_duplicate_pairs, normalise
from data.records import SPLITS, Record

TARGET: dict[str, float] = {"train": 0.70, "dev": 0.15, "test": 0.15}


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def group_records(records: list[Record]) -> list[list[int]]:
    """Indices grouped by shared prompt or near-duplicate reply/prompt."""
    uf = _UnionFind(len(records))
    by_prompt: dict[str, int] = {}
    for i, rec in enumerate(records):
        key = normalise(rec.prompt)
        if key in by_prompt:
            uf.union(i, by_prompt[key])
        else:
            by_prompt[key] = i
    for a, b, _ in near_duplicate_pairs([r.reply for r in records]):
        uf.union(a, b)
    for a, b, _ in near_duplicate_pairs([r.prompt for r in records]):
        uf.union(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(uf.find(i), []).append(i)
    return list(groups.values())


def _stable_hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def assign_splits(records: list[Record], keep_existing: bool = False) -> dict[str, str]:
    """Map record id -> split."""
    groups = group_records(records)
    label_totals: Counter[str] = Counter(lab for r in records for lab in r.labels)
    keys = [min(records[i].id for i in g) for g in groups]

    def rarity(g_idx: int) -> tuple[float, int]:
        labels = {lab for i in groups[g_idx] for lab in records[i].labels}
        rarest = min((label_totals[lab] for lab in labels), default=10**9)
        return (rarest, _stable_hash(keys[g_idx]))

    have: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    size: Counter[str] = Counter()
    total = len(records)
    out: dict[str, str] = {}

    def place(members: list[int], split: str) -> None:
        for i in members:
            out[records[i].id] = split
            size[split] += 1
            have[split].update(records[i].labels)

    free: list[int] = []
    for g_idx, members in enumerate(groups):
        fixed = [records[i].split for i in members if keep_existing and records[i].split in SPLITS]
        if not fixed:
            free.append(g_idx)
            continue
        # a group keeps the split its first fixed member has; `data check` reports a group that spans two
        for i in members:
            place([i], records[i].split if records[i].split in SPLITS else str(fixed[0]))

    for g_idx in sorted(free, key=rarity):
        members = groups[g_idx]
        labels = [lab for i in members for lab in records[i].labels]
        rarest = min(set(labels), key=lambda lab: (label_totals[lab], lab)) if labels else None

        def need(split: str, rarest: str | None = rarest) -> tuple[float, float, int]:
            # relative gaps: how far a split lags its own target for the group's rarest label, then in size;
            # relative, so the large train split does not win merely because its targets are larger
            size_gap = (TARGET[split] * total - size[split]) / (TARGET[split] * total)
            if rarest is None:
                return (size_gap, size_gap, -SPLITS.index(split))
            want = TARGET[split] * label_totals[rarest]
            return ((want - have[split][rarest]) / want, size_gap, -SPLITS.index(split))

        place(members, max(SPLITS, key=need))
    return out
