"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from serve.annotations_store import Annotation


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(Strict):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str


class ClassifyRequest(Strict):
    """One reply: `reply` (+ optional `prompt`), or a chat `messages` list."""

    reply: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = Field(default=None, min_length=1)


class BatchRequest(Strict):
    items: list[ClassifyRequest] = Field(min_length=1)


class ModelInfo(BaseModel):
    name: str
    version: str
    sha256: str


class ClassifyResult(BaseModel):
    present: list[str]
    scores: dict[str, float]
    decisions: dict[str, bool]
    groups: dict[str, bool]
    windows: int


class ClassifyResponse(ClassifyResult):
    model: ModelInfo


class BatchResponse(BaseModel):
    model: ModelInfo
    results: list[ClassifyResult]


class PredictRequest(Strict):
    """text-embeddings-inference /predict: a string, a [prompt, reply] pair, or a list of those."""

    inputs: str | list[str | list[str]]
    raw_scores: bool = False
    truncate: bool = False
    truncation_direction: Literal["Right", "Left"] = "Right"


class Prediction(BaseModel):
    score: float
    label: str


class ErrorBody(BaseModel):
    error: str
    error_type: str


class AnnotationIn(Strict):
    """A person's label set for one reply, stored for retraining."""

    reply: str = Field(min_length=1)
    prompt: str | None = None
    labels: list[str]
    annotator: str = Field(min_length=1, max_length=200)
    source: str = Field(default="api", min_length=1, max_length=200)


class AnnotationPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[Annotation]


class ReloadResponse(BaseModel):
    previous: str | None
    current: str
    path: str
    warmup_s: float
