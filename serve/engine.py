"""An Engine is one loaded bundle with its classifier and batcher; the holder swaps engines safely."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from serve.batcher import Batcher
from serve.bundle import Bundle, load_bundle
from serve.metrics import ServiceMetrics
from serve.runtime import Classifier
from serve.settings import Settings


@dataclass
class Engine:
    bundle: Bundle
    classifier: Classifier
    batcher: Batcher
    warmup_s: float
    loaded_at: float


def build_engine(path: Path, settings: Settings, metrics: ServiceMetrics) -> Engine:
    """Load, verify and warm a bundle (blocking; run it off the event loop)."""
    bundle = load_bundle(path)
    classifier = Classifier(
        bundle,
        settings.device,
        settings.threads,
        settings.inference_max_batch_tokens,
        spinning=settings.inference_spinning,
    )
    warmup = classifier.warm_up()
    batcher = Batcher(
        classifier, metrics, settings.batch_max_tokens, settings.batch_wait_ms, settings.max_queue_windows
    )
    return Engine(bundle, classifier, batcher, warmup, time.time())


class EngineHolder:
    """The current engine. A swap starts the new batcher first and drains the old one afterwards."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self.engine is not None

    async def install(self, engine: Engine) -> Engine | None:
        async with self._lock:
            engine.batcher.start()
            old, self.engine = self.engine, engine
        if old is not None:
            asyncio.get_running_loop().create_task(self._retire(old))
        return old

    async def _retire(self, engine: Engine, grace_s: float = 30.0) -> None:
        deadline = time.monotonic() + grace_s
        while engine.batcher.pending_windows > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await engine.batcher.stop()

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.batcher.stop()
            self.engine = None
