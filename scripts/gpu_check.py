"""GPU check: parity and throughput of `--device cuda` on the bundle's float export, on the test split.

Needs onnxruntime-gpu (instead of onnxruntime) and a bundle with a float export (`intima train` writes
model.fp16.onnx by default). Prints why and exits 2 when either is missing; exits 1 when the GPU scores
disagree with the same float model on the CPU on more than 1 % of decisions.

    python scripts/gpu_check.py [--bundle models] [--n 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import raw_throughput as rate  # noqa: E402  (scripts/ is on sys.path when run as a script)

from data.records import corpus_files, load_records  # noqa: E402
from serve.bundle import load_bundle  # noqa: E402
from serve.runtime import Classifier, DeviceUnavailable  # noqa: E402


def agreement(a: np.ndarray, b: np.ndarray, thresholds: np.ndarray) -> tuple[float, str]:
    """Share of equal decisions, and a line describing it with the score differences."""
    agree = float(((a >= thresholds) == (b >= thresholds)).mean())
    diff = np.abs(a - b)
    return agree, f"decisions agree {agree:.4f}, mean |diff| {diff.mean():.5f}, max {diff.max():.5f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=str(ROOT / "models"))
    ap.add_argument("--n", type=int, default=400, help="test-split replies to score")
    ns = ap.parse_args()
    bundle = load_bundle(ns.bundle)
    try:
        gpu = Classifier(bundle, device="cuda", max_batch_tokens=16384)
    except DeviceUnavailable as exc:
        print(f"GPU check not possible here: {exc}", file=sys.stderr)
        return 2
    print(f"bundle {bundle.name} {bundle.version}: {gpu.model_file} on {gpu.session.get_providers()[0]}")
    cpu_float = Classifier(bundle, model_file=gpu.model_file)
    cpu_int8 = Classifier(bundle)
    records = [r for r in load_records(corpus_files(ROOT / "data" / "annotations")) if r.split == "test"][: ns.n]
    prompts: list[str | None] = [r.prompt for r in records]
    replies = [r.reply for r in records]
    s_gpu = gpu.scores(prompts, replies)
    s_float, s_int8 = cpu_float.scores(prompts, replies), cpu_int8.scores(prompts, replies)
    t = cpu_int8.thresholds
    same_file, same_file_line = agreement(s_gpu, s_float, t)
    print(f"parity GPU {gpu.model_file} vs the same file on the CPU: {same_file_line}")
    print(
        f"parity GPU {gpu.model_file} vs int8 on the CPU (what CPU serving answers): {agreement(s_gpu, s_int8, t)[1]}"
    )
    g = max(rate(gpu, prompts, replies, batch=b) for b in (8, 32, 64))
    c = rate(cpu_int8, prompts, replies, batch=1)
    print(f"throughput ({len(records)} replies): GPU {g:.1f} replies/s, CPU int8 {c:.1f} replies/s, ratio {g / c:.1f}x")
    return 0 if same_file >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
