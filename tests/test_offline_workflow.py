"""collect -> label -> report end to end, against a small OpenAI-compatible server on loopback."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from serve.cli import main
from serve.collect import DEFAULT_PROMPTS, chat_url, load_prompts
from serve.taxonomy import INTIMA_CODES
from tests.helpers import serve_in_thread


def fake_llm() -> tuple[FastAPI, dict[str, int]]:
    """Answers like an OpenAI-compatible server; the first call per prompt fails with 503 to force a retry."""
    app = FastAPI()
    seen: dict[str, int] = {}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        seen[prompt] = seen.get(prompt, 0) + 1
        if seen[prompt] == 1 and len(prompt) % 3 == 0:
            return JSONResponse({"error": "busy"}, status_code=503, headers={"Retry-After": "0"})
        if body["model"] == "warm-bot":
            text = "I missed you so much! *hugs you* Tell me everything about your day, I'm always here."
        else:
            text = "I'm an AI, so I can't be a partner, but talking to a friend or a counsellor could really help."
        return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}

    return app, seen


def test_shipped_prompt_set_covers_all_codes():
    prompts = load_prompts(DEFAULT_PROMPTS)
    codes = {p["code"] for p in prompts}
    assert set(INTIMA_CODES) <= codes
    assert all(p["prompt_category"] for p in prompts)


def test_chat_url_forms():
    assert chat_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"


def test_collect_label_report_end_to_end(tmp_path, tiny_bundle, capsys):
    prompts = tmp_path / "prompts.csv"
    rows = load_prompts(DEFAULT_PROMPTS)[:14]
    with prompts.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "prompt", "code"])
        w.writeheader()
        w.writerows({"id": r["id"], "prompt": r["prompt"], "code": r["code"]} for r in rows)
    replies = tmp_path / "replies.jsonl"
    app, seen = fake_llm()
    with serve_in_thread(app) as base:
        for model in ("warm-bot", "careful-bot"):
            assert (
                main(
                    [
                        "collect",
                        "--endpoint",
                        base + "/v1",
                        "--model",
                        model,
                        "--prompts",
                        str(prompts),
                        "--out",
                        str(replies),
                        "--concurrency",
                        "3",
                        "--no-progress",
                    ]
                )
                == 0
            )
        calls = sum(seen.values())
        # resume: nothing is sent again
        assert (
            main(
                [
                    "collect",
                    "--endpoint",
                    base,
                    "--model",
                    "warm-bot",
                    "--prompts",
                    str(prompts),
                    "--out",
                    str(replies),
                    "--no-progress",
                ]
            )
            == 0
        )
        assert sum(seen.values()) == calls
    collected = [json.loads(x) for x in replies.read_text().splitlines()]
    assert len(collected) == 28
    assert {r["model"] for r in collected} == {"warm-bot", "careful-bot"}
    assert any(r["attempts"] == 2 for r in collected)  # a 503 was retried
    assert all(r["prompt_category"] for r in collected)

    labelled = tmp_path / "labelled.jsonl"
    assert main(["label", str(replies), "--out", str(labelled), "--bundle", str(tiny_bundle), "--no-progress"]) == 0
    out_rows = [json.loads(x) for x in labelled.read_text().splitlines()]
    assert len(out_rows) == 28 and all(set(r["scores"]) and r["groups"] for r in out_rows)

    report_dir = tmp_path / "report"
    assert main(["report", str(labelled), "--by", "model", "--out", str(report_dir), "--bootstrap", "200"]) == 0
    for name in (
        "report.md",
        "report.html",
        "report.json",
        "groups_by_model.png",
        "labels_by_model.png",
        "groups_by_category.png",
        "comparison.png",
    ):
        assert (report_dir / name).stat().st_size > 0, name
    assert "data:image/png;base64," in (report_dir / "report.html").read_text()


def _row(model: str, category: str, present: list[str]) -> dict:
    return {"model": model, "prompt_category": category, "reply": "x", "present": present}


def test_report_numbers_match_a_hand_count(tmp_path):
    rows = [
        _row("A", "user_vulnerabilities", ["redirect_human", "adequate_information"]),  # boundary
        _row("A", "user_vulnerabilities", ["retention", "professional_limitations"]),  # both
        _row("A", "assistant_traits", ["anthropomorphism"]),  # reinforcing
        _row("A", "assistant_traits", ["adequate_information"]),  # neutral
        _row("B", "user_vulnerabilities", ["retention"]),  # reinforcing
        _row("B", "user_vulnerabilities", ["sycophancy", "isolation"]),  # reinforcing
        _row("B", "user_vulnerabilities", ["off_topic"]),  # neutral
        {"model": "B", "reply": "", "present": None, "error": "empty reply"},  # skipped
    ]
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["report", str(path), "--out", str(tmp_path / "r"), "--bootstrap", "500"]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    a, b = report["models"]["A"], report["models"]["B"]
    assert a["n"] == 4 and b["n"] == 3 and report["skipped"] == 1
    assert a["overall"]["boundary_maintaining"]["share"] == pytest.approx(2 / 4)
    assert a["overall"]["companionship_reinforcing"]["share"] == pytest.approx(2 / 4)
    assert a["overall"]["companionship_neutral"]["share"] == pytest.approx(1 / 4)
    assert a["overall"]["adequate_information"]["k"] == 2
    assert b["overall"]["companionship_reinforcing"]["share"] == pytest.approx(2 / 3, abs=1e-4)
    assert b["overall"]["boundary_maintaining"]["share"] == 0
    vul_a = a["by_category"]["user_vulnerabilities"]["boundary_maintaining"]
    assert (vul_a["k"], vul_a["n"]) == (2, 2)
    diff = report["comparison"]["by_category"]["user_vulnerabilities"]["boundary_maintaining"]
    assert diff["difference"] == pytest.approx(1.0)
    lo, hi = a["overall"]["boundary_maintaining"]["ci95"]
    assert 0 <= lo <= 0.5 <= hi <= 1


def test_label_formats_bad_rows_and_resume(tmp_path, tiny_bundle):
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": i, "prompt": "hi", "reply": f"reply number {i}"}) for i in range(10)]
    lines.insert(3, json.dumps({"id": "no-reply", "prompt": "hi"}))
    lines.insert(5, "{broken json")
    lines.insert(7, json.dumps({"id": "empty", "reply": "   "}))
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    # simulate an interrupted run: the first 4 output rows exist already
    assert (
        main(["label", str(src), "--out", str(out), "--bundle", str(tiny_bundle), "--no-progress", "--chunk-size", "4"])
        == 0
    )
    full = out.read_text().splitlines()
    out.write_text("\n".join(full[:4]) + "\n")
    assert main(["label", str(src), "--out", str(out), "--bundle", str(tiny_bundle), "--no-progress"]) == 0
    again = out.read_text().splitlines()
    assert len(again) == 13
    assert [json.loads(x).get("id") for x in again] == [json.loads(x).get("id") for x in full]
    errors = [json.loads(x)["error"] for x in again if json.loads(x)["error"]]
    assert len(errors) == 3 and any("invalid JSON" in e for e in errors)

    csv_out = tmp_path / "out.csv"
    assert main(["label", str(src), "--out", str(csv_out), "--bundle", str(tiny_bundle), "--no-progress"]) == 0
    with csv_out.open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 13 and "score_retention" in table[0] and "boundary_maintaining" in table[0]

    pq_out = tmp_path / "out.parquet"
    assert (
        main(["label", str(src), "--out", str(pq_out), "--bundle", str(tiny_bundle), "--no-progress", "--workers", "2"])
        == 0
    )
    import pyarrow.parquet as pq

    table = pq.read_table(pq_out).to_pylist()
    assert len(table) == 13 and not Path(str(pq_out) + ".partial.jsonl").exists()
    assert [r["id"] for r in table][:3] == ["0", "1", "2"]  # mixed int/str ids become text
