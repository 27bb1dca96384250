"""Tests of model loading, layouts, trainable scopes and the mlp head on four tiny architectures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import build_tiny_model_dir
from torch import nn

from tailtune.errors import TailTuneError
from tailtune.modeling import MLP_HIDDEN, load_classifier, load_saved_classifier, save_classifier
from tailtune.scopes import get_layout, get_module, set_trainable

LABELS = ["money", "sport", "tech"]
LAYOUT_TYPES = ("bert", "roberta", "deberta-v2", "distilbert")

# Parameter-name prefixes each scope trains, per architecture (2 encoder layers: 0 and 1).
SCOPES = {
    "bert": {
        "head": ("classifier.",),
        "top1": ("classifier.", "bert.pooler.", "bert.encoder.layer.1."),
        "top2": ("classifier.", "bert.pooler.", "bert.encoder.layer.1.", "bert.encoder.layer.0."),
    },
    "roberta": {
        "head": ("classifier.",),
        "top1": ("classifier.", "roberta.encoder.layer.1."),
        "top2": ("classifier.", "roberta.encoder.layer.1.", "roberta.encoder.layer.0."),
    },
    "deberta-v2": {
        "head": ("classifier.",),
        "top1": ("classifier.", "pooler.", "deberta.encoder.layer.1."),
        "top2": ("classifier.", "pooler.", "deberta.encoder.layer.1.", "deberta.encoder.layer.0."),
    },
    "distilbert": {
        "head": ("pre_classifier.", "classifier."),
        "top1": ("pre_classifier.", "classifier.", "distilbert.transformer.layer.1."),
        "top2": (
            "pre_classifier.",
            "classifier.",
            "distilbert.transformer.layer.1.",
            "distilbert.transformer.layer.0.",
        ),
    },
}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """A tiny pretrained encoder folder per supported layout."""
    root = tmp_path_factory.mktemp("layouts")
    return {t: build_tiny_model_dir(root / t, t) for t in LAYOUT_TYPES}


def _batch(tokenizer) -> dict[str, torch.Tensor]:
    return tokenizer(["match goal team win", "bank shares profit price market"], padding=True, return_tensors="pt")


def _logits(model, tokenizer) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**_batch(tokenizer)).logits


@pytest.mark.parametrize("model_type", LAYOUT_TYPES)
def test_load_classifier_labels(model_dirs, model_type):
    """load_classifier gives a K-way classifier whose config names the labels in id order."""
    model, tokenizer = load_classifier(str(model_dirs[model_type]), LABELS)
    assert model.config.model_type == model_type
    assert model.config.num_labels == 3
    assert model.config.id2label == {0: "money", 1: "sport", 2: "tech"}
    assert model.config.label2id == {"money": 0, "sport": 1, "tech": 2}
    assert _logits(model, tokenizer).shape == (2, 3)


@pytest.mark.parametrize("model_type", LAYOUT_TYPES)
def test_set_trainable_selects_exact_parameters(model_dirs, model_type):
    """head / top1 / top2 / all make exactly the expected parameters trainable, and nothing else."""
    model, _ = load_classifier(str(model_dirs[model_type]), LABELS)
    names = [n for n, _ in model.named_parameters()]
    for scope, prefixes in SCOPES[model_type].items():
        returned = set_trainable(model, scope)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        expected = {n for n in names if n.startswith(prefixes)}
        for prefix in prefixes:  # every expected part exists, so the check is not vacuous
            assert any(n.startswith(prefix) for n in names), (scope, prefix)
        assert trainable == expected, scope
        assert {id(p) for p in returned} == {id(p) for n, p in model.named_parameters() if n in expected}
    # 'all' after a narrower scope turns every parameter back on, and a narrow scope turns them off again.
    assert len(set_trainable(model, "all")) == len(names)
    set_trainable(model, "head")
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        n for n in names if n.startswith(SCOPES[model_type]["head"])
    }


def test_top_k_beyond_depth(model_dirs):
    """top3 on a two-layer model is an error naming both numbers."""
    model, _ = load_classifier(str(model_dirs["bert"]), LABELS)
    with pytest.raises(TailTuneError, match=r"scope 'top3' asks for 3 layers but the model has 2"):
        set_trainable(model, "top3")


@pytest.mark.parametrize("model_type", LAYOUT_TYPES)
def test_mlp_head_shape_and_round_trip(model_dirs, model_type, tmp_path):
    """The mlp head is Linear(hidden->50) -> ReLU -> Linear(50->K); save + load restores identical logits."""
    model, tokenizer = load_classifier(str(model_dirs[model_type]), LABELS, head="mlp")
    final = get_module(model, get_layout(model).final)
    assert isinstance(final, nn.Sequential) and len(final) == 3
    assert isinstance(final[0], nn.Linear) and (final[0].in_features, final[0].out_features) == (32, MLP_HIDDEN)
    assert isinstance(final[1], nn.ReLU)
    assert isinstance(final[2], nn.Linear) and (final[2].in_features, final[2].out_features) == (MLP_HIDDEN, 3)
    assert model.config.tailtune_head == "mlp"
    with torch.no_grad():  # make the head distinctive, so a freshly initialised one would not match
        final[2].bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    before = _logits(model, tokenizer)
    save_classifier(model, tokenizer, tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["tailtune_head"] == "mlp"
    loaded, loaded_tokenizer, labels = load_saved_classifier(tmp_path / "saved")
    assert labels == LABELS
    assert isinstance(get_module(loaded, get_layout(loaded).final), nn.Sequential)
    torch.testing.assert_close(_logits(loaded, loaded_tokenizer), before, rtol=0, atol=1e-6)


@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_saved_mlp_head_loads_with_transformers(model_dirs, model_type, tmp_path):
    """A saved mlp classifier ships its modeling file, so plain transformers loads it with trust_remote_code."""
    from transformers import AutoModelForSequenceClassification

    model, tokenizer = load_classifier(str(model_dirs[model_type]), LABELS, head="mlp")
    before = _logits(model, tokenizer)
    save_classifier(model, tokenizer, tmp_path / "saved")
    assert (tmp_path / "saved" / "tailtune_mlp_head.py").is_file()
    loaded = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "saved"), trust_remote_code=True)
    assert isinstance(get_module(loaded, get_layout(loaded).final), nn.Sequential)
    assert loaded.config.id2label == {0: "money", 1: "sport", 2: "tech"}
    torch.testing.assert_close(_logits(loaded, tokenizer), before, rtol=0, atol=1e-6)


def test_linear_head_round_trip(model_dirs, tmp_path):
    """A saved linear classifier loads with its labels and gives identical logits."""
    model, tokenizer = load_classifier(str(model_dirs["roberta"]), ["neg", "pos"])
    before = _logits(model, tokenizer)
    save_classifier(model, tokenizer, tmp_path / "saved")
    loaded, loaded_tokenizer, labels = load_saved_classifier(str(tmp_path / "saved"))
    assert labels == ["neg", "pos"]
    assert getattr(loaded.config, "tailtune_head", "linear") == "linear"
    torch.testing.assert_close(_logits(loaded, loaded_tokenizer), before, rtol=0, atol=1e-6)


def test_saved_mlp_loaded_as_linear_gets_fresh_head(model_dirs, tmp_path):
    """Loading an mlp checkpoint with head='linear' replaces the mlp by a stock linear head."""
    model, tokenizer = load_classifier(str(model_dirs["bert"]), LABELS, head="mlp")
    save_classifier(model, tokenizer, tmp_path / "saved")
    linear, _ = load_classifier(str(tmp_path / "saved"), LABELS, head="linear")
    assert isinstance(linear.classifier, nn.Linear) and linear.classifier.out_features == 3
    assert linear.config.tailtune_head == "linear"


def test_other_number_of_labels_gets_fresh_head(model_dirs, tmp_path):
    """A checkpoint with 3 labels loaded for 2 gets a new 2-way head but keeps the encoder weights."""
    model, tokenizer = load_classifier(str(model_dirs["bert"]), LABELS)
    with torch.no_grad():
        model.classifier.weight.fill_(0.25)
        model.bert.encoder.layer[1].output.dense.bias.fill_(0.125)
    save_classifier(model, tokenizer, tmp_path / "saved")

    fewer, _ = load_classifier(str(tmp_path / "saved"), ["a", "b"])
    assert fewer.classifier.weight.shape == (2, 32)
    assert fewer.config.id2label == {0: "a", 1: "b"}
    assert not torch.all(fewer.classifier.weight == 0.25)
    assert torch.all(fewer.bert.encoder.layer[1].output.dense.bias == 0.125)

    same, _ = load_classifier(str(tmp_path / "saved"), LABELS)
    assert torch.all(same.classifier.weight == 0.25)  # same label count: the trained head is kept


@pytest.fixture(scope="module")
def gpt2_dir(model_dirs, tmp_path_factory) -> Path:
    """A tiny GPT-2 (an architecture without a tailtune layout) with the tiny word-level tokenizer."""
    from transformers import AutoModel, GPT2Config

    path = tmp_path_factory.mktemp("gpt2")
    vocab = json.loads((model_dirs["bert"] / "config.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    config = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=vocab, pad_token_id=0)
    AutoModel.from_config(config).save_pretrained(str(path))
    for file in model_dirs["bert"].glob("*token*"):
        shutil.copy(file, path / file.name)
    return path


def test_unknown_layout_error(gpt2_dir):
    """A model type without a layout loads for scope 'all', but top1/head/mlp raise listing the supported types."""
    model, _ = load_classifier(str(gpt2_dir), LABELS)
    assert model.config.model_type == "gpt2"
    assert len(set_trainable(model, "all")) == len(list(model.parameters()))
    for scope in ("top1", "head"):
        with pytest.raises(TailTuneError) as info:
            set_trainable(model, scope)
        message = str(info.value)
        assert "model type 'gpt2' has no known layout" in message
        assert "supported: bert, deberta-v2, distilbert, electra, roberta, xlm-roberta" in message
    with pytest.raises(TailTuneError, match="model type 'gpt2' has no known layout"):
        load_classifier(str(gpt2_dir), LABELS, head="mlp")


def test_folder_without_model(tmp_path, model_dirs):
    """Missing folders, folders without config.json and pickle-only folders give clear errors."""
    with pytest.raises(TailTuneError, match=r"nowhere: model folder not found"):
        load_classifier(str(tmp_path / "nowhere"), LABELS)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TailTuneError, match=r"empty: no model here \(expected config.json and model.safetensors\)"):
        load_classifier(str(empty), LABELS)
    with pytest.raises(TailTuneError, match=r"empty: no model here"):
        load_saved_classifier(empty)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(model_dirs["bert"] / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"not really a checkpoint")
    with pytest.raises(TailTuneError) as info:
        load_classifier(str(pickled), LABELS)
    assert "no *.safetensors weights (found a pickle checkpoint: re-save it with safetensors)" in str(info.value)
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(model_dirs["bert"] / "config.json", config_only / "config.json")
    with pytest.raises(TailTuneError, match=r"config-only: no \*.safetensors weights; tailtune loads safetensors"):
        load_classifier(str(config_only), LABELS)
