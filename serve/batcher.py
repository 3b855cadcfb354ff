"""Dynamic batching: requests' windows queue up, a worker runs them together off the event loop.

While one batch runs in ONNX Runtime, new requests accumulate; the next batch takes all of them up to a
token budget (continuous batching). The classifier sorts windows by length inside a batch, so short
replies are not padded to long ones. When the queue holds more windows than ``max_queue_windows``,
``submit`` raises ``Overloaded`` instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from serve.formatting import Encoded, pool_logits, sigmoid
from serve.metrics import ServiceMetrics
from serve.runtime import Classifier


class Overloaded(RuntimeError):
    """The queue is full; the caller should retry later."""


@dataclass
class _Job:
    enc: Encoded
    future: asyncio.Future[np.ndarray]
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids in self.enc.input_ids)


@dataclass
class JobTiming:
    queue_s: float
    inference_s: float


class Batcher:
    """Owns the inference thread and the queue in front of it."""

    def __init__(
        self,
        classifier: Classifier,
        metrics: ServiceMetrics,
        max_batch_tokens: int = 16384,
        max_wait_ms: float = 0.0,
        max_queue_windows: int = 2048,
    ) -> None:
        self.classifier = classifier
        self.metrics = metrics
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue_windows = max_queue_windows
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.pending_windows = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx")
        self._worker: asyncio.Task[None] | None = None
        self.last_timing: dict[int, JobTiming] = {}

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, enc: Encoded) -> tuple[np.ndarray, JobTiming]:
        """Queue the windows of some items; returns their pooled sigmoid scores and timings."""
        if self.pending_windows + enc.n_windows > self.max_queue_windows:
            self.metrics.rejected.inc()
            raise Overloaded(f"queue holds {self.pending_windows} windows (limit {self.max_queue_windows})")
        job = _Job(enc, asyncio.get_running_loop().create_future())
        self.pending_windows += enc.n_windows
        self.metrics.queue_depth.set(self.pending_windows)
        await self.queue.put(job)
        scores = await job.future
        return scores, self.last_timing.pop(id(job), JobTiming(0.0, 0.0))

    async def _collect(self) -> list[_Job]:
        jobs = [await self.queue.get()]
        tokens = jobs[0].tokens
        deadline = time.perf_counter() + self.max_wait_s
        while tokens < self.max_batch_tokens:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            jobs.append(job)
            tokens += job.tokens
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            merged = Encoded([], [], [], 0)
            for job in jobs:
                merged.input_ids += job.enc.input_ids
                merged.token_type_ids += job.enc.token_type_ids
            started = time.perf_counter()
            try:
                logits = await loop.run_in_executor(self.executor, self.classifier.window_logits, merged)
            except Exception as exc:  # a failed batch fails its requests, never the worker
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self.pending_windows -= sum(job.enc.n_windows for job in jobs)
                self.metrics.queue_depth.set(self.pending_windows)
            took = time.perf_counter() - started
            self.metrics.inference.observe(took)
            self.metrics.batch_windows.observe(merged.n_windows)
            offset = 0
            for job in jobs:
                n = job.enc.n_windows
                part = logits[offset : offset + n]
                offset += n
                if job.future.done():  # the client went away
                    continue
                self.last_timing[id(job)] = JobTiming(started - job.enqueued, took)
                job.future.set_result(sigmoid(pool_logits(part, job.enc.owner, job.enc.n_items)))
