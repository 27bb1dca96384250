"""Tests of the stage loop: frozen parameters stay frozen, fresh optimisers, schedules, accumulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_texts

import tailtune.training.loop as training
from tailtune.config import RunConfig, StageConfig
from tailtune.errors import TailTuneError
from tailtune.models.transformer import load_classifier
from tailtune.strategies import build_run_config
from tailtune.training.batching import Encoded, encode
from tailtune.training.loop import StageHooks, make_accelerator, predict_logits, train_stages
from tailtune.training.precision import auto_precision

TOP1 = ("classifier.", "bert.pooler.", "bert.encoder.layer.1.")
LABELS = ["money", "sport", "tech"]


@pytest.fixture(scope="module")
def texts_and_ids() -> tuple[list[str], np.ndarray]:
    texts, labels = make_texts({"sport": 12, "tech": 6, "money": 3}, seed=1)
    return texts, np.array([LABELS.index(label) for label in labels])


def _setup(model_dir, texts_and_ids, stages, **run):
    texts, ids = texts_and_ids
    model, tokenizer = load_classifier(str(model_dir), LABELS)
    data = encode(tokenizer, texts, ids, max_length=16)
    config = RunConfig(model=str(model_dir), stages=stages, **{"batch_size": 4, "max_length": 16, **run})
    return model, data, config, np.bincount(ids, minlength=3).tolist()


class _Hooks(StageHooks):
    """Hands the loop's events to the given functions."""

    def __init__(self, on_log=None, on_epoch_end=None, on_stage_end=None) -> None:
        self.log, self.epoch_end, self.stage_end = on_log, on_epoch_end, on_stage_end

    def on_log(self, entry):
        if self.log is not None:
            self.log(entry)

    def on_epoch_end(self, stage_index, stage, epoch, planned):
        return self.epoch_end is not None and self.epoch_end(stage_index, stage, epoch, planned)

    def on_stage_end(self, stage_index, stage, model):
        if self.stage_end is not None:
            self.stage_end(stage_index, stage)


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("feature_cache", [True, False])
def test_frozen_parameters_unchanged(tiny_model, texts_and_ids, feature_cache):
    """After a top1 stage every frozen parameter is bit-for-bit unchanged and every trainable one moved."""
    stage = StageConfig(name="stage1", trainable="top1", loss="ldam", weights="effective", lr=1e-3)
    model, data, config, counts = _setup(tiny_model, texts_and_ids, [stage], feature_cache=feature_cache)
    before = _snapshot(model)
    reports = train_stages(model, data, counts, config, make_accelerator(config), show_progress=False)
    assert [s.cached for s in reports] == [feature_cache]
    frozen = [n for n in before if not n.startswith(TOP1)]
    trainable = [n for n in before if n.startswith(TOP1)]
    assert len(frozen) > 20 and len(trainable) > 10
    after = dict(model.named_parameters())
    assert [n for n in frozen if not torch.equal(after[n], before[n])] == []
    assert [n for n in trainable if torch.equal(after[n], before[n])] == []
    # The loop hands the model back with every parameter trainable again.
    assert all(p.requires_grad for p in model.parameters())


def test_fresh_optimizer_per_stage(tiny_model, texts_and_ids, monkeypatch):
    """Each stage builds its own AdamW over its own trainable parameters, starting with empty state."""
    created = []
    real_adamw = torch.optim.AdamW

    class RecordingAdamW(real_adamw):
        def __init__(self, params, **kwargs):
            params = list(params)
            super().__init__(params, **kwargs)
            created.append({"optimizer": self, "params": {id(p) for p in params}, "state": len(self.state), **kwargs})

    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    stages = [
        StageConfig(name="stage1", trainable="top1", lr=1e-3, weight_decay=0.01),
        StageConfig(name="stage2", trainable="all", lr=1e-5, adam_epsilon=1e-6),
    ]
    model, data, config, counts = _setup(tiny_model, texts_and_ids, stages)
    named = dict(model.named_parameters())
    train_stages(model, data, counts, config, make_accelerator(config), show_progress=False)

    assert len(created) == 2
    first, second = created
    assert first["optimizer"] is not second["optimizer"]
    assert first["params"] == {id(p) for n, p in named.items() if n.startswith(TOP1)}
    assert second["params"] == {id(p) for p in named.values()}
    assert first["state"] == second["state"] == 0
    assert (first["lr"], first["weight_decay"], first["eps"]) == (1e-3, 0.01, 1e-8)
    assert (second["lr"], second["weight_decay"], second["eps"]) == (1e-5, 0.0, 1e-6)
    # The second optimiser stepped 6 times (ceil(21 / 4)) over every parameter, embeddings included.
    embeddings = named["bert.embeddings.word_embeddings.weight"]
    assert int(second["optimizer"].state[embeddings]["step"]) == 6
    assert embeddings not in first["optimizer"].state


