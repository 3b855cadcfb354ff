"""`intima select`: the rows the current model is least sure about, for people to annotate next.

Uncertainty of a row is ``1 - 2 * min_label |score - threshold|`` (1 when some label sits exactly on its
threshold). The file is streamed; only the top ``k`` rows are held in memory.
"""

from __future__ import annotations

import heapq
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from serve.bundle import load_bundle
from serve.runtime import Classifier
from serve.tabular import file_format, read_rows


def select_uncertain(
    path: Path,
    bundle_dir: Path,
    k: int,
    out: Path,
    reply_field: str = "reply",
    prompt_field: str = "prompt",
    chunk: int = 64,
) -> int:
    clf = Classifier(load_bundle(bundle_dir))
    heap: list[tuple[float, int, dict[str, Any]]] = []
    counter = itertools.count()
    rows = (
        r
        for r in read_rows(path, file_format(path))
        if isinstance(r.get(reply_field), str) and r[reply_field].strip() and "__error__" not in r
    )
    while batch := list(itertools.islice(rows, chunk)):
        scores = clf.scores([b.get(prompt_field) for b in batch], [b[reply_field] for b in batch])
        margin = np.abs(scores - clf.thresholds)
        for row, m, s in zip(batch, margin, scores, strict=True):
            j = int(np.argmin(m))
            item = row | {
                "uncertainty": round(float(1 - 2 * m[j]), 4),
                "closest_label": clf.labels[j],
                "scores": {lab: round(float(v), 4) for lab, v in zip(clf.labels, s, strict=True)},
            }
            entry = (float(item["uncertainty"]), next(counter), item)
            if len(heap) < k:
                heapq.heappush(heap, entry)
            else:
                heapq.heappushpop(heap, entry)
    chosen = [e[2] for e in sorted(heap, key=lambda e: (-e[0], e[1]))]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), encoding="utf-8")
    return len(chosen)
