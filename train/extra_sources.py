"""Extra annotation sources for `intima train --extra`: the SQLite store or JSONL/CSV/JSON files.

Extras join the train split only. They are de-duplicated, conflicts (one text, several label sets) are
resolved in favour of the newest and reported, an extra that repeats a dev/test reply is dropped (no
leakage into evaluation), and an extra that repeats a train reply replaces its labels (a correction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data.near_dup import normalise
from data.records import Record
from serve.annotation_import import read_annotated
from serve.annotations_store import AnnotationStore


def load_extra(path: Path) -> list[Record]:
    if not path.exists():
        raise FileNotFoundError(f"extra annotation source not found: {path}")
    if path.suffix.lower() in (".sqlite", ".sqlite3", ".db"):
        store = AnnotationStore(path)
        try:
            rows = [(a.prompt, a.reply, a.labels, f"store:{a.id}") for a in store.iter_all()]
        finally:
            store.close()
    else:
        report = read_annotated(path)
        if report.skipped:
            print(f"{path.name}: skipped {sum(report.skipped.values())} rows: {dict(report.skipped)}")
        rows = [(r.prompt, r.reply, r.labels, f"{path.name}:{i}") for i, r in enumerate(report.rows, 1)]
    return [
        Record(
            id=f"extra-{where}",
            prompt=prompt or "",
            prompt_code="none",
            prompt_category="none",
            reply=reply,
            style="external",
            labels=list(labels),
            annotator="extra",
            split="train",
            source=where,
        )
        for prompt, reply, labels, where in rows
    ]


@dataclass
class MergeReport:
    added: int = 0
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)
    dropped_eval_overlap: int = 0
    corrected_train: int = 0

    def __str__(self) -> str:
        return (
            f"extra annotations: {self.added} added, {self.duplicates} duplicates merged, "
            f"{len(self.conflicts)} label conflicts (newest kept), {self.corrected_train} corrections of "
            f"corpus train records, {self.dropped_eval_overlap} dropped for repeating a dev/test reply"
        )


def merge_extra(corpus: list[Record], extra: list[Record]) -> tuple[list[Record], MergeReport]:
    """Apply extras to ``corpus`` in place (corrections) and return the extras to add to train."""
    report = MergeReport()
    key_of = {}
    newest: dict[tuple[str, str], Record] = {}
    for r in extra:
        key = (normalise(r.prompt), normalise(r.reply))
        if key in newest:
            report.duplicates += 1
            if set(newest[key].labels) != set(r.labels):
                report.conflicts.append(f"{newest[key].source} vs {r.source}")
        newest[key] = r
    for r in corpus:
        key_of[normalise(r.reply)] = r
    out = []
    for (_, reply_key), r in newest.items():
        match = key_of.get(reply_key)
        if match is not None and match.split in ("dev", "test"):
            report.dropped_eval_overlap += 1
            continue
        if match is not None:
            match.labels = list(r.labels)
            report.corrected_train += 1
            continue
        out.append(r)
    report.added = len(out)
    print(report)
    for c in report.conflicts[:10]:
        print(f"  label conflict: {c}")
    return out, report
