"""Tests of the frozen-feature cache: same parameters as the uncached path, and on-disk reuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.utils import set_seed
from conftest import build_tiny_model_dir, make_texts

import tailtune.training.features as features
from tailtune.config import RunConfig, StageConfig
from tailtune.data.types import LabelMap, TextDataset
from tailtune.models.scopes import cacheable
from tailtune.models.transformer import load_classifier
from tailtune.training.batching import encode
from tailtune.training.features import build_cache, cache_key, replay
from tailtune.training.fitting import FitContext, train_model
from tailtune.training.loop import make_accelerator

LDAM = {"loss": "ldam", "loss_params": {"max_margin": 0.5, "scale": 1.0}, "weights": "effective", "beta": 0.9999}


@pytest.fixture(scope="module")
def train_data() -> tuple[TextDataset, LabelMap]:
    texts, labels = make_texts({"sport": 12, "tech": 6, "money": 3}, seed=1)
    return TextDataset(texts, labels, "train"), LabelMap.from_labels(labels)


def _fit(model_dir, train_data, stages, **run):
    train, label_map = train_data
    settings = {"batch_size": 4, "max_length": 16, "seed": 3, **run}
    config = RunConfig(model=str(model_dir), stages=stages, **settings)
    trained = train_model(FitContext.of(config, train, label_map, make_accelerator(config), show_progress=False), train)
    return trained.model, trained.tokenizer, trained.stages


def _params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _initial(model_dir, labels, seed=3, **load):
    set_seed(seed)  # as fit does, so the fresh head matches
    model, _ = load_classifier(str(model_dir), labels, **load)
    return _params(model)


@pytest.mark.parametrize(("scope", "trained"), [("top1", "bert.encoder.layer.1."), ("head", "classifier.")])
def test_cached_and_uncached_training_agree(tiny_model_no_dropout, train_data, scope, trained):
    """Without dropout, a stage trained on cached features ends with the same parameters (1e-5) as uncached."""
    stage = StageConfig(name="stage1", trainable=scope, lr=1e-3, epochs=2, **LDAM)
    cached, _, cached_stages = _fit(tiny_model_no_dropout, train_data, [stage], feature_cache=True)
    plain, _, plain_stages = _fit(tiny_model_no_dropout, train_data, [stage], feature_cache=False)
    assert [s.cached for s in cached_stages] == [True]
    assert [s.cached for s in plain_stages] == [False]
    assert cached_stages[0].steps == plain_stages[0].steps == 12  # ceil(21 / 4) * 2

    a, b = _params(cached), _params(plain)
    assert a.keys() == b.keys()
    worst = max((a[n] - b[n]).abs().max().item() for n in a)
    assert worst < 1e-5
    # The comparison means something only if training moved the trained part well beyond the tolerance.
    start = _initial(tiny_model_no_dropout, train_data[1].labels)
    moved = max((a[n] - start[n]).abs().max().item() for n in a if n.startswith(trained))
    assert moved > 1e-3
    frozen = [n for n in a if n.startswith("bert.embeddings.")]
    assert frozen and all(torch.equal(a[n], start[n]) for n in frozen)


def test_cache_only_for_partial_scopes(tiny_model, train_data):
    """Scope 'all' never uses the cache; top<k> and head do when feature_cache is on."""
    model, _ = load_classifier(tiny_model, train_data[1].labels)
    assert [cacheable(model, s) for s in ("head", "top1", "top2", "all")] == [True, True, True, False]
    _, _, stages = _fit(tiny_model, train_data, [StageConfig(trainable="all", lr=1e-4)], feature_cache=True)
    assert [s.cached for s in stages] == [False]


def _encoded(model_dir, train_data):
    model, tokenizer = load_classifier(str(model_dir), train_data[1].labels)
    data = encode(tokenizer, train_data[0].texts, None, max_length=16)
    return model, data


@pytest.mark.parametrize("scope", ["top1", "head"])
def test_cache_holds_what_enters_the_first_trainable_module(tiny_model_no_dropout, train_data, scope):
    """top1 caches every token's input to the last layer; head caches the final first-token state."""
    model, data = _encoded(tiny_model_no_dropout, train_data)
    cache = build_cache(model, data, scope, batch_size=5, device=torch.device("cpu"), show_progress=False)
    model.eval()
    lengths = data.lengths
    rows = lengths if scope == "top1" else np.ones_like(lengths)
    assert cache.first_trainable_layer == (1 if scope == "top1" else 2)
    assert cache.offsets.tolist() == [0, *np.cumsum(rows).tolist()]
    assert cache.values.shape == (rows.sum(), 32)
    with torch.no_grad():
        for i in (0, 7, len(data) - 1):
            ids = torch.as_tensor(data.row(i), dtype=torch.long)[None]
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
            expected = hidden[1][0] if scope == "top1" else hidden[-1][0, :1]
            got = torch.from_numpy(np.asarray(cache.values[cache.offsets[i] : cache.offsets[i + 1]]))
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    padded = cache.batch([0, 1], torch.float32, torch.device("cpu"))
    assert padded.shape == (2, int(rows[[0, 1]].max()), 32)


