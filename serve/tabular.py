"""Row-streaming readers and writers for JSONL, CSV and Parquet files (Parquet needs pyarrow)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMATS = ("jsonl", "csv", "parquet")


def file_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise ValueError(f"unknown format {explicit!r}; use one of {', '.join(FORMATS)}")
        return explicit
    suffix = path.suffix.lower().lstrip(".")
    mapping = {
        "jsonl": "jsonl",
        "ndjson": "jsonl",
        "json": "jsonl",
        "csv": "csv",
        "parquet": "parquet",
        "pq": "parquet",
    }
    if suffix not in mapping:
        raise ValueError(f"cannot tell the format of {path.name}; name it .jsonl, .csv or .parquet or pass --format")
    return mapping[suffix]


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise RuntimeError("Parquet needs pyarrow: pip install 'intima-classifier[report]'") from exc
    return pyarrow


class BadRow(dict[str, Any]):
    """A row that could not be parsed; carries the reason in ``__error__``."""


def read_rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """Yield rows as dicts, one at a time (memory stays flat). Unparseable JSONL lines yield BadRow."""
    if fmt == "jsonl":
        with path.open(encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield BadRow({"__error__": f"line {number}: invalid JSON ({exc.msg})"})
                    continue
                yield row if isinstance(row, dict) else BadRow({"__error__": f"line {number}: not a JSON object"})
    elif fmt == "csv":
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            yield from csv.DictReader(fh)
    else:
        pa = _pyarrow()
        for batch in pa.parquet.ParquetFile(str(path)).iter_batches(batch_size=1024):
            yield from batch.to_pylist()


def count_rows(path: Path, fmt: str) -> int | None:
    """Row count for progress bars and resume (None when unknown)."""
    if not path.exists():
        return 0
    if fmt == "jsonl":
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    if fmt == "csv":
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            return sum(1 for _ in csv.DictReader(fh))
    pa = _pyarrow()
    return int(pa.parquet.ParquetFile(str(path)).metadata.num_rows)


def flatten_for_csv(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "present" and isinstance(value, list):
            out[key] = ";".join(value)
        elif key in ("scores", "groups") and isinstance(value, dict):
            prefix = "score_" if key == "scores" else ""
            out.update({f"{prefix}{k}": v for k, v in value.items()})
        elif isinstance(value, dict | list):
            out[key] = json.dumps(value, ensure_ascii=False)
        else:
            out[key] = value
    return out


class RowWriter:
    """Appends rows to JSONL or CSV; flushes each chunk so an interrupted run loses at most one chunk."""

    def __init__(self, path: Path, fmt: str, fieldnames: list[str] | None = None) -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError("RowWriter writes jsonl or csv")
        self.path, self.fmt = path, fmt
        existed = path.exists() and path.stat().st_size > 0
        self.fh = path.open("a", encoding="utf-8", newline="")
        self.csv: csv.DictWriter[str] | None = None
        self.fieldnames = fieldnames
        self._header_written = existed

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self.fmt == "jsonl":
            self.fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        else:
            flat = [flatten_for_csv(r) for r in rows]
            if self.csv is None:
                names = self.fieldnames or list(dict.fromkeys(k for r in flat for k in r))
                self.csv = csv.DictWriter(self.fh, fieldnames=names, extrasaction="ignore")
                if not self._header_written:
                    self.csv.writeheader()
            self.csv.writerows(flat)
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def _column_kinds(src: Path) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for row in read_rows(src, "jsonl"):
        for key, value in row.items():
            if value is not None:
                kinds.setdefault(key, set()).add(type(value).__name__)
    return kinds


def jsonl_to_parquet(src: Path, dst: Path, chunk: int = 5000) -> None:
    """Convert a JSONL file to Parquet in chunks (flat memory). Columns holding values of several
    types (ids that are sometimes numbers, sometimes text) are written as text."""
    pa = _pyarrow()
    mixed = {
        k
        for k, v in _column_kinds(src).items()
        if len(v - {"int", "float"}) > 1 or (len(v) > 1 and not v <= {"int", "float"})
    }
    writer = None
    tmp = dst.with_suffix(dst.suffix + ".tmp")

    def table_of(rows: list[dict[str, Any]]) -> Any:
        fixed = [
            {k: (str(v) if k in mixed and v is not None and not isinstance(v, str) else v) for k, v in r.items()}
            for r in rows
        ]
        return pa.Table.from_pylist(fixed)

    try:
        buf: list[dict[str, Any]] = []
        for row in read_rows(src, "jsonl"):
            buf.append(row)
            if len(buf) >= chunk:
                table = table_of(buf)
                writer = writer or pa.parquet.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table.cast(writer.schema))
                buf = []
        if buf:
            table = table_of(buf)
            writer = writer or pa.parquet.ParquetWriter(str(tmp), table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"{src} has no rows to convert")
    tmp.replace(dst)
