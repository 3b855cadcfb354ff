"""Metrics for a multi-label prediction matrix: per label, macro/micro, groups, calibration, long replies."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from serve.taxonomy import GROUPS, LABEL_GROUP

METRIC_PATH = Path(__file__).resolve().parent / "metrics" / "multilabel_f1"


@lru_cache(maxsize=1)
def _metric() -> Any:
    import evaluate

    return evaluate.load(str(METRIC_PATH))


def f1_report(pred: np.ndarray, ref: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per-label P/R/F1 and macro/micro F1 through the local evaluate module."""
    if len(pred) == 0:
        return {"per_label": {}, "macro_f1": 0.0, "micro_f1": 0.0, "micro_precision": 0.0, "micro_recall": 0.0}
    return dict(
        _metric().compute(predictions=pred.astype(int).tolist(), references=ref.astype(int).tolist(), label_names=names)
    )


def group_matrix(matrix: np.ndarray, labels: list[str]) -> np.ndarray:
    """Derived group indicators (reinforcing, boundary, neutral) from a label matrix."""
    reinforcing = matrix[:, [i for i, lab in enumerate(labels) if LABEL_GROUP[lab] == GROUPS[0]]].any(axis=1)
    boundary = matrix[:, [i for i, lab in enumerate(labels) if LABEL_GROUP[lab] == GROUPS[1]]].any(axis=1)
    neutral = ~(reinforcing | boundary)
    return np.stack([reinforcing, boundary, neutral], axis=1).astype(int)


def expected_calibration_error(scores: np.ndarray, ref: np.ndarray, bins: int = 10) -> float:
    """ECE over every (item, label) score, equal-width bins."""
    s = scores.ravel()
    y = ref.ravel()
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (s >= lo) & ((s < hi) if hi < 1 else (s <= hi))
        if mask.any():
            ece += mask.mean() * abs(s[mask].mean() - y[mask].mean())
    return float(ece)


def evaluate_predictions(
    scores: np.ndarray,
    ref: np.ndarray,
    labels: list[str],
    thresholds: np.ndarray,
    long_mask: np.ndarray | None = None,
) -> dict[str, Any]:
    """Everything metrics.json reports for one model on one labelled set."""
    pred = (scores >= thresholds).astype(int)
    report = f1_report(pred, ref, labels)
    groups = f1_report(group_matrix(pred, labels), group_matrix(ref, labels), list(GROUPS))
    out: dict[str, Any] = {
        "n": int(len(ref)),
        "macro_f1": report["macro_f1"],
        "micro_f1": report["micro_f1"],
        "per_label": report["per_label"],
        "groups": {g: groups["per_label"][g] for g in GROUPS},
        "group_macro_f1": groups["macro_f1"],
        "ece": expected_calibration_error(scores, ref),
        "exact_match": float((pred == ref).all(axis=1).mean()) if len(ref) else 0.0,
    }
    if long_mask is not None and long_mask.any():
        long_report = f1_report(pred[long_mask], ref[long_mask], labels)
        out["long_replies"] = {
            "n": int(long_mask.sum()),
            "macro_f1": long_report["macro_f1"],
            "micro_f1": long_report["micro_f1"],
        }
    return out


def tune_thresholds(scores: np.ndarray, ref: np.ndarray, lo: float = 0.15, hi: float = 0.85) -> np.ndarray:
    """Per-label threshold maximising dev F1 on a grid, clipped to [lo, hi]; 0.5 where dev has no positives."""
    grid = np.round(np.arange(0.05, 0.96, 0.025), 3)
    out = np.full(scores.shape[1], 0.5, dtype=np.float32)
    for j in range(scores.shape[1]):
        if ref[:, j].sum() == 0:
            continue
        best, best_t = -1.0, 0.5
        for t in grid:
            p = scores[:, j] >= t
            tp = float((p & (ref[:, j] == 1)).sum())
            f1 = 2 * tp / (p.sum() + ref[:, j].sum()) if p.sum() + ref[:, j].sum() else 0.0
            # prefer thresholds nearer 0.5 on ties: more stable on unseen data
            if f1 > best + 1e-9 or (abs(f1 - best) <= 1e-9 and abs(t - 0.5) < abs(best_t - 0.5)):
                best, best_t = f1, float(t)
        out[j] = float(np.clip(best_t, lo, hi))
    return out
