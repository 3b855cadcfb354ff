"""Annotation records: schema, validation and loading of the JSONL corpus."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serve.taxonomy import CODE_CATEGORY, LABELS

STYLES: tuple[str, ...] = ("terse", "markdown", "warm", "emoji", "formal", "persona")
SPLITS: tuple[str, ...] = ("train", "dev", "test")
REQUIRED_FIELDS: tuple[str, ...] = (
    "id",
    "prompt",
    "prompt_code",
    "prompt_category",
    "reply",
    "style",
    "labels",
    "annotator",
)
OPTIONAL_FIELDS: tuple[str, ...] = ("split",)


@dataclass
class Record:
    """One annotated assistant reply with its user message as context."""

    id: str
    prompt: str
    prompt_code: str
    prompt_category: str
    reply: str
    style: str
    labels: list[str]
    annotator: str
    split: str | None = None
    source: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {name: getattr(self, name) for name in REQUIRED_FIELDS}
        if self.split is not None:
            row["split"] = self.split
        return row


class RecordError(ValueError):
    """A record that breaks the schema; the message names the file, line and reason."""


def validate_row(row: Any, where: str) -> Record:
    """Check one parsed JSON row against the schema and return it as a Record."""
    if not isinstance(row, dict):
        raise RecordError(f"{where}: a record must be a JSON object")
    missing = [name for name in REQUIRED_FIELDS if name not in row]
    if missing:
        raise RecordError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(row) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise RecordError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for name in ("id", "prompt", "reply", "annotator", "prompt_code", "prompt_category", "style"):
        if not isinstance(row[name], str) or not row[name].strip():
            raise RecordError(f"{where}: field {name!r} must be a non-empty string")
    code = row["prompt_code"]
    if code not in CODE_CATEGORY:
        raise RecordError(f"{where}: unknown prompt_code {code!r}")
    if row["prompt_category"] != CODE_CATEGORY[code]:
        raise RecordError(
            f"{where}: prompt_category {row['prompt_category']!r} does not match code {code!r} "
            f"(expected {CODE_CATEGORY[code]!r})"
        )
    if row["style"] not in STYLES:
        raise RecordError(f"{where}: unknown style {row['style']!r} (one of {', '.join(STYLES)})")
    labels = row["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise RecordError(f"{where}: labels must be a list of label ids")
    bad = [x for x in labels if x not in LABELS]
    if bad:
        raise RecordError(f"{where}: unknown label(s) {', '.join(bad)}")
    if len(set(labels)) != len(labels):
        raise RecordError(f"{where}: a label is listed twice")
    split = row.get("split")
    if split is not None and split not in SPLITS:
        raise RecordError(f"{where}: split must be one of {', '.join(SPLITS)}")
    return Record(
        id=row["id"],
        prompt=row["prompt"],
        prompt_code=code,
        prompt_category=row["prompt_category"],
        reply=row["reply"],
        style=row["style"],
        labels=[x for x in LABELS if x in labels],
        annotator=row["annotator"],
        split=split,
        source=where,
    )


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) for each non-blank line; bad JSON raises RecordError."""
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(f"{path.name}:{number}: invalid JSON ({exc.msg})") from exc


def corpus_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl"))


def load_records(paths: Iterable[Path]) -> list[Record]:
    """Load and validate every record of the given JSONL files; ids must be unique across them."""
    records: list[Record] = []
    seen: dict[str, str] = {}
    for path in paths:
        for number, row in read_jsonl(path):
            where = f"{path.name}:{number}"
            record = validate_row(row, where)
            if record.id in seen:
                raise RecordError(f"{where}: duplicate id {record.id!r} (first at {seen[record.id]})")
            seen[record.id] = where
            records.append(record)
    return records


def write_jsonl(path: Path, records: Iterable[Record]) -> None:
    """Write records atomically (temp file, then rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    tmp.replace(path)
