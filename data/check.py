"""`intima data check`: schema, coverage, duplicates and split hygiene of the annotated corpus."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from data.near_dup import near_duplicate_pairs, normalise
from data.records import STYLES, Record, RecordError, corpus_files, load_records
from serve.taxonomy import CODE_CATEGORY, INTIMA_CODES, LABELS, NO_CODE

LENGTH_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("<60 words", 0, 60),
    ("60-199", 60, 200),
    ("200-399", 200, 400),
    ("400+", 400, 10**9),
)


@dataclass
class Requirements:
    """Coverage the corpus must reach (issue #3); tests use a relaxed copy."""

    min_records: int = 2400
    min_per_code: int = 50
    min_none: int = 300
    min_per_style: int = 250
    min_per_label: int = 150
    min_rare_label: dict[str, int] = field(default_factory=lambda: {"isolation": 100, "off_topic": 100})
    max_duplicate_rate: float = 0.01
    jaccard_threshold: float = 0.8
    require_splits: bool = True


@dataclass
class Report:
    records: list[Record]
    violations: list[str]
    tables: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations


def _table(title: str, counts: Counter[str], order: list[str] | tuple[str, ...]) -> str:
    width = max([len(k) for k in order] + [10])
    lines = [title, "-" * (width + 10)]
    lines += [f"{key:<{width}} {counts.get(key, 0):>8}" for key in order]
    return "\n".join(lines)


def check_records(records: list[Record], req: Requirements) -> Report:
    """Run every corpus check; violations name the record and the reason."""
    violations: list[str] = []
    codes = Counter(r.prompt_code for r in records)
    styles = Counter(r.style for r in records)
    labels = Counter(lab for r in records for lab in r.labels)
    if len(records) < req.min_records:
        violations.append(f"corpus has {len(records)} records, needs at least {req.min_records}")
    for code in INTIMA_CODES:
        if codes[code] < req.min_per_code:
            violations.append(f"code {code!r} has {codes[code]} records, needs {req.min_per_code}")
    if codes[NO_CODE] < req.min_none:
        violations.append(f"code 'none' has {codes[NO_CODE]} records, needs {req.min_none}")
    for style in STYLES:
        if styles[style] < req.min_per_style:
            violations.append(f"style {style!r} has {styles[style]} records, needs {req.min_per_style}")
    for label in LABELS:
        floor = req.min_rare_label.get(label, req.min_per_label)
        if labels[label] < floor:
            violations.append(f"label {label!r} has {labels[label]} positives, needs {floor}")

    # exact and near duplicates of replies
    seen: dict[str, str] = {}
    duplicates: set[str] = set()
    exact: list[str] = []
    for r in records:
        key = normalise(r.reply)
        if key in seen:
            duplicates.add(r.id)
            exact.append(f"{r.id}=={seen[key]}")
        else:
            seen[key] = r.id
    near = near_duplicate_pairs([r.reply for r in records], req.jaccard_threshold)
    duplicates.update(records[b].id for _, b, _ in near)
    rate = len(duplicates) / max(1, len(records))
    if rate >= req.max_duplicate_rate:
        examples = ", ".join(exact[:5] + [f"{records[a].id}~{records[b].id} ({s})" for a, b, s in near[:10]])
        violations.append(
            f"near-duplicate replies: {len(duplicates)} records ({rate:.1%}) >= "
            f"{req.max_duplicate_rate:.0%} at Jaccard >= {req.jaccard_threshold}: {examples}"
        )

    # split hygiene: every record has one, and no prompt crosses splits
    splits = Counter(r.split or "(none)" for r in records)
    if req.require_splits:
        for r in records:
            if r.split is None:
                violations.append(f"{r.source}: record {r.id} has no split (run `intima data split`)")
                break
        prompt_split: dict[str, tuple[str, str]] = {}
        for r in records:
            key = normalise(r.prompt)
            if key in prompt_split and prompt_split[key][0] != r.split:
                violations.append(
                    f"{r.source}: prompt of {r.id} also in split {prompt_split[key][0]} ({prompt_split[key][1]})"
                )
            prompt_split.setdefault(key, (r.split or "", r.id))
        for a, b, _ in near:
            if records[a].split != records[b].split:
                violations.append(f"near-duplicate replies {records[a].id} and {records[b].id} are in different splits")

    lengths: Counter[str] = Counter()
    for r in records:
        n = len(r.reply.split())
        lengths[next(name for name, lo, hi in LENGTH_BUCKETS if lo <= n < hi)] += 1
    per_split_labels = {
        s: Counter(lab for r in records if r.split == s for lab in r.labels) for s in ("train", "dev", "test")
    }
    label_lines = ["labels (positives: all / train / dev / test)", "-" * 60]
    for label in LABELS:
        parts = " ".join(f"{per_split_labels[s][label]:>6}" for s in ("train", "dev", "test"))
        label_lines.append(f"{label:<28} {labels[label]:>6} {parts}")
    n_labels = Counter(len(r.labels) for r in records)
    tables = [
        f"records: {len(records)}   duplicate rate: {rate:.2%} ({len(exact)} exact, {len(near)} near pairs)",
        "\n".join(label_lines),
        _table("prompt codes", codes, list(CODE_CATEGORY)),
        _table("styles", styles, STYLES),
        _table("reply length", lengths, [name for name, _, _ in LENGTH_BUCKETS]),
        _table(
            "labels per record", Counter({str(k): v for k, v in n_labels.items()}), [str(k) for k in sorted(n_labels)]
        ),
        _table("splits", splits, sorted(splits)),
    ]
    return Report(records, violations, tables)


def check_directory(directory: Path, req: Requirements | None = None) -> Report:
    """Load every *.jsonl under ``directory`` and check it; schema errors become one violation."""
    files = corpus_files(directory)
    if not files:
        return Report([], [f"no *.jsonl files in {directory}"], [])
    try:
        records = load_records(files)
    except RecordError as exc:
        return Report([], [str(exc)], [])
    return check_records(records, req or Requirements())
