"""torch -> ONNX (fp32) -> dynamic int8 (per-channel) for CPU and fp16 for GPU, and the parity gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


class ParityError(RuntimeError):
    """The quantized model disagrees with the torch model beyond the stated tolerance."""


class _LogitsOnly(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def export_onnx(model: torch.nn.Module, path: Path, opset: int = 17) -> Path:
    """Export a sequence classifier with dynamic batch and sequence axes (TorchScript exporter)."""
    model = model.to("cpu").eval()
    dummy = (
        torch.randint(100, 1000, (2, 16), dtype=torch.long),
        torch.ones(2, 16, dtype=torch.long),
        torch.zeros(2, 16, dtype=torch.long),
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES} | {"logits": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(
            _LogitsOnly(model),
            dummy,
            str(path),
            input_names=INPUT_NAMES,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    return path


@dataclass(frozen=True)
class Quantization:
    """One dynamic-quantization recipe. On AVX2 CPUs without VNNI, u8 x s8 products can saturate;
    ``reduce_range`` (7-bit weights) or u8 weights avoid that at a small cost in resolution."""

    name: str
    weight_type: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = False
    op_types: tuple[str, ...] | None = None


# tried in order by the pipeline; the first that passes the parity gate is shipped
QUANTIZATIONS: tuple[Quantization, ...] = (
    Quantization("int8-per-channel"),
    Quantization("int8-per-channel-reduce-range", reduce_range=True),
    Quantization("uint8-per-channel", weight_type="QUInt8"),
    Quantization("int8-per-channel-reduce-range-matmul-only", reduce_range=True, op_types=("MatMul",)),
)


def quantize_int8(fp32_path: Path, int8_path: Path, recipe: Quantization = QUANTIZATIONS[0]) -> Path:
    """Dynamic int8 quantization of weights (per channel by default)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32_path),
        str(int8_path),
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        weight_type=getattr(QuantType, recipe.weight_type),
        op_types_to_quantize=list(recipe.op_types) if recipe.op_types else None,
    )
    return int8_path


def convert_fp16(fp32_path: Path, fp16_path: Path) -> Path:
    """Float16 weights and activations with the fp32 model's inputs and outputs (ONNX Runtime's own
    converter); half the size of fp32, and what a GPU runs fastest. The pipeline's parity gate decides
    whether it may be shipped."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    onnx.save(model, str(fp16_path))
    return fp16_path


@dataclass
class Parity:
    decision_agreement: float
    mean_abs_diff: float
    max_abs_diff: float
    n_items: int
    min_agreement: float
    max_mean_abs: float

    @property
    def ok(self) -> bool:
        return self.decision_agreement >= self.min_agreement and self.mean_abs_diff <= self.max_mean_abs

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "decision_agreement": round(self.decision_agreement, 5),
            "mean_abs_score_diff": round(self.mean_abs_diff, 5),
            "max_abs_score_diff": round(self.max_abs_diff, 5),
            "n_items": self.n_items,
            "required_agreement": self.min_agreement,
            "allowed_mean_abs_diff": self.max_mean_abs,
            "passed": self.ok,
        }


def parity(
    reference: np.ndarray, candidate: np.ndarray, thresholds: np.ndarray, min_agreement: float, max_mean_abs: float
) -> Parity:
    """Compare two score matrices: decision agreement over every (item, label) and score differences."""
    diff = np.abs(reference - candidate)
    agree = float(((reference >= thresholds) == (candidate >= thresholds)).mean()) if reference.size else 1.0
    return Parity(
        decision_agreement=agree,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        n_items=len(reference),
        min_agreement=min_agreement,
        max_mean_abs=max_mean_abs,
    )
