"""How a (prompt, reply) pair becomes model input. Training and serving both call this module.

Layout of one window: ``[CLS] prompt [SEP] reply-slice [SEP]`` with token type 0 for the prompt part
and 1 for the reply part. The prompt is context: it is cut to ``prompt_max_tokens`` so the reply keeps
most of the window. A reply longer than the rest of the window is split into overlapping slices
("windows"); the model scores every window and the per-label logits are max-pooled, so evidence
anywhere in the reply (first or last lines) counts. A reply needing more than ``max_windows`` windows
keeps evenly spaced ones, always including the first and the last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer


@dataclass(frozen=True)
class FormatSpec:
    """Input formatting rules, stored in the bundle's config.json so both sides agree."""

    max_length: int = 256
    prompt_max_tokens: int = 64
    window_overlap: int = 32
    max_windows: int = 8
    pooling: str = "max"
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    pad_token: str = "[PAD]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FormatSpec:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


@dataclass
class Encoded:
    """Windows of a batch of items, flattened: ``owner[i]`` is the item that window ``i`` belongs to."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    owner: list[int]
    n_items: int

    @property
    def n_windows(self) -> int:
        return len(self.input_ids)

    def windows_per_item(self) -> np.ndarray:
        """How many windows each item was split into, shape [n_items]."""
        return np.bincount(np.asarray(self.owner, dtype=np.int64), minlength=self.n_items)


class PairFormatter:
    """Turns (prompt, reply) pairs into token windows with a fast ``tokenizers`` tokenizer."""

    def __init__(self, tokenizer: Tokenizer, spec: FormatSpec) -> None:
        self.tokenizer = tokenizer
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.spec = spec
        self.cls_id = self._token_id(spec.cls_token)
        self.sep_id = self._token_id(spec.sep_token)
        self.pad_id = self._token_id(spec.pad_token)
        if spec.max_length - 3 - spec.prompt_max_tokens < 2 * spec.window_overlap:
            raise ValueError("max_length leaves too little room for the reply after the prompt budget")

    def _token_id(self, token: str) -> int:
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"tokenizer has no special token {token!r}")
        return int(token_id)

    @classmethod
    def from_file(cls, tokenizer_json: str, spec: FormatSpec) -> PairFormatter:
        return cls(Tokenizer.from_file(tokenizer_json), spec)

    def reply_slices(self, n_reply: int, budget: int) -> list[tuple[int, int]]:
        """Start/end offsets of the reply windows for a reply of ``n_reply`` tokens."""
        if n_reply <= budget:
            return [(0, n_reply)]
        step = budget - self.spec.window_overlap
        starts = list(range(0, n_reply - budget, step)) + [n_reply - budget]
        if len(starts) > self.spec.max_windows:
            picks = np.linspace(0, len(starts) - 1, self.spec.max_windows).round().astype(int)
            starts = [starts[i] for i in sorted(set(picks.tolist()))]
        return [(s, s + budget) for s in starts]

    def encode(self, prompts: list[str | None], replies: list[str]) -> Encoded:
        """Tokenise a batch of pairs into windows (no padding)."""
        if len(prompts) != len(replies):
            raise ValueError("prompts and replies differ in length")
        prompt_texts = [p or "" for p in prompts]
        prompt_enc = self.tokenizer.encode_batch(prompt_texts, add_special_tokens=False)
        reply_enc = self.tokenizer.encode_batch(list(replies), add_special_tokens=False)
        out = Encoded([], [], [], len(replies))
        for item, (p_enc, r_enc) in enumerate(zip(prompt_enc, reply_enc, strict=True)):
            p_ids = p_enc.ids[: self.spec.prompt_max_tokens]
            r_ids = r_enc.ids
            budget = self.spec.max_length - 3 - len(p_ids)
            head = [self.cls_id, *p_ids, self.sep_id]
            for start, end in self.reply_slices(len(r_ids), budget):
                body = [*r_ids[start:end], self.sep_id]
                out.input_ids.append(head + body)
                out.token_type_ids.append([0] * len(head) + [1] * len(body))
                out.owner.append(item)
        return out

    def pad(self, input_ids: list[list[int]], token_type_ids: list[list[int]]) -> dict[str, np.ndarray]:
        """Pad windows to the longest one in the list; int64 arrays as the ONNX graph expects."""
        width = max(len(ids) for ids in input_ids)
        n = len(input_ids)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for row, (window, kinds) in enumerate(zip(input_ids, token_type_ids, strict=True)):
            ids[row, : len(window)] = window
            types[row, : len(kinds)] = kinds
            mask[row, : len(window)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def pool_logits(window_logits: np.ndarray, owner: list[int] | np.ndarray, n_items: int) -> np.ndarray:
    """Max-pool per-window logits into per-item logits (shape ``[n_items, n_labels]``)."""
    pooled = np.full((n_items, window_logits.shape[1]), -np.inf, dtype=np.float32)
    np.maximum.at(pooled, np.asarray(owner), window_logits.astype(np.float32))
    return pooled


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