def test_history_loss_and_lr_schedule(tiny_model, texts_and_ids):
    """History has one entry per step; lr decays linearly from the stage's peak to 0 at each stage's end."""
    stages = [
        StageConfig(name="stage1", trainable="top1", lr=1e-3, epochs=2),
        StageConfig(name="stage2", trainable="all", lr=1e-5),
    ]
    model, data, config, counts = _setup(tiny_model, texts_and_ids, stages, logging_steps=1)
    history, after = [], []
    reports = train_stages(
        model, data, counts, config, make_accelerator(config), show_progress=False,
        hooks=[_Hooks(on_log=history.append, on_stage_end=lambda i, stage: after.append((i, stage.name)))],
    )  # fmt: skip
    assert [(s.name, s.steps) for s in reports] == [("stage1", 12), ("stage2", 6)]
    assert after == [(0, "stage1"), (1, "stage2")]
    for index, (stage, total) in enumerate(zip(stages, (12, 6), strict=True)):
        entries = [e for e in history if e["stage"] == index]
        assert [e["step"] for e in entries] == list(range(1, total + 1))
        assert {e["stage_name"] for e in entries} == {stage.name}
        lrs = [e["lr"] for e in entries]
        np.testing.assert_allclose(lrs, [stage.lr * (1 - k / total) for k in range(1, total + 1)], atol=1e-12)
        assert lrs[-1] == 0.0
        assert entries[-1]["epoch"] == stage.epochs
        assert all(math.isfinite(e["loss"]) and e["loss"] > 0 for e in entries)


def test_logging_steps_and_warmup(tiny_model, texts_and_ids):
    """With logging_steps=4 entries come every 4 steps plus the last; warm-up raises the lr first."""
    stage = StageConfig(name="s", trainable="head", lr=1e-2, epochs=2, warmup_ratio=0.5)
    model, data, config, counts = _setup(tiny_model, texts_and_ids, [stage], logging_steps=4)
    history = []
    train_stages(model, data, counts, config, make_accelerator(config), hooks=[_Hooks(on_log=history.append)],
                 show_progress=False)  # fmt: skip
    assert [e["step"] for e in history] == [4, 8, 12]
    # 6 warm-up steps of 12: lr(4) = 4/6 of the peak, then linear decay: lr(8) = 4/6, lr(12) = 0.
    np.testing.assert_allclose([e["lr"] for e in history], [1e-2 * 4 / 6, 1e-2 * 4 / 6, 0.0], atol=1e-12)


