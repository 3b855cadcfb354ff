"""Input formatting shared by training and serving: pair layout, prompt budget, windows, pooling."""

import numpy as np
import pytest

from serve.formatting import FormatSpec, PairFormatter, pool_logits
from train.model import base_model_dir


@pytest.fixture(scope="module")
def formatter():
    return PairFormatter.from_file(
        str(base_model_dir() / "tokenizer.json"),
        FormatSpec(max_length=64, prompt_max_tokens=16, window_overlap=8, max_windows=4),
    )


def test_short_pair_is_one_window_with_segments(formatter):
    enc = formatter.encode(["how are you"], ["fine thanks"])
    assert enc.n_windows == 1 and enc.owner == [0]
    ids, types = enc.input_ids[0], enc.token_type_ids[0]
    assert ids[0] == formatter.cls_id and ids[-1] == formatter.sep_id
    assert ids.count(formatter.sep_id) == 2
    first_sep = ids.index(formatter.sep_id)
    assert set(types[: first_sep + 1]) == {0} and set(types[first_sep + 1 :]) == {1}


def test_prompt_is_capped_and_reply_keeps_the_window(formatter):
    enc = formatter.encode(["word " * 200], ["reply"])
    ids = enc.input_ids[0]
    assert ids.index(formatter.sep_id) - 1 == 16


def test_missing_prompt_keeps_reply_in_segment_one(formatter):
    enc = formatter.encode([None], ["a reply"])
    assert enc.input_ids[0][:2] == [formatter.cls_id, formatter.sep_id]
    assert enc.token_type_ids[0][2] == 1


def test_long_reply_windows_overlap_and_cover_the_end(formatter):
    reply = " ".join(f"w{i}" for i in range(60))
    enc = formatter.encode(["p"], [reply])
    assert 1 < enc.n_windows <= 4
    assert all(len(ids) <= 64 for ids in enc.input_ids)
    reply_ids = formatter.tokenizer.encode(reply, add_special_tokens=False).ids
    last_window_reply = enc.input_ids[-1][3:-1]
    assert last_window_reply == reply_ids[-len(last_window_reply) :]
    first_window_reply = enc.input_ids[0][3:-1]
    assert first_window_reply == reply_ids[: len(first_window_reply)]


def test_window_cap_keeps_first_and_last(formatter):
    slices = formatter.reply_slices(1000, 45)
    assert len(slices) == 4
    assert slices[0][0] == 0 and slices[-1][1] == 1000


def test_pool_is_max_per_item():
    logits = np.array([[0.0, 1.0], [2.0, -1.0], [5.0, 5.0]], dtype=np.float32)
    pooled = pool_logits(logits, [0, 0, 1], 2)
    assert pooled.tolist() == [[2.0, 1.0], [5.0, 5.0]]


def test_pad_builds_mask(formatter):
    arrays = formatter.pad([[1, 2, 3], [4]], [[0, 0, 1], [0]])
    assert arrays["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert arrays["input_ids"][1, 1] == formatter.pad_id


def test_windows_per_item_counts_each_items_windows():
    from serve.formatting import Encoded

    enc = Encoded(input_ids=[[1], [2], [3], [4]], token_type_ids=[[0]] * 4, owner=[0, 0, 2, 2], n_items=3)
    assert enc.windows_per_item().tolist() == [2, 0, 2]