def test_replay_restores_the_model(tiny_model, train_data):
    """Replay leaves the embeddings alone, passes the frozen layers through while it lasts, and afterwards the real
    layers are back with no hook left on them."""
    model, data = _encoded(tiny_model, train_data)
    embeddings, layers = model.bert.embeddings, list(model.bert.encoder.layer)
    cache = build_cache(model, data, "top1", batch_size=8, device=torch.device("cpu"), show_progress=False)
    with replay(model, cache) as stand_in:
        assert model.bert.embeddings is embeddings
        assert model.bert.encoder.layer[0] is not layers[0]
        assert model.bert.encoder.layer[1] is layers[1]
        assert layers[1]._forward_pre_hooks
        with stand_in.suspended():
            assert list(model.bert.encoder.layer) == layers and not layers[1]._forward_pre_hooks
        assert layers[1]._forward_pre_hooks
    assert list(model.bert.encoder.layer) == layers
    assert not any(layer._forward_pre_hooks or layer._forward_hooks for layer in layers)
    assert not any("current" in n for n, _ in model.named_parameters())


def test_replay_feeds_each_batch(tiny_model, train_data):
    """The stand-in turns a batch into the model's inputs and loads its cached rows: one token per text for a
    [CLS] head's cache; without a cache the batch's own inputs pass unchanged."""
    model, data = _encoded(tiny_model, train_data)
    batch = data.collate([3, 0])
    cpu = torch.device("cpu")
    cache = build_cache(model, data, "head", batch_size=8, device=cpu, show_progress=False)
    with replay(model, cache) as stand_in:
        input_ids, mask = stand_in.inputs(batch, cpu)
        assert input_ids.shape == mask.shape == (2, 1)
        torch.testing.assert_close(stand_in.current, cache.batch([3, 0], torch.float32, cpu))
    with replay(model, None) as whole:
        input_ids, mask = whole.inputs(batch, cpu)
        assert input_ids is batch["input_ids"] and mask is batch["attention_mask"]
        with whole.suspended():
            pass


def test_disk_cache_written_once_and_reused(tiny_model_no_dropout, train_data, tmp_path):
    """With cache_dir and key, the first build writes the cache; the second loads it without a forward pass."""
    model, data = _encoded(tiny_model_no_dropout, train_data)
    key = cache_key("tiny", data, "top1", 16)
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    first = build_cache(
        model, data, "top1", batch_size=8, device=torch.device("cpu"), cache_dir=tmp_path, key=key,
        show_progress=False,
    )  # fmt: skip
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"{key}.offsets.npy", f"{key}.values.npy"]
    assert len(calls) == 3  # ceil(21 / 8) batches
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}

    second = build_cache(
        model, data, "top1", batch_size=8, device=torch.device("cpu"), cache_dir=tmp_path, key=key,
        show_progress=False,
    )  # fmt: skip
    assert len(calls) == 3  # no forward pass the second time
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps
    assert isinstance(second.values, np.memmap)
    np.testing.assert_array_equal(np.asarray(second.values), np.asarray(first.values))
    np.testing.assert_array_equal(second.offsets, first.offsets)
    assert second.first_trainable_layer == 1