def test_gradient_accumulation(tiny_model, texts_and_ids, monkeypatch):
    """With 2 accumulation steps, 6 batches per epoch make 3 optimiser steps, and the lr still ends at 0."""
    created = []
    real_adamw = torch.optim.AdamW

    class RecordingAdamW(real_adamw):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            created.append(self)

    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    stage = StageConfig(name="s", trainable="top1", lr=1e-3, epochs=2)
    model, data, config, counts = _setup(tiny_model, texts_and_ids, [stage], gradient_accumulation_steps=2,
                                         logging_steps=1)  # fmt: skip
    history = []
    reports = train_stages(model, data, counts, config, make_accelerator(config), hooks=[_Hooks(on_log=history.append)],
                          show_progress=False)  # fmt: skip
    assert reports[0].steps == 6
    assert [e["step"] for e in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["lr"] == 0.0
    (optimizer,) = created
    classifier = dict(model.named_parameters())["classifier.weight"]
    assert int(optimizer.state[classifier]["step"]) == 6


def test_zero_epoch_stage_is_skipped(tiny_model, texts_and_ids):
    """A stage with epochs=0 is skipped: no report, no history and no parameter change."""
    stages = [StageConfig(name="skipped", trainable="all", epochs=0), StageConfig(name="probe", trainable="head")]
    model, data, config, counts = _setup(tiny_model, texts_and_ids, stages)
    before = _snapshot(model)
    history = []
    reports = train_stages(model, data, counts, config, make_accelerator(config), hooks=[_Hooks(on_log=history.append)],
                          show_progress=False)  # fmt: skip
    assert [s.name for s in reports] == ["probe"]
    assert {e["stage"] for e in history} == {1}
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"classifier.weight", "classifier.bias"}

    model, data, config, counts = _setup(tiny_model, texts_and_ids, [StageConfig(epochs=0)])
    before = _snapshot(model)
    assert train_stages(model, data, counts, config, make_accelerator(config), show_progress=False) == []
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_resampling_stage_steps(tiny_model, texts_and_ids):
    """A class-balanced stage keeps the data set's length per epoch."""
    stage = StageConfig(name="rs", trainable="head", sampler="class-balanced", epochs=1)
    model, data, config, counts = _setup(tiny_model, texts_and_ids, [stage], batch_size=5)
    reports = train_stages(model, data, counts, config, make_accelerator(config), show_progress=False)
    assert reports[0].steps == 5  # ceil(21 / 5)


def test_stage_batch_size_overrides_run(tiny_model, texts_and_ids):
    """A stage's own batch size wins over the run's."""
    stage = StageConfig(name="s", trainable="head", batch_size=7)
    model, data, config, counts = _setup(tiny_model, texts_and_ids, [stage], batch_size=2)
    reports = train_stages(model, data, counts, config, make_accelerator(config), show_progress=False)
    assert reports[0].steps == 3


def test_predict_logits_in_data_order(tiny_model, texts_and_ids):
    """predict_logits returns one row per example in data order, equal to a one-by-one eval forward."""
    model, data, config, _ = _setup(tiny_model, texts_and_ids, [StageConfig()])
    model.train()
    accelerator = make_accelerator(config)
    logits = predict_logits(model, data, accelerator, batch_size=4)
    assert logits.shape == (len(data), 3)
    assert model.training  # restored
    np.testing.assert_array_equal(predict_logits(model, data, accelerator, batch_size=4, inference_only=True), logits)
    # the model still trains after an inference-only pass
    model(input_ids=torch.as_tensor(data.row(0), dtype=torch.long)[None]).logits.sum().backward()
    model.eval()
    with torch.no_grad():
        for i in (0, 5, 20):
            ids = torch.as_tensor(data.row(i), dtype=torch.long)[None]
            np.testing.assert_allclose(logits[i], model(input_ids=ids).logits[0].numpy(), atol=1e-5)


def test_make_accelerator_settings():
    """make_accelerator passes precision and accumulation on; 'auto' is what this machine measured best."""
    accelerator = make_accelerator(
        build_run_config("m", settings={"gradient_accumulation_steps": 3, "mixed_precision": "auto"})
    )
    assert accelerator.gradient_accumulation_steps == 3
    if not torch.cuda.is_available():
        assert accelerator.mixed_precision == auto_precision("cpu")
        other = "fp16" if accelerator.mixed_precision != "fp16" else "no"
        with pytest.raises(TailTuneError, match=f"mixed_precision '{other}' .*one precision per process"):
            make_accelerator(build_run_config("m", settings={"mixed_precision": other}))


def test_uses_fresh_schedule_per_stage(tiny_model, texts_and_ids, monkeypatch):
    """Each stage builds its own linear schedule sized to its own steps."""
    calls = []
    real = training.get_linear_schedule_with_warmup

    def recording(optimizer, warmup, total):
        calls.append((warmup, total))
        return real(optimizer, warmup, total)

    monkeypatch.setattr(training, "get_linear_schedule_with_warmup", recording)
    stages = [StageConfig(name="a", trainable="head", epochs=2, warmup_ratio=0.25), StageConfig(name="b")]
    model, data, config, counts = _setup(tiny_model, texts_and_ids, stages)
    train_stages(model, data, counts, config, make_accelerator(config), show_progress=False)
    assert calls == [(3, 12), (0, 6)]


