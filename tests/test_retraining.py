"""Retraining loop: extra sources, checked promotion with an atomic pointer, reload under load, select."""

from __future__ import annotations

import json
import shutil
import threading
import time

import httpx
import pytest

from data.records import Record
from serve.bundle import load_bundle, resolve_bundle_dir
from serve.cli import main
from tests.conftest import FIXTURES
from tests.helpers import serve_in_thread
from train.extra_sources import load_extra, merge_extra


@pytest.fixture(scope="module")
def second_bundle(tmp_path_factory, tiny_records):
    from serve.taxonomy import LABELS
    from train.args import TrainingArguments
    from train.model import base_model_dir, tiny_classifier
    from train.pipeline import run_training

    out = tmp_path_factory.mktemp("second") / "tiny-v2"
    args = TrainingArguments(
        output_dir=out,
        epochs=1,
        batch_size=8,
        progress=False,
        model_version="0.0.2-test",
        model_name="intima-tiny",
        seed=5,
        # an under-trained 1-epoch tiny model puts many scores on its thresholds; parity
        # itself is checked on the main tiny bundle, here only the second version matters
        parity_min_agreement=0.0,
    )
    extra = [_rec("x1", "An extra correction from the annotation store, about a reply.", ["retention"])]
    return run_training(
        tiny_records,
        args,
        model=tiny_classifier(list(LABELS), 30522, seed=7),
        tokenizer_dir=base_model_dir(),
        extra_train=extra,
    )


@pytest.fixture()
def models_dir(tmp_path, tiny_bundle, second_bundle):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(tiny_bundle, models / "v1")
    shutil.copytree(second_bundle, models / "v2")
    (models / "current").write_text("v1\n")
    return models


def _rec(rid: str, reply: str, labels: list[str], split: str = "train") -> Record:
    return Record(rid, "p", "none", "none", reply, "terse", labels, "a", split)


def test_extra_annotations_join_the_train_split(second_bundle, tiny_records):
    data = json.loads((second_bundle / "metrics.json").read_text())["data"]
    assert data["train"] == sum(r.split == "train" for r in tiny_records) + 1
    assert data["test"] == sum(r.split == "test" for r in tiny_records)


def test_merge_extra_dedups_reports_conflicts_and_protects_eval():
    corpus = [_rec("c1", "train reply", ["retention"]), _rec("c2", "test reply", ["isolation"], "test")]
    extra = [
        _rec("e1", "new reply", ["sycophancy"]),
        _rec("e2", "new reply", ["anthropomorphism"]),  # same text, other labels: newest wins
        _rec("e3", "test reply", ["off_topic"]),  # would leak into the test split
        _rec("e4", "Train reply!", ["off_topic"]),  # correction of a train record
    ]
    added, report = merge_extra(corpus, extra)
    assert [r.labels for r in added] == [["anthropomorphism"]]
    assert report.duplicates == 1 and len(report.conflicts) == 1
    assert report.dropped_eval_overlap == 1 and report.corrected_train == 1
    assert corpus[0].labels == ["off_topic"] and corpus[1].labels == ["isolation"]


def test_store_is_an_extra_source(tmp_path):
    from serve.annotations_store import AnnotationStore

    store = AnnotationStore(tmp_path / "s.sqlite3")
    store.add("hi", "hello there", ["adequate_information"], "ann", "api")
    store.close()
    (extra,) = load_extra(tmp_path / "s.sqlite3")
    assert extra.reply == "hello there" and extra.split == "train" and extra.labels == ["adequate_information"]


def test_promote_refuses_a_regression_and_switches_atomically(models_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURES / "tiny_corpus.jsonl", data / "c.jsonl")
    args = ["promote", str(models_dir / "v2"), "--models", str(models_dir), "--data", str(data)]
    assert main(args + ["--floor", "retention=1.01"]) == 1  # an impossible floor: refused
    assert resolve_bundle_dir(models_dir).name == "v1"
    reports = list((models_dir / "promotions").glob("*.md"))
    assert reports and "refused" in reports[0].read_text()
    assert main(args + ["--margin", "1.0", "--label-margin", "1.0"]) == 0
    assert resolve_bundle_dir(models_dir).name == "v2"
    assert load_bundle(models_dir).version == "0.0.2-test"
    assert not (models_dir / ".current.tmp").exists()


def test_reload_under_load_has_zero_failures(models_dir, settings_factory):
    from serve.app import create_app

    app = create_app(settings_factory(bundle=models_dir, admin_keys=["adm"]))
    failures, successes, versions = [], [0], set()
    stop = threading.Event()
    with serve_in_thread(app, "/ready") as base:
        assert httpx.get(base + "/info").json()["model"]["version"] == "0.0.1-test"

        def load() -> None:
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    r = c.post(base + "/classify", json={"prompt": "hi", "reply": "I'm always here for you!"})
                    if r.status_code == 200:
                        successes[0] += 1
                        versions.add(r.json()["model"]["version"])
                    else:
                        failures.append(r.status_code)

        threads = [threading.Thread(target=load) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        assert httpx.post(base + "/admin/reload").status_code == 401
        (models_dir / "current").write_text("v2\n")
        r = httpx.post(base + "/admin/reload", headers={"Authorization": "Bearer adm"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json() == r.json() | {"previous": "0.0.1-test", "current": "0.0.2-test"}
        time.sleep(0.5)
        (models_dir / "current").write_text("missing-folder\n")
        bad = httpx.post(base + "/admin/reload", headers={"Authorization": "Bearer adm"}, timeout=60)
        assert bad.status_code == 409
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
        assert httpx.get(base + "/info").json()["model"]["version"] == "0.0.2-test"
    assert failures == []
    assert successes[0] > 20
    assert versions == {"0.0.1-test", "0.0.2-test"}


def test_select_returns_the_least_certain_rows(tmp_path, tiny_bundle):
    src = tmp_path / "unlabelled.jsonl"
    rows = [json.loads(x) for x in (FIXTURES / "tiny_corpus.jsonl").read_text().splitlines()]
    src.write_text("".join(json.dumps({"prompt": r["prompt"], "reply": r["reply"]}) + "\n" for r in rows))
    out = tmp_path / "pick.jsonl"
    assert main(["select", str(src), "--k", "5", "--out", str(out), "--bundle", str(tiny_bundle)]) == 0
    picked = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(picked) == 5
    u = [p["uncertainty"] for p in picked]
    assert u == sorted(u, reverse=True) and all(-1 <= x <= 1 for x in u)
