"""Prometheus metrics of the service (own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("intima_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram(
            "intima_request_seconds",
            "request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_windows = Histogram(
            "intima_batch_windows",
            "windows per inference batch",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.inference = Histogram(
            "intima_inference_seconds",
            "ONNX Runtime time per batch",
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.queue_depth = Gauge("intima_queue_windows", "windows waiting for inference", registry=self.registry)
        self.labels = Counter(
            "intima_labels_emitted_total", "labels decided present", ["label"], registry=self.registry
        )
        self.rejected = Counter("intima_rejected_total", "requests refused for overload", registry=self.registry)
        self.reloads = Counter("intima_model_reloads_total", "model swaps", ["outcome"], registry=self.registry)
