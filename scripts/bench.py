"""Throughput and latency benchmark: raw ONNX Runtime vs the HTTP service vs a naive PyTorch server.

Everything runs in one invocation on the same inputs (replies of the corpus test split), so the printed
ratios compare like with like on this machine. Servers listen on 127.0.0.1 only.

    python scripts/bench.py [--bundle models] [--n 160] [--clients 1 8 32] [--no-torch] [--no-label-file]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data.records import corpus_files, load_records  # noqa: E402
from serve.bundle import load_bundle  # noqa: E402
from serve.runtime import Classifier  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not become ready")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def raw_throughput(clf: Classifier, prompts: list[str | None], replies: list[str], batch: int = 32) -> float:
    clf.scores(prompts[:batch], replies[:batch])
    t0 = time.perf_counter()
    for i in range(0, len(replies), batch):
        clf.scores(prompts[i : i + batch], replies[i : i + batch])
    return len(replies) / (time.perf_counter() - t0)


def single_latency_pairs(
    clf: Classifier, url: str, prompts: list[str | None], replies: list[str], reps: int = 80
) -> dict[str, list[float]]:
    """Single-reply latency, paired call by call: the raw call and the HTTP call on the same reply run back
    to back, so the machine's drift cancels in their difference. Also collects the server's own
    stage times (x-*-time headers) to show where the difference goes."""
    out: dict[str, list[float]] = {"raw": [], "server": [], "diff": [], "server_compute": []}
    with httpx.Client(timeout=60) as client:
        for i in range(reps):
            prompt, reply = prompts[i % len(prompts)], replies[i % len(replies)]
            t0 = time.perf_counter()
            clf.scores([prompt], [reply])
            t1 = time.perf_counter()
            r = client.post(url, json={"prompt": prompt, "reply": reply})
            t2 = time.perf_counter()
            r.raise_for_status()
            out["raw"].append(t1 - t0)
            out["server"].append(t2 - t1)
            out["diff"].append((t2 - t1) - (t1 - t0))
            out["server_compute"].append(float(r.headers.get("x-compute-time", "nan")) / 1000)
    return out


async def drive(
    url: str, items: list[dict], clients: int, body_key: str = "classify"
) -> tuple[float, list[float], int]:
    """``clients`` concurrent loops, each sending one request at a time, until every item is sent."""
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    latencies: list[float] = []
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            payload = item if body_key == "classify" else {"inputs": [item.get("prompt") or "", item["reply"]]}
            r = await client.post(url, json=payload)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        took = time.perf_counter() - t0
    return len(items) / took, latencies, errors


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)


NAIVE_SERVER = r"""
import sys, uvicorn, torch
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline
from train.model import base_model_dir, load_classifier
from serve.taxonomy import LABELS
torch.set_num_threads(int(sys.argv[2]))
model = load_classifier(base_model_dir(), list(LABELS)).eval()
from transformers import AutoTokenizer
pipe = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(str(base_model_dir())),
                top_k=None, function_to_apply="sigmoid", truncation=True, max_length=256, device=-1)
app = FastAPI()
class Req(BaseModel):
    reply: str
    prompt: str | None = None
