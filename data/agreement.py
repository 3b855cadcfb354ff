"""Inter-annotator agreement: per-label Cohen's kappa between the corpus labels and a blind second pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data.records import Record
from serve.taxonomy import LABELS


def cohen_kappa(a: list[int], b: list[int]) -> float:
    """Cohen's kappa for two binary raters; 1.0 when both are constant and equal."""
    n = len(a)
    if n == 0:
        return float("nan")
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1 - expected)


def load_second_pass(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out[str(row["id"])] = set(row["labels"])
    return out


def agreement(
    records: list[Record], second: dict[str, set[str]], first_override: dict[str, set[str]] | None = None
) -> dict[str, Any]:
    """Per-label kappa, percent agreement and positives for the records both passes labelled."""
    by_id = {r.id: r for r in records}
    ids = [i for i in second if i in by_id]
    first = {i: (first_override or {}).get(i, set(by_id[i].labels)) for i in ids}
    per_label: dict[str, dict[str, float]] = {}
    for lab in LABELS:
        a = [int(lab in first[i]) for i in ids]
        b = [int(lab in second[i]) for i in ids]
        per_label[lab] = {
            "kappa": round(cohen_kappa(a, b), 3),
            "agreement": round(sum(x == y for x, y in zip(a, b, strict=True)) / max(1, len(ids)), 3),
            "first_positives": sum(a),
            "second_positives": sum(b),
        }
    kappas = [v["kappa"] for v in per_label.values()]
    return {
        "n": len(ids),
        "per_label": per_label,
        "mean_kappa": round(sum(kappas) / len(kappas), 3),
        "exact_match": round(sum(first[i] == second[i] for i in ids) / max(1, len(ids)), 3),
    }
