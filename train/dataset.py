"""Corpus -> arrays for training and evaluation, plus extra annotation sources."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.records import Record, corpus_files, load_records
from serve.taxonomy import LABELS


@dataclass
class LabelledSet:
    """Parallel lists of prompts, replies and a 0/1 label matrix."""

    ids: list[str]
    prompts: list[str | None]
    replies: list[str]
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: np.ndarray) -> LabelledSet:
        idx = np.flatnonzero(mask)
        return LabelledSet(
            [self.ids[i] for i in idx], [self.prompts[i] for i in idx], [self.replies[i] for i in idx], self.y[idx]
        )


def to_set(records: list[Record], labels: list[str] | tuple[str, ...] = LABELS) -> LabelledSet:
    y = np.array([[int(lab in r.labels) for lab in labels] for r in records], dtype=np.float32)
    y = y.reshape(len(records), len(labels))
    return LabelledSet([r.id for r in records], [r.prompt for r in records], [r.reply for r in records], y)


def load_corpus(data_dir: Path) -> list[Record]:
    records = load_records(corpus_files(data_dir))
    missing = [r.id for r in records if r.split is None]
    if missing:
        raise ValueError(f"{len(missing)} records have no split (e.g. {missing[0]}); run `intima data split`")
    return records


def by_split(records: list[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {"train": [], "dev": [], "test": []}
    for r in records:
        out[str(r.split)].append(r)
    return out


def data_hash(records: list[Record]) -> str:
    """sha256 over the records used for training, independent of file order."""
    digest = hashlib.sha256()
    for row in sorted(json.dumps(r.to_json(), sort_keys=True, ensure_ascii=False) for r in records):
        digest.update(row.encode())
    return digest.hexdigest()
