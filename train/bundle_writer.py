"""Write a model bundle folder: config, tokenizer, metrics, model card and a verifying manifest."""

from __future__ import annotations

import json
import platform
import shutil
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from serve.bundle import CARD_FILE, CONFIG_FILE, MANIFEST_FILE, METRICS_FILE, MODEL_FILE, sha256_file
from serve.formatting import FormatSpec
from serve.taxonomy import LABEL_GROUP
from train.model import BASE_MODEL_ID, BASE_MODEL_PACKAGE

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
LIBRARIES = ("torch", "transformers", "onnxruntime", "onnx", "tokenizers", "numpy", "scikit-learn", BASE_MODEL_PACKAGE)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def copy_tokenizer(src_dir: Path, dst_dir: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src_dir / name).exists():
            shutil.copyfile(src_dir / name, dst_dir / name)
    if not (dst_dir / "tokenizer.json").exists():
        raise FileNotFoundError(f"no tokenizer.json in {src_dir}")


def write_config(
    dst_dir: Path,
    model_config: dict[str, Any],
    labels: list[str],
    thresholds: dict[str, float],
    spec: FormatSpec,
    name: str,
    version: str,
) -> None:
    config = dict(model_config)
    config.update(
        id2label={str(i): lab for i, lab in enumerate(labels)},
        label2id={lab: i for i, lab in enumerate(labels)},
        problem_type="multi_label_classification",
        intima={
            "name": name,
            "version": version,
            "labels": labels,
            "groups": {lab: LABEL_GROUP[lab] for lab in labels},
            "thresholds": {lab: round(float(thresholds[lab]), 4) for lab in labels},
            "format": spec.to_dict(),
            "input": "text pair: prompt (user message, context) then reply; see format",
            "score": "sigmoid of the max over windows of each label's logit",
        },
    )
    write_json(dst_dir / CONFIG_FILE, config)


def write_manifest(dst_dir: Path, name: str, version: str, data_sha256: str, extra: dict[str, Any]) -> dict[str, Any]:
    """sha256 of every file in the folder (except the manifest itself) plus provenance."""
    files = {p.name: sha256_file(p) for p in sorted(dst_dir.iterdir()) if p.is_file() and p.name != MANIFEST_FILE}
    manifest = {
        "model_name": name,
        "model_version": version,
        "base_model": BASE_MODEL_ID,
        "base_model_package": f"{BASE_MODEL_PACKAGE}=={_version(BASE_MODEL_PACKAGE)}",
        "training_data_sha256": data_sha256,
        "libraries": {lib: _version(lib) for lib in LIBRARIES},
        "python": platform.python_version(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": files,
        **extra,
    }
    write_json(dst_dir / MANIFEST_FILE, manifest)
    return manifest


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def _float_line(info: dict[str, Any] | None) -> str:
    if not info:
        return "No float export: this bundle serves on the CPU only."
    return (
        f"GPU model `{info['file']}` ({info['dtype']}, ONNX Runtime CUDA provider): decisions agree with fp32 torch "
        f"on {info['decision_agreement']:.2%} of test labels (scored on the CPU at export time)."
    )


def write_model_card(
    dst_dir: Path, name: str, version: str, labels: list[str], metrics: dict[str, Any], data_summary: dict[str, Any]
) -> None:
    test = metrics.get("test", {})
    base = metrics.get("baseline_tfidf_logreg", {})
    rows = []
    for lab in labels:
        m = test.get("per_label", {}).get(lab, {})
        b = base.get("per_label", {}).get(lab, {})
        rows.append(
            f"| `{lab}` | {_fmt(m.get('precision', 0))} | {_fmt(m.get('recall', 0))} | {_fmt(m.get('f1', 0))} "
            f"| {_fmt(b.get('f1', 0))} | {m.get('support', 0)} |"
        )
    front = "\n".join(
        [
            "---",
            "language: en",
            "license: apache-2.0",
            "library_name: onnxruntime",
            "pipeline_tag: text-classification",
            f"base_model: {BASE_MODEL_ID}",
            "tags: [multi-label-classification, onnx, int8, intima, ai-companionship, safety]",
            "model-index:",
            f"- name: {name}",
            "  results:",
            "  - task: {type: text-classification, name: multi-label companionship behaviour}",
            "    dataset: {name: intima-classifier annotations v2 (test split), type: custom}",
            "    metrics:",
            f"    - {{type: f1, name: macro-F1, value: {test.get('macro_f1', 0):.4f}}}",
            f"    - {{type: f1, name: micro-F1, value: {test.get('micro_f1', 0):.4f}}}",
            "---",
        ]
    )
    parity = metrics.get("parity_int8_vs_torch", {})
    body = f"""
# {name} {version}

Labels each assistant reply of a chatbot with the ten companionship behaviours of the INTIMA benchmark
(multi-label, sigmoid scores with per-label thresholds). Input is a text pair: the user message as
context, then the reply. Replies longer than one window are split into overlapping windows whose
per-label logits are max-pooled (see `config.json`, section `intima.format`).

Fine-tuned from `{BASE_MODEL_ID}` (Apache-2.0), exported to ONNX and quantized to int8
(dynamic, per-channel) for CPU inference with ONNX Runtime.

## Training data
{data_summary.get("n_records", 0)} hand-written, hand-annotated records written for this project
(train {data_summary.get("train", 0)}, dev {data_summary.get("dev", 0)}, test {data_summary.get("test", 0)}),
covering the 31 INTIMA prompt codes plus everyday requests, in six assistant voices.
Training-data sha256: `{data_summary.get("sha256", "")}`. See `data/README.md` in the project.

## Test-split results
macro-F1 **{test.get("macro_f1", 0):.3f}** (TF-IDF + logistic regression baseline {base.get("macro_f1", 0):.3f}),
micro-F1 {test.get("micro_f1", 0):.3f}, expected calibration error {test.get("ece", 0):.3f}.

| label | precision | recall | F1 | baseline F1 | support |
|---|---|---|---|---|---|
{chr(10).join(rows)}

int8 vs fp32 torch: decisions agree on {parity.get("decision_agreement", 0):.2%} of test labels,
mean absolute score difference {parity.get("mean_abs_score_diff", 0):.4f}.
{_float_line(metrics.get("parity_float_vs_torch"))}

## Limitations
The corpus is English, written and first-labelled for this project by language-model writing
assistants under the project's guidelines and checked by a blind second annotation (see the data card);
it is not the INTIMA judge's output and has no measured agreement with it. Scores are for triage and
aggregate measurement, not for decisions about individual people.
"""
    (dst_dir / CARD_FILE).write_text(front + "\n" + body, encoding="utf-8")


__all__ = [
    "MODEL_FILE",
    "METRICS_FILE",
    "copy_tokenizer",
    "write_config",
    "write_json",
    "write_manifest",
    "write_model_card",
]
