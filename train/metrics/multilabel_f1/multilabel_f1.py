"""Multi-label precision / recall / F1 as a local `evaluate` module (loads offline by path)."""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Per-label precision, recall and F1 plus macro and micro F1 for multi-label 0/1 matrices."
_KWARGS = """
predictions: list of 0/1 lists, one per example. references: same shape.
label_names: optional list of names for the columns.
Returns per_label {name: {precision, recall, f1, support}}, macro_f1, micro_f1, micro_precision, micro_recall.
"""


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class MultilabelF1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
        )

    def _compute(self, predictions, references, label_names=None):  # type: ignore[no-untyped-def]
        pred = np.asarray(predictions, dtype=np.int64)
        ref = np.asarray(references, dtype=np.int64)
        names = list(label_names) if label_names is not None else [str(i) for i in range(pred.shape[1])]
        per_label = {}
        f1s = []
        for j, name in enumerate(names):
            tp = float(((pred[:, j] == 1) & (ref[:, j] == 1)).sum())
            fp = float(((pred[:, j] == 1) & (ref[:, j] == 0)).sum())
            fn = float(((pred[:, j] == 0) & (ref[:, j] == 1)).sum())
            p, r, f = _prf(tp, fp, fn)
            per_label[name] = {"precision": p, "recall": r, "f1": f, "support": int(ref[:, j].sum())}
            f1s.append(f)
        tp = float(((pred == 1) & (ref == 1)).sum())
        fp = float(((pred == 1) & (ref == 0)).sum())
        fn = float(((pred == 0) & (ref == 1)).sum())
        mp, mr, mf = _prf(tp, fp, fn)
        return {
            "per_label": per_label,
            "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
            "micro_f1": mf,
            "micro_precision": mp,
            "micro_recall": mr,
        }
