"""Service configuration: one place, read from INTIMA_* environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_BUNDLE = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    """Every knob of the service; CLI flags override these."""

    model_config = SettingsConfigDict(env_prefix="INTIMA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    bundle: Path = DEFAULT_BUNDLE
    device: str = "cpu"
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1)
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    max_reply_chars: int = 20_000
    max_prompt_chars: int = 8_000
    max_batch_items: int = 64
    max_body_bytes: int = 2_000_000
    batch_max_tokens: int = 16_384
    batch_wait_ms: float = 0.0
    max_queue_windows: int = 2_048
    # tokens per ONNX Runtime call; on the 2-core reference CPU larger calls are slower per window (make bench)
    inference_max_batch_tokens: int = 512
    # let ONNX Runtime's threads busy-wait between calls (its default); see `make bench`
    inference_spinning: bool = True
    retry_after_s: int = 1
    log_text: bool = False

    annotations_db: Path = Path("annotations.sqlite3")

    @field_validator("api_keys", "admin_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value
