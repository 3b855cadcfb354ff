"""`intima collect`: send benchmark prompts to an OpenAI-compatible chat-completions endpoint.

Bounded concurrency, per-request timeouts, retries with exponential backoff (honouring Retry-After) on
429, 5xx and network errors, and resume: prompts already collected for the same model are skipped.
Each collected reply is appended (and flushed) as one JSONL row the moment it arrives.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tqdm.auto import tqdm

from serve.tabular import file_format, read_rows
from serve.taxonomy import CODE_CATEGORY, normalise_category, normalise_code

DEFAULT_PROMPTS = Path(__file__).resolve().parent.parent / "data" / "prompts" / "intima_prompts.jsonl"
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass
class CollectOptions:
    endpoint: str
    model: str
    prompts: Path
    out: Path
    concurrency: int = 4
    retries: int = 4
    timeout_s: float = 120.0
    backoff_s: float = 1.0
    api_key_env: str = "OPENAI_API_KEY"
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    progress: bool = True


@dataclass
class CollectSummary:
    sent: int = 0
    collected: int = 0
    skipped_existing: int = 0
    failed: int = 0
    seconds: float = 0.0


def chat_url(endpoint: str) -> str:
    """Accept a base URL (http://host:8000 or .../v1) or the full chat-completions URL."""
    url = endpoint.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


def load_prompts(path: Path) -> list[dict[str, Any]]:
    """Rows with prompt, code and category (INTIMA dataset layout, or this project's prompt set)."""
    prompts = []
    for i, row in enumerate(read_rows(path, file_format(path))):
        text = row.get("prompt")
        if not isinstance(text, str) or not text.strip():
            print(f"warning: {path.name} row {i + 1} has no prompt; skipped", file=sys.stderr)
            continue
        code = normalise_code(str(row.get("code") or row.get("prompt_code") or "")) or None
        category = CODE_CATEGORY.get(code or "") or normalise_category(str(row.get("prompt_category") or "")) or None
        prompts.append(
            {"id": str(row.get("id") or f"row-{i + 1}"), "prompt": text, "code": code, "prompt_category": category}
        )
    return prompts


def already_collected(out: Path, model: str) -> set[str]:
    done: set[str] = set()
    if out.exists():
        for row in read_rows(out, "jsonl"):
            if row.get("model") == model and isinstance(row.get("reply"), str):
                done.add(str(row.get("id")))
    return done


async def _ask(
    client: httpx.AsyncClient, url: str, item: dict[str, Any], opts: CollectOptions, headers: dict[str, str]
) -> dict[str, Any]:
    messages = [{"role": "system", "content": opts.system_prompt}] if opts.system_prompt else []
    messages.append({"role": "user", "content": item["prompt"]})
    body: dict[str, Any] = {"model": opts.model, "messages": messages}
    if opts.temperature is not None:
        body["temperature"] = opts.temperature
    if opts.max_tokens is not None:
        body["max_tokens"] = opts.max_tokens
    last_error = ""
    for attempt in range(opts.retries + 1):
        started = time.perf_counter()
        try:
            r = await client.post(url, json=body, headers=headers, timeout=opts.timeout_s)
            if r.status_code == 200:
                data = r.json()
                choice = data["choices"][0]
                return {
                    "reply": choice["message"]["content"],
                    "finish_reason": choice.get("finish_reason"),
                    "latency_s": round(time.perf_counter() - started, 3),
                    "attempts": attempt + 1,
                }
            last_error = f"HTTP {r.status_code}: {r.text[:200]}"
            if r.status_code not in RETRY_STATUS:
                break
            retry_after = r.headers.get("retry-after")
            delay = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            delay = None
        except (KeyError, IndexError, ValueError) as exc:
            last_error = f"unexpected response shape: {exc}"
            break
        if attempt < opts.retries:
            await asyncio.sleep(delay if delay is not None else opts.backoff_s * 2**attempt * (0.5 + random.random()))
    raise RuntimeError(last_error)


async def _collect(opts: CollectOptions) -> CollectSummary:
    summary = CollectSummary()
    started = time.perf_counter()
    prompts = load_prompts(opts.prompts)
    done = already_collected(opts.out, opts.model)
    todo = [p for p in prompts if p["id"] not in done]
    summary.skipped_existing = len(prompts) - len(todo)
    if summary.skipped_existing:
        print(f"resuming: {summary.skipped_existing} prompts already collected for {opts.model}", file=sys.stderr)
    headers = {}
    key = os.environ.get(opts.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    url = chat_url(opts.endpoint)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    semaphore = asyncio.Semaphore(opts.concurrency)
    bar = tqdm(total=len(todo), unit="prompt", desc=f"collecting {opts.model}", disable=not opts.progress)
    limits = httpx.Limits(max_connections=opts.concurrency)
    with opts.out.open("a", encoding="utf-8") as fh:
        async with httpx.AsyncClient(limits=limits) as client:

            async def one(item: dict[str, Any]) -> None:
                async with semaphore:
                    summary.sent += 1
                    try:
                        got = await _ask(client, url, item, opts, headers)
                    except RuntimeError as exc:
                        summary.failed += 1
                        print(f"failed {item['id']}: {exc}", file=sys.stderr)
                        bar.update(1)
                        return
                    row = (
                        item
                        | {"model": opts.model}
                        | got
                        | {"collected_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
                    )
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    fh.flush()
                    summary.collected += 1
                    bar.update(1)

            await asyncio.gather(*(one(item) for item in todo))
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def collect(opts: CollectOptions) -> CollectSummary:
    if not opts.prompts.exists():
        raise FileNotFoundError(f"prompt file not found: {opts.prompts}")
    return asyncio.run(_collect(opts))
