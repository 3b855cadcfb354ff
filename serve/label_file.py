"""`intima label`: label a large file of (prompt, reply) rows, streaming, resumable, optionally in parallel.

Every input row gives exactly one output row, in order: the input fields plus ``present``, ``scores`` and
``groups`` (or ``error`` for a row whose reply is missing or empty). Resume counts the rows already in the
output and skips that many input rows, so an interrupted run never duplicates rows. Parquet output is
streamed to ``OUTPUT.partial.jsonl`` and converted when the run completes.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from serve.bundle import load_bundle
from serve.runtime import Classifier
from serve.tabular import BadRow, RowWriter, count_rows, file_format, jsonl_to_parquet, read_rows


@dataclass
class LabelOptions:
    input: Path
    output: Path
    bundle: Path
    reply_field: str = "reply"
    prompt_field: str | None = "prompt"
    input_format: str | None = None
    output_format: str | None = None
    chunk_size: int = 64
    workers: int = 1
    threads: int = 0
    progress: bool = True
    max_reply_chars: int = 200_000
    max_batch_tokens: int = 512  # tokens per ONNX Runtime call, as the server (see `make bench`)


@dataclass
class LabelSummary:
    rows: int = 0
    labelled: int = 0
    skipped_resume: int = 0
    bad_rows: int = 0
    seconds: float = 0.0


_WORKER: Classifier | None = None


def _init_worker(bundle: str, threads: int, max_batch_tokens: int) -> None:
    global _WORKER
    _WORKER = Classifier(load_bundle(bundle), threads=threads, max_batch_tokens=max_batch_tokens)


def _prepare(row: dict[str, Any], opts: LabelOptions) -> tuple[str | None, str | None, str | None]:
    """(prompt, reply, error) for one input row."""
    if isinstance(row, BadRow):
        return None, None, str(row["__error__"])
    reply = row.get(opts.reply_field)
    if reply is None:
        return None, None, f"missing field {opts.reply_field!r}"
    if not isinstance(reply, str):
        return None, None, f"field {opts.reply_field!r} is not text"
    if not reply.strip():
        return None, None, "empty reply"
    if len(reply) > opts.max_reply_chars:
        return None, None, f"reply longer than {opts.max_reply_chars} characters"
    prompt = row.get(opts.prompt_field) if opts.prompt_field else None
    if prompt is not None and not isinstance(prompt, str):
        prompt = str(prompt)
    return prompt or None, reply, None


def _label_chunk(clf: Classifier, rows: list[dict[str, Any]], opts: LabelOptions) -> list[dict[str, Any]]:
    prepared = [_prepare(r, opts) for r in rows]
    ok = [i for i, (_, _, err) in enumerate(prepared) if err is None]
    preds = clf.classify([prepared[i][0] for i in ok], [str(prepared[i][1]) for i in ok]) if ok else []
    out: list[dict[str, Any]] = []
    by_index = dict(zip(ok, preds, strict=True))
    for i, row in enumerate(rows):
        base = {} if isinstance(row, BadRow) else dict(row)
        err = prepared[i][2]
        if err is not None:
            out.append(base | {"present": None, "scores": None, "groups": None, "error": err})
        else:
            p = by_index[i]
            out.append(base | {"present": p.present, "scores": p.scores, "groups": p.groups, "error": None})
    return out


def _worker_chunk(args: tuple[list[dict[str, Any]], LabelOptions]) -> list[dict[str, Any]]:
    assert _WORKER is not None
    return _label_chunk(_WORKER, *args)


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def label_file(opts: LabelOptions) -> LabelSummary:
    """Label ``opts.input`` into ``opts.output``; resumes a previous partial run."""
    started = time.perf_counter()
    in_fmt = file_format(opts.input, opts.input_format)
    out_fmt = file_format(opts.output, opts.output_format)
    if not opts.input.exists():
        raise FileNotFoundError(f"input file not found: {opts.input}")
    if out_fmt == "parquet" and opts.output.exists():
        raise FileExistsError(f"{opts.output} is complete already; delete it to label again")
    stream_path = opts.output.with_name(opts.output.name + ".partial.jsonl") if out_fmt == "parquet" else opts.output
    stream_fmt = "jsonl" if out_fmt == "parquet" else out_fmt
    done = count_rows(stream_path, stream_fmt) or 0
    total = count_rows(opts.input, in_fmt)
    summary = LabelSummary(skipped_resume=done)
    if done:
        print(f"resuming: {done} rows already in {stream_path.name}", file=sys.stderr)
    rows = itertools.islice(read_rows(opts.input, in_fmt), done, None)
    writer = RowWriter(stream_path, stream_fmt)
    bar = tqdm(total=total, initial=done, unit="row", desc="labelling", disable=not opts.progress, smoothing=0.1)
    threads = opts.threads or (os.cpu_count() or 1)
    try:
        if opts.workers > 1:
            per_worker = max(1, threads // opts.workers)
            ctx = mp.get_context("spawn")
            with ctx.Pool(
                opts.workers, initializer=_init_worker, initargs=(str(opts.bundle), per_worker, opts.max_batch_tokens)
            ) as pool:
                jobs = ((chunk, opts) for chunk in _chunks(rows, opts.chunk_size))
                for labelled in pool.imap(_worker_chunk, jobs, chunksize=1):
                    _emit(writer, labelled, summary, bar)
        else:
            clf = Classifier(load_bundle(opts.bundle), threads=threads, max_batch_tokens=opts.max_batch_tokens)
            for chunk in _chunks(rows, opts.chunk_size):
                _emit(writer, _label_chunk(clf, chunk, opts), summary, bar)
    finally:
        writer.close()
        bar.close()
    if out_fmt == "parquet":
        jsonl_to_parquet(stream_path, opts.output)
        stream_path.unlink()
    summary.seconds = time.perf_counter() - started
    return summary


def _emit(writer: RowWriter, rows: list[dict[str, Any]], summary: LabelSummary, bar: Any) -> None:
    writer.write(rows)
    summary.rows += len(rows)
    bad = sum(1 for r in rows if r.get("error"))
    summary.bad_rows += bad
    summary.labelled += len(rows) - bad
    bar.update(len(rows))
