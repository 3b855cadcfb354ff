"""Show that `intima label` streams: peak memory of the whole command on files of growing size.

    python scripts/label_memory.py [--rows 1000 8000] [--bundle models]

Each run labels a JSONL file of short synthetic rows in a fresh process and prints its peak RSS; flat
numbers across sizes mean memory does not grow with the file.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPLIES = [
    "Sure, here is a quick answer.",
    "I'm always here for you, come back anytime.",
    "As an AI I don't have feelings, but I'm glad to help.",
    "Please talk to a friend or a counsellor about this.",
]


def peak_rss_mb(rows: int, bundle: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with src.open("w") as fh:
            for i in range(rows):
                fh.write(json.dumps({"id": i, "prompt": "hi", "reply": f"{REPLIES[i % 4]} ({i})"}) + "\n")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import resource, sys; from serve.cli import main; rc = main(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)",
                "label",
                str(src),
                "--out",
                str(dst),
                "--bundle",
                bundle,
                "--no-progress",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        took = time.perf_counter() - t0
        return int(proc.stdout.strip().splitlines()[-1]) / 1024, rows / took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, nargs="+", default=[1000, 8000])
    ap.add_argument("--bundle", default=str(ROOT / "models"))
    ns = ap.parse_args()
    _ = resource
    print(f"{'rows':>8} {'peak RSS MB':>12} {'rows/s':>8}")
    for n in ns.rows:
        mb, rate = peak_rss_mb(n, ns.bundle)
        print(f"{n:>8} {mb:>12.1f} {rate:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
