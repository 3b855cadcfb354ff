"""The model bundle: the one contract between training and serving (design.md, "The model bundle")."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve.formatting import FormatSpec
from serve.taxonomy import LABEL_GROUP

MODEL_FILE = "model.onnx"  # int8, dynamic per-channel quantization: CPU kernels only
FP16_MODEL_FILE = "model.fp16.onnx"
FP32_MODEL_FILE = "model.fp32.onnx"
FLOAT_MODEL_FILES: tuple[str, ...] = (FP16_MODEL_FILE, FP32_MODEL_FILE)  # GPU serving picks the first present
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "README.md"
REQUIRED_FILES: tuple[str, ...] = (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE, MANIFEST_FILE)


class BundleError(RuntimeError):
    """A bundle that is missing, incomplete, or fails verification."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle folder and what its config says."""

    path: Path
    config: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def project(self) -> dict[str, Any]:
        return dict(self.config["intima"])

    @property
    def labels(self) -> list[str]:
        return list(self.project["labels"])

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.project["thresholds"].items()}

    @property
    def format_spec(self) -> FormatSpec:
        return FormatSpec.from_dict(self.project["format"])

    @property
    def name(self) -> str:
        return str(self.manifest.get("model_name", self.path.name))

    @property
    def version(self) -> str:
        return str(self.manifest.get("model_version", "unknown"))

    @property
    def model_sha256(self) -> str:
        return str(self.manifest["files"][MODEL_FILE])

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def float_model_file(self) -> str | None:
        """The float export for GPU serving (fp16 preferred), or None when the bundle has none."""
        return next((name for name in FLOAT_MODEL_FILES if name in self.manifest.get("files", {})), None)

    def metrics(self) -> dict[str, Any]:
        path = self.file(METRICS_FILE)
        return json.loads(path.read_text()) if path.exists() else {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"bundle file missing: {path}") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"bundle file is not valid JSON: {path} ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise BundleError(f"bundle file must hold a JSON object: {path}")
    return data


def resolve_bundle_dir(path: Path) -> Path:
    """A bundle folder, or a models/ folder whose ``current`` pointer names one."""
    path = Path(path)
    if (path / MANIFEST_FILE).exists():
        return path
    pointer = path / "current"
    if pointer.is_symlink() or pointer.is_dir():
        return pointer.resolve()
    if pointer.is_file():
        return (path / pointer.read_text().strip()).resolve()
    raise BundleError(f"no model bundle at {path} (no {MANIFEST_FILE} and no 'current' pointer)")


def verify_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Raise BundleError unless every file listed in the manifest exists with its sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{path / MANIFEST_FILE} lists no files")
    for name in REQUIRED_FILES:
        if name != MANIFEST_FILE and name not in files:
            raise BundleError(f"{path / MANIFEST_FILE} does not list required file {name}")
    for name, expected in files.items():
        target = path / name
        if not target.is_file():
            raise BundleError(f"bundle file missing: {target}")
        actual = sha256_file(target)
        if actual != expected:
            raise BundleError(
                f"sha256 mismatch for {target}: manifest says {expected[:12]}..., file is {actual[:12]}...; "
                "the bundle was modified or corrupted; refusing to load it"
            )


def load_bundle(path: Path | str, verify: bool = True) -> Bundle:
    """Read and (by default) verify a bundle folder."""
    bundle_dir = resolve_bundle_dir(Path(path))
    manifest = _read_json(bundle_dir / MANIFEST_FILE)
    if verify:
        verify_manifest(bundle_dir, manifest)
    config = _read_json(bundle_dir / CONFIG_FILE)
    project = config.get("intima")
    if not isinstance(project, dict) or not {"labels", "thresholds", "format"} <= set(project):
        raise BundleError(f"{bundle_dir / CONFIG_FILE} lacks the 'intima' section (labels, thresholds, format)")
    unknown = [lab for lab in project["labels"] if lab not in LABEL_GROUP]
    if unknown:
        raise BundleError(f"bundle labels not in the label contract: {unknown}")
    return Bundle(bundle_dir, config, manifest)