@app.post("/classify")
def classify(req: Req):
    out = pipe({"text": req.prompt or "", "text_pair": req.reply})
    return {"scores": {d["label"]: d["score"] for d in out}}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", default=str(ROOT / "models"))
    ap.add_argument("--n", type=int, default=160, help="number of replies")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-torch", action="store_true", help="skip the naive PyTorch server")
    ap.add_argument("--no-label-file", dest="label_file", action="store_false", help="skip timing `intima label`")
    ap.add_argument("--label-rows", type=int, default=320, help="rows in the file `intima label` is timed on")
    ap.add_argument("--rounds", type=int, default=3, help="alternating raw/server rounds per client count")
    ns = ap.parse_args()

    records = [r for r in load_records(corpus_files(ROOT / "data" / "annotations")) if r.split == "test"]
    records = (records * (ns.n // max(1, len(records)) + 1))[: ns.n]
    prompts: list[str | None] = [r.prompt for r in records]
    replies = [r.reply for r in records]
    items = [{"prompt": p, "reply": r} for p, r in zip(prompts, replies, strict=True)]
    words = [len(r.split()) for r in replies]
    bundle = load_bundle(ns.bundle)
    clf = Classifier(bundle, threads=ns.threads)
    mid = [i for i, w in enumerate(words) if 120 <= w <= 180] or list(range(len(words)))
    print(
        f"bundle {bundle.name} {bundle.version}; {len(replies)} replies, median {int(np.median(words))} words; "
        f"{ns.threads} ORT threads; CPU cores {os.cpu_count()}"
    )

    # raw baseline: the best of several batch sizes (on small CPUs larger batches are not always faster)
    raw_by_batch = {b: raw_throughput(clf, prompts, replies, batch=b) for b in (1, 8, 32)}
    raw_batch, raw = max(raw_by_batch.items(), key=lambda kv: kv[1])
    shown = ", ".join(f"batch {b}: {r:.1f}" for b, r in raw_by_batch.items())
    print(f"\nraw ONNX Runtime replies/s: {shown}; best {raw:.1f} (batch {raw_batch}) is the reference")

    env = dict(os.environ, INTIMA_THREADS=str(ns.threads), INTIMA_MAX_QUEUE_WINDOWS="100000")
    port = free_port()
    server = start(
        [
            sys.executable,
            "-m",
            "serve.cli",
            "serve",
            "--bundle",
            ns.bundle,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env,
    )
    rows = []
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready")
        url = f"http://127.0.0.1:{port}/classify"
        asyncio.run(drive(url, items[:16], 4))  # warm the connection pool
        single = single_latency_pairs(clf, url, [prompts[i] for i in mid], [replies[i] for i in mid])
        print(
            f"single ~150-word reply, {len(single['raw'])} paired calls: server p50 "
            f"{pct(single['server'], 50):.2f} ms, "
            f"raw {pct(single['raw'], 50):.2f} ms; median paired difference {pct(single['diff'], 50):+.2f} ms "
            f"(server-side tokenize+queue+inference p50 {pct(single['server_compute'], 50):.2f} ms)"
        )
        # each round measures raw (at its best batch size) and then the server on the same replies; the ratio is
        # taken per round and its median reported, so the machine's drift (+-20 % here) hits both sides alike
        print(
            f"\n{ns.rounds} alternating rounds per row; medians\n"
            f"{'clients':>8} {'replies/s':>10} {'raw r/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'server/raw':>11} "
            f"{'ratio range':>12} {'errors':>7}"
        )
        for c in ns.clients:
            ratios, rates, raws, lat, errors = [], [], [], [], 0
            for _ in range(ns.rounds):
                raws.append(raw_throughput(clf, prompts, replies, batch=raw_batch))
                rate, lat_round, err = asyncio.run(drive(url, items, c))
                rates.append(rate)
                ratios.append(rate / raws[-1])
                lat += lat_round
                errors += err
            ratio, rate = statistics.median(ratios), statistics.median(rates)
            rows.append({"clients": c, "rate": rate, "p50": pct(lat, 50), "p99": pct(lat, 99), "ratio": ratio})
            print(
                f"{c:>8} {rate:>10.1f} {statistics.median(raws):>8.1f} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f} "
                f"{ratio:>11.2f} {min(ratios):>5.2f}-{max(ratios):<6.2f} {errors:>7}"
            )
    finally:
        server.terminate()
        server.wait(10)

    if ns.label_file:
        from serve.label_file import LabelOptions, label_file

        reps = max(1, ns.label_rows // len(items))
        label_items = (items * reps)[: ns.label_rows]
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
            src.write_text("".join(json.dumps(i) + "\n" for i in label_items))
            summary = label_file(
                LabelOptions(input=src, output=dst, bundle=bundle.path, progress=False, threads=ns.threads)
            )
        rate = summary.rows / summary.seconds
        raw_now = raw_throughput(clf, prompts, replies, batch=raw_batch)  # measured right after, same conditions
        print(
            f"\nintima label on {summary.rows} rows of the same replies (model load included): {rate:.1f} "
            f"replies/s; raw just after {raw_now:.1f}; label/raw ratio {rate / raw_now:.2f}"
        )

    if not ns.no_torch:
        port = free_port()
        naive = start([sys.executable, "-c", NAIVE_SERVER, str(port), str(ns.threads)], env)
        try:
            wait_ready(f"http://127.0.0.1:{port}/docs", timeout=300)
            url = f"http://127.0.0.1:{port}/classify"
            c = max(ns.clients)
            rate, lat, errors = asyncio.run(drive(url, items, c))
            best = max(r["rate"] for r in rows) if rows else float("nan")
            print(
                f"\nnaive PyTorch pipeline server, {c} clients: {rate:.1f} replies/s, p50 {pct(lat, 50):.1f} ms "
                f"({errors} errors); intima server is {best / rate:.2f}x faster"
            )
        finally:
            naive.terminate()
            naive.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