def _tiny_run_data(tiny_model, tiny_data) -> tuple[torch.nn.Module, Encoded, list[int]]:
    """The tiny model with a fresh head for tiny_data's training labels, its encoded texts and class counts."""
    texts = pd.read_csv(tiny_data["train"])
    labels = sorted(set(texts["label"]))
    model, tokenizer = load_classifier(tiny_model, labels)
    encoded = encode(tokenizer, texts["text"].tolist(), np.array([labels.index(y) for y in texts["label"]]),
                     max_length=16)  # fmt: skip
    return model, encoded, np.bincount(encoded.labels, minlength=len(labels)).tolist()


def test_stop_after_ends_the_stage_on_the_full_schedule(tiny_model, tiny_data):
    """stop_after runs fewer epochs while the learning rate still follows the schedule of all of them."""
    history: list[dict] = []
    model, encoded, counts = _tiny_run_data(tiny_model, tiny_data)
    config = build_run_config(tiny_model, "vanilla", settings={"epochs": 4, "min_steps": 0, "batch_size": 8,
                                                                 "logging_steps": 1})  # fmt: skip
    config = config.replace(stages=[config.stages[0].replace(stop_after=1)])
    reports = train_stages(model, encoded, counts, config, make_accelerator(config),
                          hooks=[_Hooks(on_log=history.append)], show_progress=False)  # fmt: skip
    steps_per_epoch = -(-len(encoded) // 8)
    assert reports[0].steps == steps_per_epoch
    # After one of four epochs the linear decay is only a quarter of the way down.
    assert history[-1]["lr"] == pytest.approx(config.stages[0].lr * 0.75, rel=1e-6)


def test_no_early_stop_before_the_step_budget(tiny_model, tiny_data):
    """An epoch callback asking to stop is obeyed only once the stage has made its min_steps."""
    model, encoded, counts = _tiny_run_data(tiny_model, tiny_data)
    steps_per_epoch = -(-len(encoded) // 8)
    settings = {"epochs": 1, "min_steps": 3 * steps_per_epoch, "batch_size": 8}
    config = build_run_config(tiny_model, "vanilla", settings=settings)
    seen: list[int] = []

    def always_stop(index, stage, epoch, planned):
        seen.append(epoch)
        return True

    train_stages(model, encoded, counts, config, make_accelerator(config), hooks=[_Hooks(on_epoch_end=always_stop)],
                 show_progress=False)  # fmt: skip
    assert seen == [1, 2, 3]


def test_eval_steps_evaluates_within_epochs(tiny_model, tiny_data):
    """With eval_steps the callback also runs within epochs, at fractional epochs, and again at each epoch end."""
    model, encoded, counts = _tiny_run_data(tiny_model, tiny_data)
    steps_per_epoch = -(-len(encoded) // 4)
    assert steps_per_epoch >= 3, "the fixture must give several steps per epoch"
    config = build_run_config(tiny_model, "vanilla", settings={"epochs": 2, "min_steps": 0, "batch_size": 4,
                                                                 "eval_steps": 2})  # fmt: skip
    seen: list[float] = []
    modes: list[bool] = []

    def record(index, stage, epoch, planned):
        seen.append(epoch)
        modes.append(model.training)
        model.eval()  # as an evaluation would; training must switch back
        return False

    train_stages(model, encoded, counts, config, make_accelerator(config), hooks=[_Hooks(on_epoch_end=record)],
                 show_progress=False)  # fmt: skip
    total = 2 * steps_per_epoch
    expected = sorted({round(s / steps_per_epoch, 4) for s in range(2, total + 1, 2)} | {1, 2})
    assert seen == expected
    assert all(modes)


def test_fractional_stop_after_ends_within_an_epoch(tiny_model, tiny_data):
    """stop_after=1.5 stops half-way through the second epoch, on the schedule of all planned epochs."""
    model, encoded, counts = _tiny_run_data(tiny_model, tiny_data)
    config = build_run_config(tiny_model, "vanilla", settings={"epochs": 3, "min_steps": 0, "batch_size": 2})
    config = config.replace(stages=[config.stages[0].replace(stop_after=1.5)])
    reports = train_stages(model, encoded, counts, config, make_accelerator(config), show_progress=False)
    steps_per_epoch = -(-len(encoded) // 2)
    assert reports[0].steps == round(1.5 * steps_per_epoch)
