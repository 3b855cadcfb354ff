"""ONNX Runtime backend: windows -> length-aware sub-batches -> logits -> pooled per-item scores."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from serve.bundle import MODEL_FILE, Bundle
from serve.formatting import Encoded, PairFormatter, pool_logits, sigmoid
from serve.taxonomy import groups_of


class DeviceUnavailable(RuntimeError):
    """The requested execution device cannot be used here; the message says why."""


def make_session(model_path: str, device: str = "cpu", threads: int = 0, spinning: bool = True) -> ort.InferenceSession:
    """An ONNX Runtime session on CPU or CUDA. ``spinning=False`` stops ONNX Runtime's worker threads from
    busy-waiting between calls, which frees the cores for the HTTP server between requests."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if device == "cuda":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise DeviceUnavailable(
                "--device cuda needs the onnxruntime-gpu package and a CUDA GPU; installed onnxruntime "
                f"offers only {available}. Install onnxruntime-gpu (and not onnxruntime) to serve on GPU."
            )
        providers: list[str] = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif device == "cpu":
        providers = ["CPUExecutionProvider"]
    else:
        raise DeviceUnavailable(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    session = ort.InferenceSession(model_path, sess_options=options, providers=providers)
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        # onnxruntime-gpu falls back to the CPU silently when CUDA or cuDNN libraries cannot be loaded
        raise DeviceUnavailable(
            "onnxruntime-gpu is installed but its CUDA provider did not start (no GPU visible, or CUDA/cuDNN "
            "libraries missing: see ONNX Runtime's warnings above); refusing to serve a GPU request on the CPU"
        )
    return session


def model_file_for(bundle: Bundle, device: str) -> str:
    """Which of the bundle's models a device runs: int8 on CPU, the float export (fp16 first) on CUDA."""
    if device != "cuda":
        return MODEL_FILE
    name = bundle.float_model_file
    if name is None:
        raise DeviceUnavailable(
            f"bundle {bundle.name} {bundle.version} has no float export (model.fp16.onnx or model.fp32.onnx), "
            "and its int8 model uses dynamic-quantization kernels that ONNX Runtime runs only on the CPU; "
            "train with `intima train --float fp16` (the default) to get one, or serve with --device cpu"
        )
    return name


@dataclass
class Prediction:
    """Scores and decisions for one item."""

    scores: dict[str, float]
    present: list[str]
    groups: dict[str, bool]
    n_windows: int = 1


@dataclass
class StageTimes:
    tokenize_s: float = 0.0
    inference_s: float = 0.0
    windows: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Classifier:
    """Everything needed to score (prompt, reply) pairs with a bundle; no torch, no transformers."""

    def __init__(
        self,
        bundle: Bundle,
        device: str = "cpu",
        threads: int = 0,
        max_batch_tokens: int = 4096,
        model_file: str | None = None,
        spinning: bool = True,
    ):
        """``model_file`` overrides the device's default model (e.g. the fp16 export on the CPU, for parity)."""
        self.bundle = bundle
        self.labels = bundle.labels
        self.thresholds = np.array([bundle.thresholds[lab] for lab in self.labels], dtype=np.float32)
        self.formatter = PairFormatter.from_file(str(bundle.file("tokenizer.json")), bundle.format_spec)
        self.device = device
        self.model_file = model_file or model_file_for(bundle, device)
        self.session = make_session(str(bundle.file(self.model_file)), device, threads, spinning)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.max_batch_tokens = max_batch_tokens

    def encode(self, prompts: list[str | None], replies: list[str]) -> Encoded:
        return self.formatter.encode(prompts, replies)

    def window_logits(self, enc: Encoded) -> np.ndarray:
        """Run all windows, sorted by length and cut into sub-batches of at most max_batch_tokens."""
        order = sorted(range(enc.n_windows), key=lambda i: len(enc.input_ids[i]))
        out = np.zeros((enc.n_windows, len(self.labels)), dtype=np.float32)
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and (end - start + 1) * len(enc.input_ids[order[end]]) <= self.max_batch_tokens:
                end += 1
            rows = order[start:end]
            feed = self.formatter.pad([enc.input_ids[i] for i in rows], [enc.token_type_ids[i] for i in rows])
            feed = {k: v for k, v in feed.items() if k in self.input_names}
            logits = self.session.run(["logits"], feed)[0]
            out[rows] = logits
            start = end
        return out

    def score_encoded(self, enc: Encoded) -> np.ndarray:
        """Per-item sigmoid scores, shape [n_items, n_labels]."""
        return sigmoid(pool_logits(self.window_logits(enc), enc.owner, enc.n_items))

    def scores(self, prompts: list[str | None], replies: list[str]) -> np.ndarray:
        return self.score_encoded(self.encode(prompts, replies))

    def decide(self, scores: np.ndarray, n_windows: list[int] | None = None) -> list[Prediction]:
        """Apply the per-label thresholds and derive groups."""
        results = []
        for row_index, row in enumerate(scores):
            present = [lab for lab, s, t in zip(self.labels, row, self.thresholds, strict=True) if s >= t]
            results.append(
                Prediction(
                    scores={lab: round(float(s), 6) for lab, s in zip(self.labels, row, strict=True)},
                    present=present,
                    groups=groups_of(present),
                    n_windows=n_windows[row_index] if n_windows else 1,
                )
            )
        return results

    def classify(self, prompts: list[str | None], replies: list[str]) -> list[Prediction]:
        enc = self.encode(prompts, replies)
        counts = enc.windows_per_item().tolist()
        return self.decide(self.score_encoded(enc), counts)

    def warm_up(self) -> float:
        """Run a few representative inputs so the first request is not slow; returns seconds taken."""
        t0 = time.perf_counter()
        sample = "Thanks for telling me. Here are a few things that might help. " * 12
        self.scores(["warm-up"], [sample])
        self.scores([None, "hi"], ["ok", "Sure, here is a short answer."])
        return time.perf_counter() - t0
