"""Fine-tuning loop: windows of each reply are scored and max-pooled per label (the serving rule)."""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from serve.formatting import Encoded, PairFormatter
from train.args import TrainingArguments
from train.dataset import LabelledSet
from train.evaluation import f1_report


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _item_windows(enc: Encoded) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(enc.n_items)]
    for w, owner in enumerate(enc.owner):
        out[owner].append(w)
    return out


def pooled_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor], owner: torch.Tensor, n: int) -> torch.Tensor:
    """Forward all windows and max-pool their logits per item."""
    logits = model(**batch).logits
    pooled = torch.full((n, logits.shape[1]), float("-inf"), device=logits.device, dtype=logits.dtype)
    index = owner.unsqueeze(1).expand_as(logits)
    return pooled.scatter_reduce(0, index, logits, reduce="amax", include_self=True)


def _batch_tensors(
    formatter: PairFormatter, enc: Encoded, windows: list[int], device: torch.device
) -> dict[str, torch.Tensor]:
    arrays = formatter.pad([enc.input_ids[w] for w in windows], [enc.token_type_ids[w] for w in windows])
    return {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}


@torch.inference_mode()
def predict_scores(
    model: torch.nn.Module,
    formatter: PairFormatter,
    data: LabelledSet,
    device: torch.device,
    max_batch_tokens: int = 8192,
    progress: bool = False,
) -> np.ndarray:
    """Sigmoid scores [n, labels] from the torch model with the serving formatter and pooling."""
    model.eval()
    enc = formatter.encode(data.prompts, data.replies)
    order = sorted(range(enc.n_windows), key=lambda i: len(enc.input_ids[i]))
    logits = np.zeros((enc.n_windows, model.config.num_labels), dtype=np.float32)
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and (end - start + 1) * len(enc.input_ids[order[end]]) <= max_batch_tokens:
            end += 1
        batches.append(order[start:end])
        start = end
    for rows in tqdm(batches, desc="scoring", disable=not progress, leave=False):
        out = model(**_batch_tensors(formatter, enc, rows, device)).logits
        logits[rows] = out.float().cpu().numpy()
    pooled = np.full((enc.n_items, logits.shape[1]), -np.inf, dtype=np.float32)
    np.maximum.at(pooled, np.asarray(enc.owner), logits)
    return 1.0 / (1.0 + np.exp(-pooled))


def freeze_lower_layers(model: torch.nn.Module, n_layers: int) -> int:
    """Stop gradients for the embeddings and the lowest ``n_layers`` encoder layers; returns params frozen."""
    frozen = 0
    for name, param in model.named_parameters():
        parts = name.split(".")
        in_embeddings = "embeddings" in parts
        layer = int(parts[parts.index("layer") + 1]) if "layer" in parts else None
        if in_embeddings or (layer is not None and layer < n_layers):
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    stopped_early: str = ""
    best_dev_scores: np.ndarray | None = None


