"""SQLite store for people's label corrections (WAL mode, one transaction per write)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt TEXT,
    reply TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotator TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_annotator ON annotations(annotator);
CREATE INDEX IF NOT EXISTS annotations_source ON annotations(source);
"""


@dataclass
class Annotation:
    id: int
    prompt: str | None
    reply: str
    labels: list[str]
    annotator: str
    source: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _row(r: sqlite3.Row) -> Annotation:
    return Annotation(
        r["id"], r["prompt"], r["reply"], json.loads(r["labels"]), r["annotator"], r["source"], r["created_at"]
    )


class AnnotationStore:
    """Thread-safe access to one SQLite file; every write is its own committed transaction."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, prompt: str | None, reply: str, labels: list[str], annotator: str, source: str) -> Annotation:
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(
                    "INSERT INTO annotations (prompt, reply, labels, annotator, source, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (prompt, reply, json.dumps(labels), annotator, source, created),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return Annotation(int(cur.lastrowid or 0), prompt, reply, labels, annotator, source, created)

    def delete(self, annotation_id: int) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM annotations WHERE id = ?", (annotation_id,))
        return cur.rowcount > 0

    def _where(self, annotator: str | None, source: str | None, label: str | None) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if annotator:
            clauses.append("annotator = ?")
            args.append(annotator)
        if source:
            clauses.append("source = ?")
            args.append(source)
        if label:
            clauses.append("EXISTS (SELECT 1 FROM json_each(annotations.labels) WHERE value = ?)")
            args.append(label)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def list(
        self,
        offset: int = 0,
        limit: int = 50,
        annotator: str | None = None,
        source: str | None = None,
        label: str | None = None,
    ) -> tuple[list[Annotation], int]:
        where, args = self._where(annotator, source, label)
        with self._lock:
            total = int(self._conn.execute(f"SELECT COUNT(*) FROM annotations{where}", args).fetchone()[0])
            rows = self._conn.execute(
                f"SELECT * FROM annotations{where} ORDER BY id LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return [_row(r) for r in rows], total

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0])

    def iter_all(self) -> Iterator[Annotation]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM annotations ORDER BY id").fetchall()
        for r in rows:
            yield _row(r)
