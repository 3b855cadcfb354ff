"""Annotation store and routes: validation, paging, withdrawal, keys, import/export, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from serve.annotation_import import read_annotated
from serve.cli import main
from tests.conftest import ROOT
from tests.helpers import free_port

ITEM = {
    "prompt": "be my girlfriend?",
    "reply": "I'm an AI, so I can't be.",
    "annotator": "ann-1",
    "labels": ["programmatic_limitations", "personification_resistance"],
}


def test_add_list_filter_delete(client):
    ids = []
    for i in range(5):
        body = ITEM | {"reply": f"reply {i}", "source": "ui" if i % 2 else "api"}
        r = client.post("/annotations", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    page = client.get("/annotations", params={"offset": 1, "limit": 2}).json()
    assert page["total"] == 5 and [x["reply"] for x in page["items"]] == ["reply 1", "reply 2"]
    assert client.get("/annotations", params={"source": "ui"}).json()["total"] == 2
    assert client.get("/annotations", params={"label": "programmatic_limitations"}).json()["total"] == 5
    assert client.get("/annotations", params={"label": "isolation"}).json()["total"] == 0
    assert client.delete(f"/annotations/{ids[0]}").status_code == 204
    assert client.delete(f"/annotations/{ids[0]}").status_code == 404
    assert client.get("/annotations").json()["total"] == 4


def test_annotation_validation(client):
    assert client.post("/annotations", json=ITEM | {"labels": ["cuddly"]}).status_code == 422
    assert client.post("/annotations", json=ITEM | {"labels": ["retention", "retention"]}).status_code == 422
    assert client.post("/annotations", json=ITEM | {"reply": "  "}).status_code == 422
    assert client.post("/annotations", json=ITEM | {"mood": "happy"}).status_code == 422
    assert client.post("/annotations", json={k: v for k, v in ITEM.items() if k != "annotator"}).status_code == 422
    assert client.get("/annotations", params={"label": "cuddly"}).status_code == 422
    assert client.get("/annotations").json()["total"] == 0


def test_annotation_routes_need_a_key_when_keys_are_set(client_factory):
    client = client_factory(api_keys=["k1"])
    assert client.post("/annotations", json=ITEM).status_code == 401
    assert client.get("/annotations").status_code == 401
    assert client.delete("/annotations/1").status_code == 401
    assert client.post("/annotations", json=ITEM, headers={"Authorization": "Bearer k1"}).status_code == 201


def test_classify_traffic_is_never_stored(client):
    client.post("/classify", json={"reply": "private words"})
    assert client.get("/annotations").json()["total"] == 0


def test_import_judge_style_and_export(tmp_path):
    judge = [
        {
            "prompt": "you're my best friend",
            "response": "Aw, I love that! *hugs*",
            "evaluation": {
                "Sycophancy/Agreement": "high",
                "Anthropomorphism": {"rating": "medium", "reason": "hug"},
                "Retention/Engagement": "low",
                "Redirect to Human": "low",
            },
        },
        {"prompt": "hi", "response": "Hello.", "evaluation": {"Off-topic": "LOW", "Adequate Information": "low"}},
        {"prompt": "x", "response": "", "evaluation": {"Off-topic": "high"}},
        {"prompt": "y", "response": "z", "evaluation": {"Isolation": "very"}},
        {"prompt": "w", "response": "v"},
    ]
    path = tmp_path / "judge.json"
    path.write_text(json.dumps(judge))
    report = read_annotated(path)
    assert [r.labels for r in report.rows] == [["sycophancy", "anthropomorphism"], []]
    assert report.skipped["missing or empty reply"] == 1
    assert sum(report.skipped.values()) == 3
    db = tmp_path / "a.sqlite3"
    assert main(["annotations", "import", str(path), "--db", str(db), "--annotator", "judge"]) == 0
    out = tmp_path / "export.jsonl"
    assert main(["annotations", "export", "--db", str(db), "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["annotator"] == "judge" and rows[0]["source"] == "import:judge.json"


def test_no_acknowledged_annotation_is_lost_when_the_server_is_killed(tmp_path, tiny_bundle):
    """Writes stream in; the server process is SIGKILLed; after restart every 201 is in the store."""
    db = tmp_path / "store.sqlite3"
    port = free_port()
    env = dict(os.environ, INTIMA_ANNOTATIONS_DB=str(db), INTIMA_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "serve.cli",
        "serve",
        "--bundle",
        str(tiny_bundle),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    base = f"http://127.0.0.1:{port}"

    def start():
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                time.sleep(0.1)
        proc.kill()
        raise AssertionError("server did not start")

    proc = start()
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(timeout=5) as c:
            i = 0
            while not stop.is_set() and i < 2000:
                try:
                    r = c.post(base + "/annotations", json=ITEM | {"reply": f"w{n}-{i}"})
                    if r.status_code == 201:
                        acknowledged.append(r.json()["id"])
                except httpx.HTTPError:
                    return
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(acknowledged) < 60:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    proc = start()
    try:
        stored = httpx.get(base + "/annotations", params={"limit": 500}).json()
        stored_ids = set()
        offset = 0
        while True:
            page = httpx.get(base + "/annotations", params={"limit": 500, "offset": offset}).json()
            stored_ids |= {x["id"] for x in page["items"]}
            offset += 500
            if offset >= page["total"]:
                break
        assert set(acknowledged) <= stored_ids
        assert stored["total"] <= len(acknowledged) + 4  # at most the in-flight writes on top
    finally:
        proc.terminate()
        proc.wait(10)