class MilTrainer:
    """Trains a sequence classifier on pooled window logits with class-weighted BCE."""

    def __init__(self, model: torch.nn.Module, formatter: PairFormatter, args: TrainingArguments) -> None:
        self.args = args
        self.formatter = formatter
        self.device = pick_device(args.device)
        if args.threads:
            torch.set_num_threads(args.threads)
        self.model = model.to(self.device)
        if args.freeze_layers > 0:
            freeze_lower_layers(self.model, args.freeze_layers)

    def _pos_weight(self, y: np.ndarray) -> torch.Tensor:
        pos = y.sum(axis=0)
        neg = len(y) - pos
        weight = np.sqrt(np.where(pos > 0, neg / np.maximum(pos, 1), 1.0))
        return torch.tensor(np.clip(weight, 1.0, self.args.max_pos_weight), dtype=torch.float32, device=self.device)

    def _batches(
        self, n_items: int, windows_per_item: list[list[int]], lengths: list[int], rng: random.Random
    ) -> list[list[int]]:
        """Length-bucketed record batches: shuffle, sort inside chunks, shuffle batch order."""
        items = list(range(n_items))
        rng.shuffle(items)
        size = self.args.batch_size
        chunk = size * 20
        batches = []
        for start in range(0, n_items, chunk):
            block = sorted(items[start : start + chunk], key=lambda i: (len(windows_per_item[i]), lengths[i]))
            batches += [block[k : k + size] for k in range(0, len(block), size)]
        rng.shuffle(batches)
        return batches

    def train(self, train: LabelledSet, dev: LabelledSet) -> TrainResult:
        args = self.args
        set_seed(args.seed)
        rng = random.Random(args.seed)
        started = time.monotonic()
        enc_full = self.formatter.encode(train.prompts, train.replies)
        enc_bare = self.formatter.encode([None] * len(train), train.replies)
        per_item = [_item_windows(enc_full), _item_windows(enc_bare)]
        lengths = [len(r) for r in train.replies]
        y = torch.from_numpy(train.y).to(self.device)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=self._pos_weight(train.y))

        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        head = [p for n, p in trainable if n.startswith("classifier")]
        body = [p for n, p in trainable if not n.startswith("classifier")]
        optimizer = torch.optim.AdamW(
            [{"params": body, "lr": args.learning_rate}, {"params": head, "lr": args.head_learning_rate}],
            weight_decay=args.weight_decay,
        )
        steps_per_epoch = math.ceil(len(train) / args.batch_size)
        total = steps_per_epoch * args.epochs
        warmup = max(1, int(total * args.warmup_ratio))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup))
        )
        result = TrainResult(model=self.model)
        best_f1, best_state, bad_epochs = -1.0, None, 0
        deadline = started + args.max_minutes * 60
        for epoch in range(1, args.epochs + 1):
            self.model.train()
            batches = self._batches(len(train), per_item[0], lengths, rng)
            bar = tqdm(batches, desc=f"epoch {epoch}/{args.epochs}", disable=not args.progress)
            running = 0.0
            for step, items in enumerate(bar, 1):
                windows, owner = [], []
                for slot, item in enumerate(items):
                    use_bare = rng.random() < args.prompt_dropout
                    enc = enc_bare if use_bare else enc_full
                    for w in per_item[int(use_bare)][item]:
                        windows.append((enc, w))
                        owner.append(slot)
                ids = [e.input_ids[w] for e, w in windows]
                types = [e.token_type_ids[w] for e, w in windows]
                batch = {k: torch.from_numpy(v).to(self.device) for k, v in self.formatter.pad(ids, types).items()}
                logits = pooled_logits(self.model, batch, torch.tensor(owner, device=self.device), len(items))
                loss = loss_fn(logits, y[items])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                running += loss.item()
                bar.set_postfix(loss=f"{running / step:.4f}")
                if time.monotonic() > deadline:
                    result.stopped_early = f"time budget of {args.max_minutes} min reached in epoch {epoch}"
                    break
            dev_scores = predict_scores(self.model, self.formatter, dev, self.device)
            report = f1_report(
                (dev_scores >= 0.5).astype(int), dev.y.astype(int), list(self.model.config.id2label.values())
            )
            entry = {
                "epoch": epoch,
                "train_loss": running / max(1, len(batches)),
                "dev_macro_f1": report["macro_f1"],
                "dev_micro_f1": report["micro_f1"],
                "elapsed_s": round(time.monotonic() - started, 1),
            }
            result.history.append(entry)
            print(
                f"epoch {epoch}: loss {entry['train_loss']:.4f}  dev macro-F1 {entry['dev_macro_f1']:.4f}  "
                f"micro-F1 {entry['dev_micro_f1']:.4f}  ({entry['elapsed_s']} s)",
                flush=True,
            )
            if report["macro_f1"] > best_f1:
                best_f1, bad_epochs, result.best_epoch = report["macro_f1"], 0, epoch
                best_state = copy.deepcopy(self.model.state_dict())
                result.best_dev_scores = dev_scores
            else:
                bad_epochs += 1
                if bad_epochs >= args.patience:
                    result.stopped_early = f"dev macro-F1 did not improve for {args.patience} epochs"
                    break
            if result.stopped_early:
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        result.seconds = time.monotonic() - started
        return result
