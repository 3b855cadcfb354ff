"""`intima promote NEW`: evaluate the candidate and the current bundle on the same fixed test data,
refuse a regression, write a side-by-side comparison, and switch ``models/current`` atomically."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.records import Record
from serve.bundle import load_bundle, resolve_bundle_dir
from serve.runtime import Classifier
from train.dataset import to_set
from train.evaluation import evaluate_predictions

POINTER = "current"


@dataclass
class Decision:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    table: str = ""
    comparison: dict[str, Any] = field(default_factory=dict)


def evaluate_bundle(path: Path, records: list[Record]) -> dict[str, Any]:
    bundle = load_bundle(path)
    clf = Classifier(bundle)
    data = to_set(records, bundle.labels)
    scores = clf.scores(data.prompts, data.replies)
    metrics = evaluate_predictions(scores, data.y.astype(int), bundle.labels, clf.thresholds)
    metrics["version"] = bundle.version
    return metrics


def compare(
    candidate: dict[str, Any], current: dict[str, Any], margin: float, label_margin: float, floors: dict[str, float]
) -> Decision:
    reasons = []
    drop = current["macro_f1"] - candidate["macro_f1"]
    if drop > margin:
        reasons.append(f"macro-F1 drops by {drop:.4f} (> allowed {margin})")
    lines = [
        f"| label | current {current['version']} | candidate {candidate['version']} | floor |",
        "|---|---|---|---|",
    ]
    for lab, cur in current["per_label"].items():
        new = candidate["per_label"].get(lab, {"f1": 0.0})
        floor = floors.get(lab, max(0.0, cur["f1"] - label_margin))
        flag = "" if new["f1"] >= floor else " **below floor**"
        if new["f1"] < floor:
            reasons.append(f"{lab} F1 {new['f1']:.3f} below its floor {floor:.3f}")
        lines.append(f"| {lab} | {cur['f1']:.3f} | {new['f1']:.3f}{flag} | {floor:.3f} |")
    lines.append(f"| **macro-F1** | {current['macro_f1']:.4f} | {candidate['macro_f1']:.4f} | -{margin} |")
    lines.append(f"| micro-F1 | {current['micro_f1']:.4f} | {candidate['micro_f1']:.4f} | |")
    return Decision(
        not reasons,
        reasons,
        "\n".join(lines),
        {"candidate": candidate, "current": current, "margin": margin, "label_margin": label_margin},
    )


def switch_pointer(models_dir: Path, bundle_dir: Path) -> None:
    """Point models/current at ``bundle_dir`` (a folder inside models/) with an atomic rename."""
    rel = os.path.relpath(bundle_dir.resolve(), models_dir.resolve())
    if rel.startswith(".."):
        raise ValueError(f"{bundle_dir} is not inside {models_dir}; bundles must live under the models folder")
    tmp = models_dir / f".{POINTER}.tmp"
    tmp.write_text(rel + "\n")
    os.replace(tmp, models_dir / POINTER)


def promote(
    candidate_dir: Path,
    models_dir: Path,
    test_records: list[Record],
    margin: float = 0.01,
    label_margin: float = 0.10,
    floors: dict[str, float] | None = None,
    force: bool = False,
) -> Decision:
    if not test_records:
        raise ValueError("no test records to compare on")
    candidate_dir = resolve_bundle_dir(candidate_dir)
    load_bundle(candidate_dir)  # verify before anything else
    current_dir = resolve_bundle_dir(models_dir)
    if current_dir.resolve() == candidate_dir.resolve():
        raise ValueError(f"{candidate_dir.name} is already the current model")
    decision = compare(
        evaluate_bundle(candidate_dir, test_records),
        evaluate_bundle(current_dir, test_records),
        margin,
        label_margin,
        floors or {},
    )
    report_dir = models_dir / "promotions"
    report_dir.mkdir(exist_ok=True)
    name = f"{decision.comparison['candidate']['version']}-vs-{decision.comparison['current']['version']}"
    verdict = "promoted" if decision.ok else ("forced" if force else "refused")
    (report_dir / f"{name}.md").write_text(
        f"# Promotion check: {verdict}\n\nTest records: {len(test_records)}\n\n{decision.table}\n\n"
        + ("\n".join(f"- {r}" for r in decision.reasons) or "No regression beyond the margins.")
        + "\n"
    )
    (report_dir / f"{name}.json").write_text(json.dumps(decision.comparison | {"verdict": verdict}, indent=2))
    if decision.ok or force:
        switch_pointer(models_dir, candidate_dir)
    return decision