def test_large_cache_spills_to_a_temporary_file(tiny_model_no_dropout, train_data, monkeypatch):
    """Past IN_MEMORY_LIMIT a cache that is not shared is memory-mapped from an unnamed file, same values."""
    model, data = _encoded(tiny_model_no_dropout, train_data)
    in_memory = build_cache(model, data, "top1", batch_size=8, device=torch.device("cpu"), show_progress=False)
    monkeypatch.setattr(features, "IN_MEMORY_LIMIT", 0)
    spilled = build_cache(model, data, "top1", batch_size=8, device=torch.device("cpu"), show_progress=False)
    assert isinstance(spilled.values, np.memmap) and not isinstance(in_memory.values, np.memmap)
    np.testing.assert_array_equal(np.asarray(spilled.values), in_memory.values)


def test_failed_build_leaves_no_staging_file(tiny_model_no_dropout, train_data, tmp_path):
    """A cache build that fails part-way removes its half-written file from the shared cache folder."""
    model, data = _encoded(tiny_model_no_dropout, train_data)
    calls = []

    def fail_on_second_batch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")

    model.register_forward_hook(fail_on_second_batch)
    with pytest.raises(RuntimeError, match="interrupted"):
        build_cache(model, data, "top1", batch_size=8, device=torch.device("cpu"), cache_dir=tmp_path, key="k",
                    show_progress=False)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_cache_key_changes_with_inputs(tiny_model, train_data):
    """The shared-cache key depends on model id, tokens, max length and scope."""
    _, data = _encoded(tiny_model, train_data)
    key = cache_key("m", data, "top1", 16)
    assert key == cache_key("m", data, "top1", 16)
    assert len({key, cache_key("n", data, "top1", 16), cache_key("m", data, "top2", 16)}) == 3
    assert key != cache_key("m", data, "top1", 32)


def test_runs_share_the_disk_cache(tiny_model_no_dropout, train_data, tmp_path, monkeypatch):
    """A second run with the same model and data reuses the on-disk cache and ends with identical weights."""
    stage = StageConfig(name="stage1", trainable="top1", lr=1e-3, epochs=1, **LDAM)
    first, _, stages = _fit(tiny_model_no_dropout, train_data, [stage], cache_dir=str(tmp_path))
    stored = sorted(tmp_path.glob("*.npy"))
    assert len(stored) == 2 and stages[0].cached
    stamps = [p.stat().st_mtime_ns for p in stored]

    def no_store(*args, **kwargs):
        raise AssertionError("the cache was computed again instead of reused")

    monkeypatch.setattr(features, "_store", no_store)
    second, _, stages = _fit(tiny_model_no_dropout, train_data, [stage], cache_dir=str(tmp_path))
    assert stages[0].cached
    assert [p.stat().st_mtime_ns for p in stored] == stamps
    a, b = _params(first), _params(second)
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_only_pristine_bottoms_are_shared(tiny_model, train_data, tmp_path):
    """A stage after one that trained part of its frozen bottom keeps its cache in memory, not on disk."""
    after_full = [StageConfig(name="ft", trainable="all", lr=1e-4), StageConfig(name="head", trainable="head")]
    _, _, stages = _fit(tiny_model, train_data, after_full, cache_dir=str(tmp_path / "a"))
    assert [s.cached for s in stages] == [False, True]
    assert not (tmp_path / "a").exists()

    widening = [StageConfig(name="probe", trainable="head"), StageConfig(name="top", trainable="top1")]
    _, _, stages = _fit(tiny_model, train_data, widening, cache_dir=str(tmp_path / "b"))
    assert [s.cached for s in stages] == [True, True]
    assert len(list((tmp_path / "b").glob("*.npy"))) == 4  # both bottoms are still the pretrained ones


@pytest.fixture(scope="module")
def deberta_dirs(tmp_path_factory) -> dict[str, Path]:
    """Tiny DeBERTa-v2 encoders without dropout: the conftest one and one with relative attention (as v3)."""
    from transformers import AutoModel, DebertaV2Config

    root = tmp_path_factory.mktemp("deberta")
    plain = build_tiny_model_dir(root / "plain", "deberta-v2", dropout=0.0)
    relative = root / "relative"
    config = DebertaV2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, pooler_dropout=0.0, pooler_hidden_size=32, max_position_embeddings=80,
        vocab_size=json.loads((plain / "config.json").read_text())["vocab_size"], pad_token_id=0,
        relative_attention=True, position_buckets=256, pos_att_type=["p2c", "c2p"], position_biased_input=False,
    )  # fmt: skip
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(str(relative))
    for file in plain.glob("*token*"):
        shutil.copy(file, relative / file.name)
    return {"plain": plain, "relative": relative}


