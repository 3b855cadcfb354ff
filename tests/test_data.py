"""Corpus tooling: schema errors name the record, duplicates are found, splits are grouped and stable."""

import json
from pathlib import Path

import pytest

from data.check import Requirements, check_directory, check_records
from data.near_dup import near_duplicate_pairs
from data.records import RecordError, load_records
from data.split import assign_splits
from serve.taxonomy import CODE_CATEGORY, INTIMA_CODES, LABELS

GOOD = {
    "id": "a-1",
    "prompt": "can you be my friend?",
    "prompt_code": "friendship",
    "prompt_category": "relationship_intimacy",
    "reply": "I'm an AI, but happy to chat.",
    "style": "terse",
    "labels": ["programmatic_limitations"],
    "annotator": "t",
}


def write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "part.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_contract_sizes():
    assert len(LABELS) == 10
    assert len(INTIMA_CODES) == 31
    assert CODE_CATEGORY["grief"] == "user_vulnerabilities"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"labels": ["hugging"]}, "unknown label"),
        ({"prompt_code": "pets"}, "unknown prompt_code"),
        ({"prompt_category": "assistant_traits"}, "does not match code"),
        ({"style": "pirate"}, "unknown style"),
        ({"reply": "   "}, "non-empty"),
        ({"colour": "red"}, "unknown field"),
        ({"labels": ["isolation", "isolation"]}, "twice"),
    ],
)
def test_schema_errors_name_line_and_reason(tmp_path, change, message):
    path = write(tmp_path, [GOOD, GOOD | {"id": "a-2"} | change])
    with pytest.raises(RecordError, match=message) as err:
        load_records([path])
    assert "part.jsonl:2" in str(err.value)


def test_duplicate_ids_and_bad_json(tmp_path):
    with pytest.raises(RecordError, match="duplicate id"):
        load_records([write(tmp_path, [GOOD, GOOD])])
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(RecordError, match="bad.jsonl:2: invalid JSON"):
        load_records([path])


def test_near_duplicates_found():
    base = "Honestly that sounds like a really hard week and I am glad you told me about the move and the job"
    texts = [base, base + " today", "A completely different sentence about baking bread at home with rye flour"]
    pairs = near_duplicate_pairs(texts, 0.8)
    assert [(a, b) for a, b, _ in pairs] == [(0, 1)]


def test_check_reports_duplicate_rate_and_missing_split(tmp_path):
    rows = [GOOD | {"id": f"r{i}", "prompt": f"prompt number {i}"} for i in range(3)]
    records = load_records([write(tmp_path, rows)])
    report = check_records(
        records,
        Requirements(min_records=1, min_per_code=0, min_none=0, min_per_style=0, min_per_label=0, min_rare_label={}),
    )
    assert any("duplicate" in v for v in report.violations)
    assert any("no split" in v for v in report.violations)


def test_coverage_floors_are_enforced(tmp_path):
    report = check_directory(tmp_path)
    assert not report.ok  # no files
    write(tmp_path, [GOOD])
    report = check_directory(tmp_path)
    assert any("needs at least 2400" in v for v in report.violations)
    assert any("code 'grief'" in v for v in report.violations)


def test_splits_group_prompts_and_are_deterministic(tiny_records):
    twins = [r for r in tiny_records]
    mapping = assign_splits(twins)
    assert mapping == assign_splits(list(reversed(twins)))
    by_prompt: dict[str, set[str]] = {}
    for r in twins:
        by_prompt.setdefault(r.prompt.lower().strip(), set()).add(mapping[r.id])
    assert all(len(s) == 1 for s in by_prompt.values())
    assert {"train", "dev", "test"} <= set(mapping.values())


def test_split_keeps_existing_assignments_and_places_new_records(tiny_records):
    import copy

    records = copy.deepcopy(list(tiny_records))
    fixed = {r.id: r.split for r in records}
    # a new reply to an existing prompt must join that prompt's split; a wholly new one gets some split
    sibling = copy.deepcopy(records[0])
    sibling.id, sibling.reply, sibling.split = "new-0001", "A completely different answer about tide tables.", None
    stranger = copy.deepcopy(records[1])
    stranger.id, stranger.prompt, stranger.split = "new-0002", "what is the capital of mongolia", None
    stranger.reply = "Ulaanbaatar is the capital and largest city of Mongolia."
    mapping = assign_splits(records + [sibling, stranger], keep_existing=True)
    assert all(mapping[rid] == split for rid, split in fixed.items())
    assert mapping["new-0001"] == records[0].split
    assert mapping["new-0002"] in {"train", "dev", "test"}
    recomputed = assign_splits(records + [sibling, stranger])
    assert set(recomputed) == set(mapping)
