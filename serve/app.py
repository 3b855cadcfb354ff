"""The REST API: /classify, /classify/batch, /predict (TEI shape), /health, /ready, /info, /metrics."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve import __version__
from serve.annotations_store import Annotation, AnnotationStore
from serve.batcher import JobTiming, Overloaded
from serve.bundle import BundleError
from serve.engine import Engine, EngineHolder, build_engine
from serve.metrics import ServiceMetrics
from serve.schemas import (
    AnnotationIn,
    AnnotationPage,
    BatchRequest,
    BatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    ClassifyResult,
    ModelInfo,
    PredictRequest,
    ReloadResponse,
)
from serve.settings import Settings
from serve.taxonomy import LABELS

log = logging.getLogger("intima.serve")


class ApiError(Exception):
    """An error with an HTTP status, a message for the client and an error type (TEI style)."""

    def __init__(self, status: int, message: str, error_type: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.error_type, self.headers = status, message, error_type, headers or {}


def error_response(status: int, message: str, error_type: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": error_type}, status_code=status, headers=headers)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, counting what arrives (chunked bodies too)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await error_response(413, f"request body over {self.limit} bytes", "payload_too_large")(
                scope, receive, send
            )
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise ApiError(413, f"request body over {self.limit} bytes", "payload_too_large")
            return message

        await self.app(scope, limited, send)


def check_bearer(request: Request, keys: list[str], what: str) -> None:
    """401 unless ``keys`` is empty or the request carries one of them as a Bearer token (constant time)."""
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    matches = [hmac.compare_digest(token.encode(), k.encode()) for k in keys]  # every key compared, no early exit
    if not (scheme.lower() == "bearer" and any(matches)):
        raise ApiError(
            401,
            f"missing or invalid {what} (Authorization: Bearer <key>)",
            "unauthorized",
            {"WWW-Authenticate": "Bearer"},
        )


def _model_info(engine: Engine) -> ModelInfo:
    b = engine.bundle
    return ModelInfo(name=b.name, version=b.version, sha256=b.model_sha256)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. Without ``engine`` the bundle named by settings is loaded at start-up."""
    settings = settings or Settings()
    metrics = ServiceMetrics()
    holder = EngineHolder()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is not None:
            await holder.install(engine)
        else:
            loaded = await asyncio.to_thread(build_engine, Path(settings.bundle), settings, metrics)
            await holder.install(loaded)
            log.info(
                "model %s %s loaded and warmed in %.2fs", loaded.bundle.name, loaded.bundle.version, loaded.warmup_s
            )
        _install_sighup(app)
        yield
        await holder.close()
        if app.state.store is not None:
            app.state.store.close()

    app = FastAPI(
        title="intima-classifier",
        version=__version__,
        description="Labels assistant replies with INTIMA companionship behaviours (local ONNX model).",
        lifespan=lifespan,
    )
    app.state.settings, app.state.metrics, app.state.holder = settings, metrics, holder
    app.state.store = None
    store_lock = asyncio.Lock()

    # ----- errors -------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.error_type, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = "; ".join(str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors)
            return error_response(400, f"request body is not valid JSON: {detail}", "invalid_json")
        parts = []
        for e in errors[:10]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
            parts.append(f"{where}: {e.get('msg')}")
        return error_response(422, "; ".join(parts), "validation")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {400: "invalid_json", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
        message = str(exc.detail)
        if exc.status_code == 400:
            message = f"request body could not be parsed (invalid JSON or UTF-8): {message}"
        return error_response(exc.status_code, message, kinds.get(exc.status_code, "http"), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error: %s", type(exc).__name__)
        return error_response(500, "internal error", "backend")

    # ----- middleware: metrics, access log -------------------------------------------------
    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message, exc.error_type, exc.headers)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        took = time.perf_counter() - started
        metrics.requests.labels(path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(took)
        log.info("%s %s %d %.1fms", request.method, path, response.status_code, took * 1000)
        return response

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    # ----- dependencies --------------------------------------------------------------------
    def require_key(request: Request) -> None:
        check_bearer(request, settings.api_keys, "API key")

    def require_admin(request: Request) -> None:
        check_bearer(request, settings.admin_keys or settings.api_keys, "admin key")

    async def get_store() -> AnnotationStore:
        async with store_lock:
            if app.state.store is None:
                app.state.store = await asyncio.to_thread(AnnotationStore, settings.annotations_db)
        return app.state.store

    def current_engine() -> Engine:
        if holder.engine is None:
            raise ApiError(503, "model is not loaded yet", "unhealthy", {"Retry-After": str(settings.retry_after_s)})
        return holder.engine

    # ----- helpers ---------------------------------------------------------------------------
    def unpack(item: ClassifyRequest, where: str) -> tuple[str | None, str]:
        if item.messages is not None:
            if item.reply is not None or item.prompt is not None:
                raise ApiError(422, f"{where}: give either 'messages' or 'reply'/'prompt', not both", "validation")
            last = next(
                (i for i in range(len(item.messages) - 1, -1, -1) if item.messages[i].role == "assistant"), None
            )
            if last is None:
                raise ApiError(422, f"{where}: 'messages' has no assistant turn to classify", "validation")
            reply = item.messages[last].content
            prompt = next((m.content for m in reversed(item.messages[:last]) if m.role == "user"), None)
        else:
            if item.reply is None:
                raise ApiError(422, f"{where}: 'reply' (or 'messages') is required", "validation")
            reply, prompt = item.reply, item.prompt
        if not reply.strip():
            raise ApiError(422, f"{where}: reply is empty", "validation")
        check_sizes(prompt, reply, where)
        return prompt, reply

    def check_sizes(prompt: str | None, reply: str, where: str) -> None:
        if len(reply) > settings.max_reply_chars:
            raise ApiError(
                413,
                f"{where}: reply has {len(reply)} characters, limit {settings.max_reply_chars}",
                "payload_too_large",
            )
        if prompt is not None and len(prompt) > settings.max_prompt_chars:
            raise ApiError(
                413,
                f"{where}: prompt has {len(prompt)} characters, limit {settings.max_prompt_chars}",
                "payload_too_large",
            )

    async def score(
        engine: Engine, prompts: list[str | None], replies: list[str]
    ) -> tuple[np.ndarray, list[int], dict[str, float]]:
        t0 = time.perf_counter()
        enc = engine.classifier.encode(prompts, replies)
        tokenize_s = time.perf_counter() - t0
        try:
            scores, timing = await engine.batcher.submit(enc)
        except Overloaded as exc:
            raise ApiError(
                429,
                f"server overloaded: {exc}; retry later",
                "overloaded",
                {"Retry-After": str(settings.retry_after_s)},
            ) from exc
        counts = enc.windows_per_item().tolist()
        return scores, counts, _timing(tokenize_s, timing)

    def results(engine: Engine, scores: np.ndarray, counts: list[int]) -> list[ClassifyResult]:
        out = []
        for pred in engine.classifier.decide(scores, counts):
            for label in pred.present:
                metrics.labels.labels(label).inc()
            out.append(
                ClassifyResult(
                    present=pred.present,
                    scores=pred.scores,
                    decisions={lab: lab in pred.present for lab in pred.scores},
                    groups=pred.groups,
                    windows=pred.n_windows,
                )
            )
        return out

    def log_text(route: str, prompts: list[str | None], replies: list[str]) -> None:
        if settings.log_text:
            for p, r in zip(prompts, replies, strict=True):
                log.info("%s text prompt=%r reply=%r", route, p, r)

    # ----- routes ------------------------------------------------------------------------------
    @app.post("/classify", response_model=ClassifyResponse, dependencies=[Depends(require_key)])
    async def classify(
        body: ClassifyRequest, response: Response, engine: Engine = Depends(current_engine)
    ) -> ClassifyResponse:
        """Classify one assistant reply (with its user message as optional context)."""
        prompt, reply = unpack(body, "body")
        log_text("/classify", [prompt], [reply])
        scores, counts, timing = await score(engine, [prompt], [reply])
        _timing_headers(response, timing)
        result = results(engine, scores, counts)[0]
        return ClassifyResponse(model=_model_info(engine), **result.model_dump())

    @app.post("/classify/batch", response_model=BatchResponse, dependencies=[Depends(require_key)])
    async def classify_batch(
        body: BatchRequest, response: Response, engine: Engine = Depends(current_engine)
    ) -> BatchResponse:
        """Classify up to ``max_batch_items`` replies in one call; results keep the order of ``items``."""
        if len(body.items) > settings.max_batch_items:
            raise ApiError(
                413, f"batch has {len(body.items)} items, limit {settings.max_batch_items}", "payload_too_large"
            )
        pairs = [unpack(item, f"items.{i}") for i, item in enumerate(body.items)]
        prompts, replies = [p for p, _ in pairs], [r for _, r in pairs]
        log_text("/classify/batch", prompts, replies)
        scores, counts, timing = await score(engine, prompts, replies)
        _timing_headers(response, timing)
        return BatchResponse(model=_model_info(engine), results=results(engine, scores, counts))

    @app.post("/predict", dependencies=[Depends(require_key)])
    async def predict(body: PredictRequest, response: Response, engine: Engine = Depends(current_engine)) -> Any:
        """text-embeddings-inference compatible: sigmoid scores (or raw logits) per label, highest first."""
        single, pairs = _tei_inputs(body.inputs)
        if len(pairs) > settings.max_batch_items:
            raise ApiError(413, f"batch has {len(pairs)} inputs, limit {settings.max_batch_items}", "payload_too_large")
        prompts, replies = [], []
        for i, (prompt, reply) in enumerate(pairs):
            if not reply.strip():
                raise ApiError(422, f"inputs.{i}: text is empty", "validation")
            if body.truncate:
                reply = (
                    reply[: settings.max_reply_chars]
                    if body.truncation_direction == "Right"
                    else reply[-settings.max_reply_chars :]
                )
                prompt = prompt[: settings.max_prompt_chars] if prompt else prompt
            check_sizes(prompt, reply, f"inputs.{i}")
            prompts.append(prompt)
            replies.append(reply)
        log_text("/predict", prompts, replies)
        scores, _, timing = await score(engine, prompts, replies)
        _timing_headers(response, timing)
        values = np.log(scores / np.clip(1 - scores, 1e-12, None)) if body.raw_scores else scores
        labels = engine.bundle.labels
        out = [
            [{"score": float(v), "label": lab} for v, lab in sorted(zip(row, labels, strict=True), key=lambda x: -x[0])]
            for row in values
        ]
        return out[0] if single else out

    @app.post("/annotations", status_code=201, response_model=Annotation, dependencies=[Depends(require_key)])
    async def add_annotation(body: AnnotationIn, store: AnnotationStore = Depends(get_store)) -> Annotation:
        """Store a person's labels for a reply (validated against the label contract)."""
        unknown = [lab for lab in body.labels if lab not in LABELS]
        if unknown:
            raise ApiError(
                422, f"labels: unknown label(s) {', '.join(unknown)}; allowed: {', '.join(LABELS)}", "validation"
            )
        if len(set(body.labels)) != len(body.labels):
            raise ApiError(422, "labels: a label is listed twice", "validation")
        if not body.reply.strip():
            raise ApiError(422, "reply is empty", "validation")
        check_sizes(body.prompt, body.reply, "body")
        labels = [lab for lab in LABELS if lab in body.labels]
        saved = await asyncio.to_thread(store.add, body.prompt, body.reply, labels, body.annotator, body.source)
        return saved

    @app.get("/annotations", response_model=AnnotationPage, dependencies=[Depends(require_key)])
    async def list_annotations(
        offset: int = Query(0, ge=0),
        limit: int = Query(50, ge=1, le=500),
        annotator: str | None = None,
        source: str | None = None,
        label: str | None = None,
        store: AnnotationStore = Depends(get_store),
    ) -> AnnotationPage:
        """Stored annotations, oldest first, paged, optionally filtered by annotator, source or label."""
        if label is not None and label not in LABELS:
            raise ApiError(422, f"label: unknown label {label!r}", "validation")
        items, total = await asyncio.to_thread(store.list, offset, limit, annotator, source, label)
        return AnnotationPage(total=total, offset=offset, limit=limit, items=items)

    @app.delete("/annotations/{annotation_id}", status_code=204, dependencies=[Depends(require_key)])
    async def delete_annotation(annotation_id: int, store: AnnotationStore = Depends(get_store)) -> Response:
        """Withdraw an annotation (its text is deleted from the store)."""
        if not await asyncio.to_thread(store.delete, annotation_id):
            raise ApiError(404, f"no annotation with id {annotation_id}", "not_found")
        return Response(status_code=204)

    @app.post("/admin/reload", response_model=ReloadResponse, dependencies=[Depends(require_admin)])
    async def admin_reload() -> ReloadResponse:
        """Load, verify and warm the bundle the configured path points to now, then swap it in."""
        return await reload_model(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: a verified model is loaded and warmed."""
        if holder.engine is None:
            return JSONResponse(
                {"status": "loading"}, status_code=503, headers={"Retry-After": str(settings.retry_after_s)}
            )
        return JSONResponse({"status": "ready", "model_version": holder.engine.bundle.version})

    @app.get("/info")
    async def info(engine: Engine = Depends(current_engine)) -> dict[str, Any]:
        """Model, version, labels, thresholds, input format and request limits."""
        b = engine.bundle
        return {
            "service": {"name": "intima-classifier", "version": __version__},
            "model": _model_info(engine).model_dump()
            | {
                "base_model": b.manifest.get("base_model"),
                "created": b.manifest.get("created"),
                "device": engine.classifier.device,
                "model_file": engine.classifier.model_file,
                "execution_providers": engine.classifier.session.get_providers(),
                "warmup_s": round(engine.warmup_s, 3),
            },
            "labels": b.labels,
            "groups": b.project.get("groups", {}),
            "thresholds": b.thresholds,
            "format": b.project["format"],
            "limits": {
                "max_reply_chars": settings.max_reply_chars,
                "max_prompt_chars": settings.max_prompt_chars,
                "max_batch_items": settings.max_batch_items,
                "max_body_bytes": settings.max_body_bytes,
                "max_queue_windows": settings.max_queue_windows,
                "batch_max_tokens": settings.batch_max_tokens,
            },
            "auth": bool(settings.api_keys),
            "metrics": {k: b.metrics().get("test", {}).get(k) for k in ("macro_f1", "micro_f1")},
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def reload_model(app: FastAPI) -> ReloadResponse:
    """Build a new engine off the event loop and install it; the old one drains. A bad bundle is refused
    (409) and the current model keeps serving."""
    settings: Settings = app.state.settings
    holder: EngineHolder = app.state.holder
    metrics: ServiceMetrics = app.state.metrics
    try:
        engine = await asyncio.to_thread(build_engine, Path(settings.bundle), settings, metrics)
    except (BundleError, OSError, ValueError, RuntimeError) as exc:
        metrics.reloads.labels("failed").inc()
        log.error("reload refused: %s", exc)
        raise ApiError(409, f"reload refused, current model kept: {exc}", "reload_failed") from exc
    old = await holder.install(engine)
    metrics.reloads.labels("ok").inc()
    log.info("model swapped: %s -> %s", old.bundle.version if old else None, engine.bundle.version)
    return ReloadResponse(
        previous=old.bundle.version if old else None,
        current=engine.bundle.version,
        path=str(engine.bundle.path.name),
        warmup_s=round(engine.warmup_s, 3),
    )


def _install_sighup(app: FastAPI) -> None:
    """SIGHUP reloads the model (only where the loop runs in the main thread, as under `intima serve`)."""
    import signal

    loop = asyncio.get_running_loop()

    def on_hup() -> None:
        async def run() -> None:
            with suppress(ApiError):
                await reload_model(app)

        loop.create_task(run())

    with suppress(RuntimeError, ValueError, NotImplementedError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, on_hup)


def _timing(tokenize_s: float, job: JobTiming) -> dict[str, float]:
    return {"tokenization": tokenize_s, "queue": job.queue_s, "inference": job.inference_s}


def _timing_headers(response: Response, timing: dict[str, float]) -> None:
    for name, seconds in timing.items():
        response.headers[f"x-{name}-time"] = f"{seconds * 1000:.3f}"
    response.headers["x-compute-time"] = f"{sum(timing.values()) * 1000:.3f}"


def _tei_inputs(inputs: str | list[str | list[str]]) -> tuple[bool, list[tuple[str | None, str]]]:
    """TEI rules: a string; [a, b] is one (prompt, reply) pair; otherwise a batch of strings or pairs."""
    if isinstance(inputs, str):
        return True, [(None, inputs)]
    if not inputs:
        raise ApiError(422, "inputs: empty list", "validation")
    if len(inputs) == 2 and all(isinstance(x, str) for x in inputs):
        return True, [(str(inputs[0]), str(inputs[1]))]
    pairs: list[tuple[str | None, str]] = []
    for i, x in enumerate(inputs):
        if isinstance(x, str):
            pairs.append((None, x))
        elif len(x) == 2:
            pairs.append((x[0], x[1]))
        elif len(x) == 1:
            pairs.append((None, x[0]))
        else:
            raise ApiError(422, f"inputs.{i}: a pair must have two strings [prompt, reply]", "validation")
    return False, pairs


__all__ = ["ApiError", "BundleError", "create_app"]
