"""`intima train`: corpus -> fine-tune -> thresholds -> evaluate (+ baseline) -> ONNX int8 -> bundle -> parity."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.records import Record
from serve.bundle import FP16_MODEL_FILE, FP32_MODEL_FILE, METRICS_FILE, MODEL_FILE, load_bundle
from serve.formatting import PairFormatter
from serve.runtime import Classifier
from serve.taxonomy import LABELS
from train.args import TrainingArguments
from train.baseline import TfidfBaseline
from train.bundle_writer import copy_tokenizer, write_config, write_json, write_manifest, write_model_card
from train.dataset import LabelledSet, by_split, data_hash, to_set
from train.evaluation import evaluate_predictions, tune_thresholds
from train.export import QUANTIZATIONS, ParityError, convert_fp16, export_onnx, parity, quantize_int8
from train.model import base_model_dir, load_classifier
from train.trainer import MilTrainer, pick_device, predict_scores


def default_version() -> str:
    return datetime.now(UTC).strftime("%Y.%m.%d-%H%M")


def long_reply_mask(formatter: PairFormatter, data: LabelledSet) -> np.ndarray:
    return formatter.encode(data.prompts, data.replies).windows_per_item() > 1


def export_float(
    fp32: Path, out: Path, args: TrainingArguments, reference: np.ndarray, thresholds: np.ndarray, test_set: LabelledSet
) -> dict[str, Any] | None:
    """Write the GPU model beside the int8 one: fp16 where it keeps parity with torch on the test split
    (scored here by ONNX Runtime on the CPU), else fp32. Returns what was shipped and its parity."""
    if args.float_export == "none":
        return None
    tried = []
    candidates = [FP16_MODEL_FILE, FP32_MODEL_FILE] if args.float_export == "fp16" else [FP32_MODEL_FILE]
    for name in candidates:
        if name == FP16_MODEL_FILE:
            convert_fp16(fp32, out / name)
        else:
            shutil.copyfile(fp32, out / name)
        scores = Classifier(load_bundle(out, verify=False), model_file=name).scores(test_set.prompts, test_set.replies)
        check = parity(reference, scores, thresholds, args.parity_min_agreement, args.parity_max_mean_abs)
        tried.append({"file": name} | check.to_dict())
        print(
            f"float export {name}: agreement {check.decision_agreement:.4f}, mean |diff| {check.mean_abs_diff:.5f}",
            flush=True,
        )
        if check.ok:
            return {"file": name, "dtype": name.split(".")[1]} | check.to_dict() | {"tried": tried}
        (out / name).unlink()
    raise ParityError(f"no float export kept parity with torch: {tried}")


def print_table(metrics: dict[str, Any], labels: list[str]) -> str:
    test, base = metrics["test"], metrics["baseline_tfidf_logreg"]
    lines = [f"{'label':<28}{'P':>7}{'R':>7}{'F1':>7}{'base F1':>9}{'support':>9}", "-" * 67]
    for lab in labels:
        m, b = test["per_label"][lab], base["per_label"][lab]
        lines.append(
            f"{lab:<28}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{b['f1']:>9.3f}{m['support']:>9}"
        )
    lines.append("-" * 67)
    lines.append(f"{'macro-F1':<42}{test['macro_f1']:>7.3f}{base['macro_f1']:>9.3f}")
    lines.append(f"{'micro-F1':<42}{test['micro_f1']:>7.3f}{base['micro_f1']:>9.3f}")
    for g, m in test["groups"].items():
        lines.append(f"{'group ' + g:<42}{m['f1']:>7.3f}{base['groups'][g]['f1']:>9.3f}")
    lines.append(f"{'calibration error (ECE)':<42}{test['ece']:>7.3f}{base['ece']:>9.3f}")
    if "long_replies" in test:
        lr = test["long_replies"]
        lines.append(
            f"{'macro-F1, replies > 1 window (n=' + str(lr['n']) + ')':<42}{lr['macro_f1']:>7.3f}"
            f"{base.get('long_replies', {}).get('macro_f1', 0):>9.3f}"
        )
    return "\n".join(lines)


def run_training(
    records: list[Record],
    args: TrainingArguments,
    model: torch.nn.Module | None = None,
    tokenizer_dir: Path | None = None,
    extra_train: list[Record] | None = None,
) -> Path:
    """Train and write a verified bundle to ``args.output_dir``; returns its path."""
    t0 = time.monotonic()
    labels = list(LABELS)
    splits = by_split(records)
    train_records = splits["train"] + list(extra_train or [])
    for name in ("train", "dev", "test"):
        if not (train_records if name == "train" else splits[name]):
            raise ValueError(f"the {name} split is empty")
    base_dir = args.base_model or base_model_dir()
    tok_dir = tokenizer_dir or base_dir
    formatter = PairFormatter.from_file(str(tok_dir / "tokenizer.json"), args.format)
    if model is None:
        model = load_classifier(base_dir, labels)
    train_set, dev_set, test_set = (
        to_set(train_records, labels),
        to_set(splits["dev"], labels),
        to_set(splits["test"], labels),
    )
    print(
        f"train {len(train_set)}  dev {len(dev_set)}  test {len(test_set)}  device {pick_device(args.device)}",
        flush=True,
    )

    result = MilTrainer(model, formatter, args).train(train_set, dev_set)
    device = pick_device(args.device)
    dev_scores = result.best_dev_scores
    if dev_scores is None:  # no epoch ran (re-export from a checkpoint)
        dev_scores = predict_scores(result.model, formatter, dev_set, device, progress=args.progress)
    thresholds = tune_thresholds(dev_scores, dev_set.y.astype(int))
    test_scores = predict_scores(result.model, formatter, test_set, device, progress=args.progress)
    long_mask = long_reply_mask(formatter, test_set)
    test_metrics = evaluate_predictions(test_scores, test_set.y.astype(int), labels, thresholds, long_mask)

    print("fitting the TF-IDF + logistic-regression baseline", flush=True)
    baseline = TfidfBaseline(args.seed).fit(train_set.prompts, train_set.replies, train_set.y.astype(int))
    base_thresholds = tune_thresholds(baseline.predict_proba(dev_set.prompts, dev_set.replies), dev_set.y.astype(int))
    base_scores = baseline.predict_proba(test_set.prompts, test_set.replies)
    base_metrics = evaluate_predictions(base_scores, test_set.y.astype(int), labels, base_thresholds, long_mask)

    out = Path(args.output_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new --out (bundles are never overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    version = args.model_version or default_version()
    if args.checkpoint_dir is not None:  # torch weights kept outside the bundle, for re-export
        result.model.save_pretrained(str(args.checkpoint_dir))
        copy_tokenizer(tok_dir, args.checkpoint_dir)
    copy_tokenizer(tok_dir, out)
    threshold_map = dict(zip(labels, thresholds.tolist(), strict=True))
    write_config(out, result.model.config.to_dict(), labels, threshold_map, args.format, args.model_name, version)
    used = train_records + splits["dev"]
    data_summary = {
        "n_records": len(records) + len(extra_train or []),
        "train": len(train_set),
        "dev": len(dev_set),
        "test": len(test_set),
        "sha256": data_hash(used),
    }
    metrics: dict[str, Any] = {
        "model_version": version,
        "test": test_metrics,
        "baseline_tfidf_logreg": base_metrics,
        "thresholds": threshold_map,
        "training": {
            "history": result.history,
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 1),
            "stopped_early": result.stopped_early,
            "args": args.to_dict() | {"format": args.format.to_dict()},
        },
        "data": data_summary,
    }
    manifest_extra = {"training_args": args.to_dict() | {"format": args.format.to_dict()}}
    write_json(out / METRICS_FILE, metrics)

    # parity gate: the bundle as the server loads it vs the torch model, on the test split; the first
    # quantization recipe that passes is kept
    tried = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(result.model, Path(tmp) / "model.fp32.onnx")
        for recipe in QUANTIZATIONS:
            quantize_int8(fp32, out / MODEL_FILE, recipe)
            write_manifest(out, args.model_name, version, data_summary["sha256"], manifest_extra)
            onnx_scores = Classifier(load_bundle(out)).scores(test_set.prompts, test_set.replies)
            check = parity(test_scores, onnx_scores, thresholds, args.parity_min_agreement, args.parity_max_mean_abs)
            tried.append({"recipe": recipe.name} | check.to_dict())
            print(
                f"quantization {recipe.name}: agreement {check.decision_agreement:.4f}, "
                f"mean |diff| {check.mean_abs_diff:.4f}",
                flush=True,
            )
            if check.ok:
                break
        metrics["parity_int8_vs_torch"] = check.to_dict() | {"recipe": tried[-1]["recipe"], "tried": tried}
        if check.ok:
            float_info = export_float(fp32, out, args, test_scores, thresholds, test_set)
            if float_info is not None:
                metrics["parity_float_vs_torch"] = float_info
    metrics["pipeline_seconds"] = round(time.monotonic() - t0, 1)
    write_json(out / METRICS_FILE, metrics)
    write_model_card(out, args.model_name, version, labels, metrics, data_summary)
    write_manifest(out, args.model_name, version, data_summary["sha256"], manifest_extra)
    print(print_table(metrics, labels))
    print(f"int8 parity: {json.dumps(check.to_dict())}")
    if not check.ok:
        failed = out.with_name(out.name + ".parity-failed")
        out.rename(failed)
        raise ParityError(
            f"int8 export disagrees with torch: agreement {check.decision_agreement:.4f} "
            f"(need {check.min_agreement}), mean |diff| {check.mean_abs_diff:.4f} (allowed {check.max_mean_abs}); "
            f"bundle moved to {failed}"
        )
    print(f"bundle written to {out} in {metrics['pipeline_seconds']} s (training {result.seconds:.0f} s)")
    return out
