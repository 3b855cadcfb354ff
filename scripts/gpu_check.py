"""GPU check: parity and throughput of `--device cuda` against the CPU int8 model, on the test split.

Needs onnxruntime-gpu (instead of onnxruntime) and a bundle with a float export (`intima train
--keep-float` writes model.fp32.onnx). Prints why and exits 2 when either is missing.

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
from serve.bundle import FLOAT_MODEL_FILE, load_bundle  # noqa: E402
from serve.runtime import Classifier, DeviceUnavailable  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", default=str(ROOT / "models"))
    ap.add_argument("--n", type=int, default=400)
    ns = ap.parse_args()
    bundle = load_bundle(ns.bundle)
    if not bundle.file(FLOAT_MODEL_FILE).exists():
        print(f"no {FLOAT_MODEL_FILE} in {bundle.path}: retrain with `intima train --keep-float`", file=sys.stderr)
        return 2
    try:
        gpu = Classifier(bundle, device="cuda")
    except DeviceUnavailable as exc:
        print(f"GPU check not possible here: {exc}", file=sys.stderr)
        return 2
    cpu = Classifier(bundle)
    records = [r for r in load_records(corpus_files(ROOT / "data" / "annotations")) if r.split == "test"][: ns.n]
    prompts: list[str | None] = [r.prompt for r in records]
    replies = [r.reply for r in records]
    s_gpu, s_cpu = gpu.scores(prompts, replies), cpu.scores(prompts, replies)
    agree = float(((s_gpu >= cpu.thresholds) == (s_cpu >= cpu.thresholds)).mean())
    print(
        f"parity float-on-GPU vs int8-on-CPU: decisions agree {agree:.4f}, "
        f"mean |diff| {np.abs(s_gpu - s_cpu).mean():.4f}, max {np.abs(s_gpu - s_cpu).max():.4f}"
    )
    g, c = rate(gpu, prompts, replies), rate(cpu, prompts, replies)
    print(f"throughput: GPU {g:.1f} replies/s, CPU {c:.1f} replies/s, ratio {g / c:.1f}x")
    return 0 if agree >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
