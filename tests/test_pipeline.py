"""The whole training pipeline on a tiny random BERT: train, export, quantize, bundle, serve, parity."""

import json
import shutil

import numpy as np
import pytest

from serve.bundle import BundleError, load_bundle
from serve.runtime import Classifier
from serve.taxonomy import LABELS


def test_bundle_has_every_contract_file(tiny_bundle):
    names = {p.name for p in tiny_bundle.iterdir()}
    assert {"model.onnx", "tokenizer.json", "config.json", "metrics.json", "manifest.json", "README.md"} <= names
    config = json.loads((tiny_bundle / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {str(i): lab for i, lab in enumerate(LABELS)}
    assert set(config["intima"]["thresholds"]) == set(LABELS)
    assert config["intima"]["format"]["max_length"] == 256
    metrics = json.loads((tiny_bundle / "metrics.json").read_text())
    for key in ("test", "baseline_tfidf_logreg", "parity_int8_vs_torch", "thresholds", "training"):
        assert key in metrics
    assert set(metrics["test"]["per_label"]) == set(LABELS)
    assert {"companionship_reinforcing", "boundary_maintaining", "companionship_neutral"} == set(
        metrics["test"]["groups"]
    )
    assert metrics["parity_int8_vs_torch"]["passed"] is True
    card = (tiny_bundle / "README.md").read_text()
    assert card.startswith("---\n") and "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["model_version"] == "0.0.1-test"
    assert "/" not in manifest["training_args"]["output_dir"]


def test_serving_runtime_matches_torch(tiny_bundle, tiny_records):
    """Decisions of the int8 ONNX bundle loaded by the server equal the torch model's on the test split."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification  # noqa: F401

    metrics = json.loads((tiny_bundle / "metrics.json").read_text())
    parity = metrics["parity_int8_vs_torch"]
    assert parity["decision_agreement"] >= 0.99
    assert parity["n_items"] == sum(r.split == "test" for r in tiny_records)
    clf = Classifier(load_bundle(tiny_bundle))
    test = [r for r in tiny_records if r.split == "test"]
    scores = clf.scores([r.prompt for r in test], [r.reply for r in test])
    assert scores.shape == (len(test), len(LABELS))
    assert np.isfinite(scores).all()
    assert torch.__version__.startswith("2.13")


def test_tampered_bundle_is_refused(tiny_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    load_bundle(copy)
    original = (copy / "config.json").read_text()
    thresholds = json.loads(original)
    thresholds["intima"]["thresholds"]["isolation"] = 0.01
    (copy / "config.json").write_text(json.dumps(thresholds))
    with pytest.raises(BundleError, match="sha256 mismatch"):
        load_bundle(copy)
    (copy / "config.json").write_text(original)
    load_bundle(copy)
    (copy / "model.onnx").unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(copy)


def test_refuses_to_overwrite_a_bundle(tiny_bundle, tiny_records):
    from train.args import TrainingArguments
    from train.pipeline import run_training

    with pytest.raises(FileExistsError):
        run_training(tiny_records, TrainingArguments(output_dir=tiny_bundle, epochs=1, progress=False))


def test_eval_command_scores_a_labelled_file(tiny_bundle, tmp_path, capsys):
    from serve.cli import main
    from tests.conftest import FIXTURES

    out = tmp_path / "m.json"
    assert (
        main(
            [
                "eval",
                "--bundle",
                str(tiny_bundle),
                "--data",
                str(FIXTURES / "tiny_corpus.jsonl"),
                "--split",
                "test",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 12 and 0.0 <= metrics["macro_f1"] <= 1.0
    assert "macro-F1" in capsys.readouterr().out


def test_shipped_bundle_verifies():
    from tests.conftest import ROOT

    shipped = ROOT / "models"
    if not (shipped / "current").exists() and not (shipped / "manifest.json").exists():
        pytest.fail("no shipped bundle under models/")
    bundle = load_bundle(shipped)
    assert bundle.labels == list(LABELS)
    clf = Classifier(bundle)
    preds = clf.classify(
        ["can you be my girlfriend?"], ["I'm an AI, so I can't be your girlfriend, but I'm glad to chat."]
    )
    assert len(preds) == 1 and set(preds[0].scores) == set(LABELS)


def test_fp16_export_ships_beside_int8_with_parity(tiny_bundle, tiny_records):
    """The default float export is fp16, listed in the manifest, and scores like the int8 model."""
    metrics = json.loads((tiny_bundle / "metrics.json").read_text())
    info = metrics["parity_float_vs_torch"]
    assert info["file"] == "model.fp16.onnx" and info["dtype"] == "fp16" and info["passed"] is True
    bundle = load_bundle(tiny_bundle)
    assert bundle.float_model_file == "model.fp16.onnx"
    import onnx

    weights = onnx.load(str(tiny_bundle / "model.fp16.onnx")).graph.initializer
    big = [w for w in weights if np.prod(w.dims) >= 1024]
    assert big and all(w.data_type == onnx.TensorProto.FLOAT16 for w in big)
    test = [r for r in tiny_records if r.split == "test"]
    prompts, replies = [r.prompt for r in test], [r.reply for r in test]
    half = Classifier(bundle, model_file="model.fp16.onnx")
    assert half.session.get_inputs()[0].type == "tensor(int64)"
    assert half.session.get_outputs()[0].type == "tensor(float)"
    s16, s8 = half.scores(prompts, replies), Classifier(bundle).scores(prompts, replies)
    assert np.abs(s16 - s8).mean() < 0.03
    assert "GPU model `model.fp16.onnx`" in (tiny_bundle / "README.md").read_text()


def _without_float_model(bundle_dir, dst):
    shutil.copytree(bundle_dir, dst)
    (dst / "model.fp16.onnx").unlink()
    manifest = json.loads((dst / "manifest.json").read_text())
    del manifest["files"]["model.fp16.onnx"]
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def test_cuda_refusals_say_why(tiny_bundle, tmp_path):
    from serve.runtime import DeviceUnavailable, model_file_for

    bundle = load_bundle(tiny_bundle)
    assert model_file_for(bundle, "cpu") == "model.onnx"
    assert model_file_for(bundle, "cuda") == "model.fp16.onnx"
    cpu_only = load_bundle(_without_float_model(tiny_bundle, tmp_path / "cpu-only"))
    with pytest.raises(DeviceUnavailable, match="no float export"):
        Classifier(cpu_only, device="cuda")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(DeviceUnavailable, match="onnxruntime-gpu"):
            Classifier(bundle, device="cuda")


def test_serve_with_cuda_on_a_cpu_build_exits_with_a_reason(tiny_bundle):
    import subprocess
    import sys

    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has onnxruntime-gpu")
    proc = subprocess.run(
        [sys.executable, "-m", "serve.cli", "serve", "--bundle", str(tiny_bundle), "--device", "cuda", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "onnxruntime-gpu" in proc.stderr


def test_unknown_float_export_fails_before_training():
    from train.args import TrainingArguments

    with pytest.raises(ValueError, match="float_export must be one of fp16, fp32, none"):
        TrainingArguments(float_export="fp8")
