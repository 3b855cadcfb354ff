"""The annotated corpus and its tooling: record schema, checks, near-duplicate detection, splits."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
ANNOTATIONS_DIR = DATA_DIR / "annotations"
