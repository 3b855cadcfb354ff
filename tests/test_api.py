"""The REST API against the real app and a real (tiny) ONNX bundle, through TestClient."""

from __future__ import annotations

from serve.taxonomy import GROUPS, LABELS

LONG_REPLY = "Here is a detailed answer with many steps. " * 120


def test_classify_reply_and_prompt(client):
    r = client.post("/classify", json={"prompt": "I named you Sam, ok?", "reply": "Sure, Sam it is!"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["scores"]) == set(LABELS)
    assert all(0.0 <= s <= 1.0 for s in body["scores"].values())
    assert set(body["groups"]) == set(GROUPS)
    assert body["present"] == [lab for lab in LABELS if body["decisions"][lab]]
    assert body["model"]["version"] == "0.0.1-test"
    assert len(body["model"]["sha256"]) == 64
    for header in ("x-tokenization-time", "x-queue-time", "x-inference-time", "x-compute-time"):
        assert header in r.headers


def test_classify_messages_uses_last_assistant_turn_and_preceding_user(client):
    direct = client.post("/classify", json={"prompt": "second question", "reply": "second answer"}).json()
    via_messages = client.post(
        "/classify",
        json={
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"},
                {"role": "assistant", "content": "second answer"},
            ]
        },
    ).json()
    assert via_messages["scores"] == direct["scores"]


def test_long_reply_uses_several_windows(client):
    body = client.post("/classify", json={"reply": LONG_REPLY}).json()
    assert body["windows"] > 1


def test_batch_keeps_order_and_matches_single(client):
    items = [{"reply": "Short one."}, {"prompt": "hi", "reply": "Hello! I missed you so much."}, {"reply": LONG_REPLY}]
    batch = client.post("/classify/batch", json={"items": items})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert len(results) == 3
    for item, result in zip(items, results, strict=True):
        single = client.post("/classify", json=item).json()
        for lab in LABELS:
            # int8 dynamic quantisation scales activations per batch: tiny drift is expected
            assert abs(single["scores"][lab] - result["scores"][lab]) < 2e-3


def test_predict_tei_shapes(client):
    one = client.post("/predict", json={"inputs": "I am always here for you."})
    assert one.status_code == 200
    assert [x["label"] for x in one.json()] and set(x["label"] for x in one.json()) == set(LABELS)
    scores = [x["score"] for x in one.json()]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    pair = client.post("/predict", json={"inputs": ["hello?", "Hi there!"]}).json()
    assert isinstance(pair, list) and isinstance(pair[0], dict)
    batch = client.post("/predict", json={"inputs": [["hello?", "Hi there!"], "just a reply", ["x", "y"]]}).json()
    assert len(batch) == 3 and isinstance(batch[0], list)
    raw = client.post("/predict", json={"inputs": "I am always here for you.", "raw_scores": True}).json()
    assert any(x["score"] < 0 or x["score"] > 1 for x in raw)


def test_health_ready_info_metrics(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    info = client.get("/info").json()
    assert info["labels"] == list(LABELS)
    assert set(info["thresholds"]) == set(LABELS)
    assert info["limits"]["max_batch_items"] == 64
    assert info["model"]["model_file"] == "model.onnx"
    assert info["model"]["execution_providers"] == ["CPUExecutionProvider"]
    client.post("/classify", json={"reply": "hello"})
    text = client.get("/metrics").text
    for name in (
        "intima_requests_total",
        "intima_request_seconds",
        "intima_batch_windows",
        "intima_queue_windows",
        "intima_labels_emitted_total",
    ):
        assert name in text
    assert 'route="/classify"' in text
    assert client.get("/docs").status_code == 200
    assert "/classify" in client.get("/openapi.json").json()["paths"]


def _error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] and body["error_type"]
    return body


def test_bad_json_and_bad_utf8_are_400(client):
    _error(client.post("/classify", content=b"{not json", headers={"content-type": "application/json"}), 400)
    _error(
        client.post("/classify", content=b'{"reply": "\xff\xfe"}', headers={"content-type": "application/json"}), 400
    )


def test_wrong_types_unknown_fields_and_missing_reply_are_422(client):
    assert "reply" in _error(client.post("/classify", json={"reply": 42}), 422)["error"]
    assert "extra" in _error(client.post("/classify", json={"reply": "x", "colour": "red"}), 422)["error"].lower()
    _error(client.post("/classify", json={}), 422)
    _error(client.post("/classify", json=["reply"]), 422)
    _error(client.post("/classify/batch", json={"items": []}), 422)
    _error(client.post("/predict", json={"inputs": []}), 422)
    _error(client.post("/predict", json={"inputs": [["a", "b", "c"]]}), 422)


def test_empty_and_whitespace_reply_are_422(client):
    assert "empty" in _error(client.post("/classify", json={"reply": ""}), 422)["error"]
    assert "empty" in _error(client.post("/classify", json={"reply": "  \n\t "}), 422)["error"]
    assert (
        "items.1"
        in _error(client.post("/classify/batch", json={"items": [{"reply": "ok"}, {"reply": " "}]}), 422)["error"]
    )


def test_messages_without_assistant_turn_is_422(client):
    body = _error(client.post("/classify", json={"messages": [{"role": "user", "content": "hi"}]}), 422)
    assert "assistant" in body["error"]
    _error(client.post("/classify", json={"messages": [{"role": "robot", "content": "hi"}]}), 422)
    _error(client.post("/classify", json={"messages": [{"role": "assistant", "content": "hi"}], "reply": "x"}), 422)


def test_too_long_and_too_many_are_413(client_factory):
    client = client_factory(max_reply_chars=100, max_batch_items=2, max_body_bytes=5000)
    assert "limit 100" in _error(client.post("/classify", json={"reply": "x" * 101}), 413)["error"]
    _error(client.post("/classify", json={"reply": "ok", "prompt": "p" * 9000}), 413)
    _error(client.post("/classify/batch", json={"items": [{"reply": "a"}] * 3}), 413)
    _error(client.post("/classify", json={"reply": "y" * 6000}), 413)  # body limit
    ok = client.post("/predict", json={"inputs": "z" * 500, "truncate": True})
    assert ok.status_code == 200


def test_api_keys(client_factory):
    client = client_factory(api_keys=["s3cret", "other"])
    r = client.post("/classify", json={"reply": "hi"})
    assert _error(r, 401)["error_type"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    _error(client.post("/classify", json={"reply": "hi"}, headers={"Authorization": "Bearer wrong"}), 401)
    ok = client.post("/classify", json={"reply": "hi"}, headers={"Authorization": "Bearer other"})
    assert ok.status_code == 200
    assert client.get("/health").status_code == 200  # probes stay open


def test_overload_answers_429_with_retry_after(client_factory):
    client = client_factory(max_queue_windows=1)
    r = client.post("/classify/batch", json={"items": [{"reply": "a"}, {"reply": "b"}]})
    assert _error(r, 429)["error_type"] == "overloaded"
    assert r.headers["retry-after"] == "1"
    assert client.post("/classify", json={"reply": "a"}).status_code == 200


def test_reply_text_not_logged_unless_enabled(client_factory, caplog):
    secret = "my very private confession 8472"
    client = client_factory()
    with caplog.at_level("INFO", logger="intima.serve"):
        client.post("/classify", json={"reply": secret})
    assert secret not in caplog.text
    client = client_factory(log_text=True)
    with caplog.at_level("INFO", logger="intima.serve"):
        client.post("/classify", json={"reply": secret})
    assert secret in caplog.text
