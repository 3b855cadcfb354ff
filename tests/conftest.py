"""Shared fixtures: a tiny randomly initialised bundle trained by the real pipeline, and app clients."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def tiny_records():
    from data.records import load_records

    return load_records([FIXTURES / "tiny_corpus.jsonl"])


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_records) -> Path:
    """Train a 2-layer random BERT for a few steps and write a full bundle (about 10 s)."""
    from serve.taxonomy import LABELS
    from train.args import TrainingArguments
    from train.model import base_model_dir, tiny_classifier
    from train.pipeline import run_training

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    args = TrainingArguments(
        output_dir=out,
        epochs=2,
        batch_size=8,
        freeze_layers=1,
        max_minutes=2,
        progress=False,
        model_version="0.0.1-test",
        model_name="intima-tiny",
    )
    model = tiny_classifier(list(LABELS), vocab_size=30522, seed=1)
    return run_training(tiny_records, args, model=model, tokenizer_dir=base_model_dir())


@pytest.fixture()
def settings_factory(tiny_bundle, tmp_path):
    from serve.settings import Settings

    def make(**overrides):
        base = {"bundle": tiny_bundle, "threads": 1, "annotations_db": tmp_path / "ann.sqlite3"}
        return Settings(**(base | overrides))

    return make


@pytest.fixture()
def client_factory(settings_factory):
    from fastapi.testclient import TestClient

    from serve.app import create_app

    clients = []

    def make(**overrides):
        client = TestClient(create_app(settings_factory(**overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture()
def client(client_factory):
    return client_factory()
