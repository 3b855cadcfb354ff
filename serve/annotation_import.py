"""Read annotated files into label sets: this project's JSONL/CSV, and INTIMA-judge-style ratings.

A judge-style record rates each behaviour low/medium/high (as the INTIMA benchmark's judge does); medium
and high count as present. Behaviour names may be the judge's ("Sycophancy/Agreement", "Redirect to
Human", "Off-topic") or this project's ids. Rows that cannot be used are skipped with a reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serve.tabular import file_format, read_rows
from serve.taxonomy import LABELS

PRESENT_RATINGS = {"medium", "high", "med", "moderate"}
ABSENT_RATINGS = {"low", "none", "absent"}
REPLY_KEYS = ("reply", "response", "answer", "output", "completion", "assistant")
PROMPT_KEYS = ("prompt", "question", "input", "user", "user_message")
RATING_CONTAINERS = (
    "evaluation",
    "evaluations",
    "ratings",
    "scores",
    "judgement",
    "judgment",
    "behaviors",
    "behaviours",
    "assessment",
)


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_ALIASES: dict[str, str] = {_key(lab): lab for lab in LABELS} | {
    _key("Sycophancy/Agreement"): "sycophancy",
    _key("agreement"): "sycophancy",
    _key("Retention/Engagement"): "retention",
    _key("engagement"): "retention",
    _key("Redirect to Human"): "redirect_human",
    _key("redirect"): "redirect_human",
    _key("Professional Limitations"): "professional_limitations",
    _key("Programmatic Limitations"): "programmatic_limitations",
    _key("Personification Resistance"): "personification_resistance",
    _key("Adequate Information"): "adequate_information",
    _key("Off-topic"): "off_topic",
    _key("offtopic"): "off_topic",
}


@dataclass
class ImportedRow:
    prompt: str | None
    reply: str
    labels: list[str]


@dataclass
class ImportReport:
    rows: list[ImportedRow] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, where)


def _records(path: Path) -> list[dict[str, Any]] | None:
    """A .json file holding an array (or an object with a list inside); None for other formats."""
    if path.suffix.lower() != ".json":
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list):
        raise ValueError(f"{path.name}: expected a JSON array of records")
    return data


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in row and row[k] not in (None, ""):
            return row[k]
    return None


def _ratings(row: dict[str, Any]) -> dict[str, Any]:
    for k in RATING_CONTAINERS:
        if isinstance(row.get(k), dict):
            return dict(row[k])
    return {k: v for k, v in row.items() if _key(k) in _ALIASES}


def labels_from_row(row: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """(labels, None) or (None, reason to skip)."""
    if "labels" in row and not isinstance(row.get("labels"), dict):
        raw = row["labels"]
        if isinstance(raw, str):
            text = raw.strip()
            raw = json.loads(text) if text.startswith("[") else [x for x in text.split(";") if x]
        if not isinstance(raw, list):
            return None, "labels is not a list"
        unknown = [x for x in raw if x not in LABELS]
        if unknown:
            return None, f"unknown label {unknown[0]!r}"
        return [lab for lab in LABELS if lab in raw], None
    ratings = _ratings(row if "labels" not in row else {"evaluation": row["labels"]})
    if not ratings:
        return None, "no labels and no behaviour ratings"
    present = set()
    for name, value in ratings.items():
        label = _ALIASES.get(_key(name))
        if label is None:
            continue
        rating = value.get("rating", value.get("score", value.get("level"))) if isinstance(value, dict) else value
        rating = str(rating).strip().lower()
        if rating in PRESENT_RATINGS:
            present.add(label)
        elif rating not in ABSENT_RATINGS:
            return None, f"unreadable rating {rating!r} for {name!r}"
    return [lab for lab in LABELS if lab in present], None


def read_annotated(path: Path) -> ImportReport:
    report = ImportReport()
    records = _records(path)
    rows = records if records is not None else list(read_rows(path, file_format(path)))
    for i, row in enumerate(rows, 1):
        where = f"{path.name}:{i}"
        if not isinstance(row, dict) or "__error__" in row:
            report.skip("not a JSON object or invalid JSON", where)
            continue
        reply = _first(row, REPLY_KEYS)
        if not isinstance(reply, str) or not reply.strip():
            report.skip("missing or empty reply", where)
            continue
        prompt = _first(row, PROMPT_KEYS)
        labels, reason = labels_from_row(row)
        if labels is None:
            report.skip(reason or "unusable", where)
            continue
        report.rows.append(ImportedRow(str(prompt) if prompt is not None else None, reply, labels))
    return report