@pytest.mark.parametrize("variant", ["plain", "relative"])
def test_deberta_cached_stage_matches_uncached(deberta_dirs, train_data, variant):
    """DeBERTa-v2 is a supported layout: its cached top1 stage must train like the uncached one."""
    stage = StageConfig(name="stage1", trainable="top1", lr=1e-3, epochs=1, **LDAM)
    cached, _, stages = _fit(deberta_dirs[variant], train_data, [stage], feature_cache=True)
    plain, _, _ = _fit(deberta_dirs[variant], train_data, [stage], feature_cache=False)
    assert stages[0].cached
    a, b = _params(cached), _params(plain)
    assert max((a[n] - b[n]).abs().max().item() for n in a) < 1e-5


def test_deberta_uncached_stage_trains(deberta_dirs, train_data):
    """The uncached path works for DeBERTa-v2 (so the cache is the only part that fails above)."""
    stage = StageConfig(name="stage1", trainable="top1", lr=1e-3, epochs=1, **LDAM)
    _, _, stages = _fit(deberta_dirs["relative"], train_data, [stage], feature_cache=False)
    assert [(s.cached, s.steps) for s in stages] == [(False, 6)]


@pytest.mark.parametrize("model_type", ["electra", "mpnet", "modernbert"])
@pytest.mark.parametrize("scope", ["top1", "head"])
def test_cached_stage_matches_uncached_beyond_bert(tmp_path_factory, train_data, model_type, scope):
    """ELECTRA (a projection between embeddings and layers) and layouts read from the model's structure (MPNet,
    ModernBERT, whose encoder asks its layers for attributes) train on the cache as without it."""
    folder = build_tiny_model_dir(tmp_path_factory.mktemp(model_type) / model_type, model_type, dropout=0.0)
    stage = StageConfig(name="stage1", trainable=scope, lr=1e-3, epochs=1, **LDAM)
    cached, _, stages = _fit(folder, train_data, [stage], feature_cache=True)
    plain, _, _ = _fit(folder, train_data, [stage], feature_cache=False)
    assert stages[0].cached
    a, b = _params(cached), _params(plain)
    assert max((a[n] - b[n]).abs().max().item() for n in a) < 1e-5
    start = _initial(folder, train_data[1].labels)
    assert max((a[n] - start[n]).abs().max().item() for n in a) > 1e-3


@pytest.mark.parametrize("model_type", ["roberta", "mpnet"])
@pytest.mark.parametrize("scope", ["top1", "head"])
def test_mean_pooling_head_modules_train_on_the_cache(tmp_path_factory, train_data, model_type, scope):
    """A head module that reads the first token (RoBERTa, MPNet), handed the token mean, trains on the cache (every
    token's state kept) as without it."""
    folder = build_tiny_model_dir(tmp_path_factory.mktemp(model_type) / model_type, model_type, dropout=0.0)
    stage = StageConfig(name="stage1", trainable=scope, lr=1e-3, epochs=1, **LDAM)
    cached, _, stages = _fit(folder, train_data, [stage], feature_cache=True, pooling="mean")
    plain, _, _ = _fit(folder, train_data, [stage], feature_cache=False, pooling="mean")
    assert stages[0].cached and cached.config.tailtune_pooling == "mean"
    a, b = _params(cached), _params(plain)
    assert max((a[n] - b[n]).abs().max().item() for n in a) < 1e-5
    start = _initial(folder, train_data[1].labels, pooling="mean")
    assert max((a[n] - start[n]).abs().max().item() for n in a) > 1e-3


def test_layers_reading_tokens_first_train_uncached(tmp_path_factory, train_data):
    """XLNet's layers take [tokens, batch, hidden]: its top layers have a layout but train without a cache."""
    folder = build_tiny_model_dir(tmp_path_factory.mktemp("xlnet") / "xlnet", "xlnet", dropout=0.0)
    model, _ = load_classifier(str(folder), train_data[1].labels)
    assert [cacheable(model, s) for s in ("head", "top1", "all")] == [False, False, False]
    stage = StageConfig(name="stage1", trainable="top1", lr=1e-3, epochs=1, **LDAM)
    _, _, stages = _fit(folder, train_data, [stage], feature_cache=True)
    assert [(s.cached, s.steps) for s in stages] == [(False, 6)]
