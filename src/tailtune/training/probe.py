"""A short timed probe of a fine-tuning run's own work on this machine (:class:`Probe`), which prices it
(:mod:`tailtune.training.cost`).

Real optimiser steps (forward, backward, clipping, AdamW) run on real batches of the training texts at the planned
length and batch size, warm-up steps excluded, for each kind of stage a plan holds (every parameter,
or the top layers on cached features, whose cache build is timed too); each kind is timed on two batch shapes of the
plan (its median and its widest padded batch), which gives a cost per step and per padded token (:class:`StepCost`).
A prediction pass, loading, saving and tokenising are timed too. The probe has a model of its own: the run's model is
loaded afresh (and seeded) when training starts.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tailtune.config import RunConfig, StageConfig
from tailtune.data.types import TextDataset
from tailtune.errors import TailTuneError
from tailtune.models.scopes import check_model_takes, set_trainable, trainable_modules
from tailtune.task import Task, get_task
from tailtune.training.batching import Encoded, encode, token_lengths
from tailtune.training.features import trains_on_cache
from tailtune.training.loop import _adamw

if TYPE_CHECKING:
    from accelerate import Accelerator

#: Texts whose token lengths stand for the training texts' (a fixed sample of larger sets).
SAMPLE_TEXTS = 1000
#: Each batch shape (two: the median and the widest batch) is timed over at least this many seconds of steps, and
#: at least one step, at most :data:`MAX_TIMED_STEPS`: cheap steps are timed many times, a slow CPU's few.
TIMED_SECONDS = 2.0
MAX_TIMED_STEPS = 5
#: A warm-up step this long (seconds) or longer serves both shapes; a cheaper one is run on each.
SLOW_STEP = 1.0


@dataclass
class StepCost:
    """Seconds of one training step of a kind of stage: ``per_step + per_token * padded tokens`` of its batch.

    Attributes:
        trainable: The stage's scope.
        cached: Whether it trains on cached features (then ``cache_per_token`` prices the cache build).
        batch_size: Texts per batch.
        per_step: Seconds of a step whatever its size (the optimiser's update, clipping, overheads).
        per_token: Seconds per padded token of a batch (forward and backward).
        cache_per_token: Seconds per padded token of building the cache (one forward pass), else 0.
        shapes: The ``[texts, tokens]`` of the batches timed, with the seconds each step took on them.
        warmup: Steps run before timing started.
        timed: Steps timed, over both shapes.
    """

    trainable: str
    cached: bool
    batch_size: int
    per_step: float
    per_token: float
    cache_per_token: float = 0.0
    shapes: list[list[float]] = field(default_factory=list)
    warmup: int = 0
    timed: int = 0

    def seconds(self, padded_tokens: float, batches: int = 1) -> float:
        """Seconds of ``batches`` steps over ``padded_tokens`` in all."""
        return self.per_step * batches + self.per_token * padded_tokens


class Probe:
    """Times the run's own work on this machine, on a model of its own (the run's model is loaded afresh later).

    Args:
        config: The run's settings, ``max_length`` resolved.
        labels: The label names, for the model's head.
        train: The training texts and their label ids (a sample of them is used).
        accelerator: The run's accelerator (its device and precision).
        class_counts: Training examples per class (the losses' weights).
        task: The labels' task, which builds the losses (default: single-label).
    """

    def __init__(self, config: RunConfig, labels: list[str], train: TextDataset, label_ids: np.ndarray,
                 accelerator: Accelerator, class_counts: list[int], task: Task | None = None) -> None:  # fmt: skip
        from tailtune.models.transformer import load_classifier

        started = time.perf_counter()
        self.config, self.accelerator, self.class_counts = config, accelerator, class_counts
        self.task, self.n_texts = task or get_task(None), len(train)
        self.model, self.tokenizer = load_classifier(
            config.model, labels, head=config.head, pooling=config.pooling,
            trust_remote_code=config.trust_remote_code, attention_dropout=config.attention_dropout,
        )  # fmt: skip
        check_model_takes(self.model, [stage.trainable for stage in config.stages], config.calibrate)
        self.model.to(accelerator.device)
        self.load_s = time.perf_counter() - started
        keep = sample_indices(len(train), SAMPLE_TEXTS)
        texts = [train.texts[i] for i in keep]
        self.lengths = token_lengths(self.tokenizer, texts)  # uncut, special tokens included
        self.specials = int(self.tokenizer.num_special_tokens_to_add())
        start = time.perf_counter()
        self.sample = encode(self.tokenizer, texts, label_ids[keep], max_length=config.max_length)
        self.encode_per_text = (time.perf_counter() - start) / max(1, len(texts))
        self.steps: dict[tuple[str, bool, int], StepCost] = {}
        self.lengths_timed: dict[tuple[str, bool, int], int] = {}
        self._predict_per_token: float | None = None
        self._save_s: float | None = None
        self.seconds = time.perf_counter() - started

    def trains(self, scope: str) -> bool:
        """Whether the model has what a stage of this scope trains (``top3`` needs three layers)."""
        try:
            trainable_modules(self.model, scope)
        except TailTuneError:
            return False
        return True

    def cacheable(self, trainable: str) -> bool:
        """Whether a stage of this scope trains on cached features in this run."""
        return trains_on_cache(self.config.feature_cache, self.model, self.sample, trainable)

    def step(self, trainable: str, batch_size: int, max_length: int, widths: Sequence[int]) -> StepCost:
        """The cost of a step of this kind, timed once per kind on batches as wide as ``widths`` at ``max_length``
        (a shorter length is priced by its tokens)."""
        key = (trainable, self.cacheable(trainable), batch_size)
        if key not in self.steps:
            self.predict_per_token  # noqa: B018 - the forward pass warmed up, and timed on its own
            started = time.perf_counter()
            self.steps[key] = self._time_steps(trainable, batch_size, max_length, widths)
            self.seconds += time.perf_counter() - started
            self.lengths_timed[key] = max_length
        return self.steps[key]

    @property
    def predict_per_token(self) -> float:
        """Seconds per padded token of prediction (evaluation batches, no gradients)."""
        if self._predict_per_token is None:
            started = time.perf_counter()
            self._predict_per_token = self._time_prediction()
            self.seconds += time.perf_counter() - started
        return self._predict_per_token

    @property
    def save_s(self) -> float:
        """Seconds to write the model folder."""
        if self._save_s is None:
            from tailtune.models.transformer import save_classifier

            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as folder:
                save_classifier(self.model, self.tokenizer, folder)
            self._save_s = time.perf_counter() - started
            self.seconds += self._save_s
        return self._save_s

    def close(self) -> None:
        """Let the probe's model go."""
        self.model = None
        self.accelerator.free_memory()
        gc.collect()

    def record(self) -> dict[str, Any]:
        """What was timed, for ``metrics.json``."""
        return {
            "seconds": round(self.seconds, 3), "device": str(self.accelerator.device),
            "mixed_precision": self.accelerator.mixed_precision, "sample_texts": len(self.lengths),
            "load_s": round(self.load_s, 3), "save_s": None if self._save_s is None else round(self._save_s, 3),
            "encode_per_text_s": self.encode_per_text, "predict_per_token_s": self._predict_per_token,
            "steps": [{"max_length": self.lengths_timed[key], **dataclasses.asdict(cost)}
                      for key, cost in self.steps.items()],
        }  # fmt: skip

    def _batches(self, batch_size: int, max_length: int, widths: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """Real batches of the sampled texts, cut at ``max_length``, each as wide as one of ``widths``."""
        cut = np.minimum(self.sample.lengths, max_length)
        order = np.argsort(cut, kind="stable")
        batches = []
        for width in widths:
            end = int(np.searchsorted(cut[order], width, side="right"))  # texts no longer than the width
            rows = order[max(0, end - batch_size) : max(end, 1)].tolist()
            rows = (rows * math.ceil(batch_size / len(rows)))[:batch_size]  # fewer texts than a batch: repeated
            batch = _cut(self.sample.collate(rows), max_length)
            batches.append({k: v.to(self.accelerator.device) for k, v in batch.items()})
        return batches

    def _time_steps(self, trainable: str, batch_size: int, max_length: int, widths: Sequence[int]) -> StepCost:
        from tailtune.training.features import build_cache, replay

        accelerator, model, stage = self.accelerator, self.model, StageConfig(trainable=trainable)
        cached = self.cacheable(trainable)
        params = set_trainable(model, trainable)
        batches = self._batches(batch_size, max_length, widths)
        cache, cache_per_token = None, 0.0
        if cached:
            rows = [row for batch in batches for row in batch["index"].tolist()]
            sub = Encoded.from_rows([self.sample.row(i)[:max_length] for i in rows], None, self.sample.pad_id)
            started = _now(accelerator)
            size = self.config.eval_batch_size
            cache = build_cache(model, sub, trainable, batch_size=size, device=accelerator.device,
                                autocast=accelerator.autocast(), show_progress=False)  # fmt: skip
            cache_per_token = (_now(accelerator) - started) / max(1, padded_tokens(sub.lengths, size))
            offset = 0
            for batch in batches:  # the batches' rows, renumbered as the cache holds them
                batch["index"] = torch.arange(offset, offset + len(batch["index"]))
                offset += len(batch["index"])
        loss_fn = self.task.loss(stage, self.class_counts, self.n_texts).to(accelerator.device)
        optimizer = _adamw(params, stage, accelerator.device)
        with replay(model, cache) as feed:
            prepared, optimizer = accelerator.prepare(model, optimizer)
            prepared.train()

            def step(batch: dict[str, torch.Tensor]) -> None:
                input_ids, mask = feed.inputs(batch, accelerator.device)
                loss = loss_fn(prepared(input_ids=input_ids, attention_mask=mask).logits, batch["labels"])
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(params, stage.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            started = _now(accelerator)
            step(batches[-1])  # warm-up, on the widest batch
            slow = _now(accelerator) - started >= SLOW_STEP
            warmup = 1 if slow else len(batches)
            for batch in batches[: warmup - 1]:
                step(batch)
            shapes, timed = [], 0
            for batch in batches:
                started, steps = _now(accelerator), 0
                while steps < MAX_TIMED_STEPS and (steps == 0 or _now(accelerator) - started < TIMED_SECONDS):
                    step(batch)
                    steps += 1
                seconds = (_now(accelerator) - started) / steps
                shapes.append([len(batch["labels"]), int(batch["input_ids"].shape[1]), seconds])
                timed += steps
            accelerator.free_memory()
        per_step, per_token = _line([rows * width for rows, width, _ in shapes], [s for *_, s in shapes])
        return StepCost(trainable, cached, batch_size, per_step, per_token, cache_per_token, shapes, warmup, timed)

    def _time_prediction(self) -> float:
        from tailtune.training.loop import predict_logits

        config = self.config
        # About two training batches' worth of texts: enough for a rate per token, few on a slow machine.
        rows = sample_indices(len(self.sample), min(config.eval_batch_size, 2 * config.batch_size), seed=1)
        sub = Encoded.from_rows([self.sample.row(i) for i in rows], None, self.sample.pad_id)
        warm = Encoded.from_rows([self.sample.row(i) for i in rows[:8]], None, self.sample.pad_id)
        predict_logits(self.model, warm, self.accelerator, batch_size=config.eval_batch_size)
        started = _now(self.accelerator)
        predict_logits(self.model, sub, self.accelerator, batch_size=config.eval_batch_size)
        return (_now(self.accelerator) - started) / max(1, padded_tokens(sub.lengths, config.eval_batch_size))


def padded_tokens(lengths: np.ndarray, batch_size: int) -> int:
    """Padded tokens of prediction batches over texts of these lengths (sorted by length, as prediction batches)."""
    if not len(lengths):
        return 0
    ordered = np.sort(np.asarray(lengths))[::-1]
    widths = ordered[::batch_size]
    sizes = np.minimum(batch_size, len(ordered) - np.arange(0, len(ordered), batch_size))
    return int(np.dot(widths, sizes))


def sample_indices(n: int, size: int, seed: int = 0) -> np.ndarray:
    """A fixed sample of ``size`` of ``range(n)`` (all of them where there are no more), in order."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _line(tokens: list[int], seconds: list[float]) -> tuple[float, float]:
    """``(per_step, per_token)`` of ``seconds = per_step + per_token * tokens`` through the timed shapes; where the
    shapes are alike (or the line would have a negative part), a cost proportional to tokens."""
    if len(tokens) >= 2 and max(tokens) > 1.2 * min(tokens):
        slope = (seconds[-1] - seconds[0]) / (tokens[-1] - tokens[0]) if tokens[-1] != tokens[0] else 0.0
        intercept = seconds[0] - slope * tokens[0]
        if slope > 0 and intercept >= 0:
            return intercept, slope
    return 0.0, sum(seconds) / max(1, sum(tokens))


def _cut(batch: dict[str, torch.Tensor], max_length: int) -> dict[str, torch.Tensor]:
    """A batch of rows already cut at ``max_length`` (the sample is encoded at the run's length; a shorter length
    cuts it further)."""
    return {k: v[:, :max_length] if k in ("input_ids", "attention_mask") else v for k, v in batch.items()}


def _now(accelerator: Accelerator) -> float:
    """The clock, once the device has finished what was queued (a GPU runs asynchronously)."""
    if accelerator.device.type == "cuda":
        torch.cuda.synchronize(accelerator.device)
    return time.perf_counter()
