"""Tests of mean pooling: detecting it, resolving it, the masked mean, and mean-pooling classifiers on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tailtune.errors import TailTuneError
from tailtune.models.pooling import CODE_FILE, detect_pooling, mean_pool, resolve_pooling
from tailtune.models.transformer import load_classifier, load_saved_classifier, save_classifier

LABELS = ["money", "sport", "tech"]
TEXTS = ["match goal team win", "bank shares profit price market growth", "chip"]


def _sentence_transformers_folder(path: Path, pooling_config: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config), encoding="utf-8")
    return path


MEAN = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
CLS = {"word_embedding_dimension": 32, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}


def test_detect_pooling_mean(tmp_path):
    """A sentence-transformers folder whose pooling module averages tokens reads 'mean'."""
    assert detect_pooling(str(_sentence_transformers_folder(tmp_path, MEAN))) == "mean"


def test_detect_pooling_cls_mode(tmp_path):
    """A sentence-transformers folder that pools by [CLS] reads 'cls'."""
    assert detect_pooling(str(_sentence_transformers_folder(tmp_path, CLS))) == "cls"


def test_detect_pooling_without_modules(tmp_path):
    """A folder without modules.json, and a hub id, read 'cls'."""
    assert detect_pooling(str(tmp_path)) == "cls"
    assert detect_pooling("sentence-transformers/all-MiniLM-L6-v2-not-local") == "cls"


@pytest.mark.parametrize(
    "breakage",
    ["modules-not-json", "pooling-not-json", "pooling-missing", "modules-not-a-list", "module-without-path"],
)
def test_detect_pooling_broken_files(tmp_path, breakage):
    """Unreadable or malformed sentence-transformers files fall back to 'cls' without raising."""
    folder = _sentence_transformers_folder(tmp_path, MEAN)
    if breakage == "modules-not-json":
        (folder / "modules.json").write_text("[{not json", encoding="utf-8")
    elif breakage == "pooling-not-json":
        (folder / "1_Pooling" / "config.json").write_text("{", encoding="utf-8")
    elif breakage == "pooling-missing":
        (folder / "1_Pooling" / "config.json").unlink()
    elif breakage == "modules-not-a-list":
        (folder / "modules.json").write_text(json.dumps({"1": "1_Pooling"}), encoding="utf-8")
    else:
        (folder / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Pooling"}]))
    assert detect_pooling(str(folder)) == "cls"


def test_resolve_pooling(tmp_path):
    """auto becomes mean only for a supported model type whose folder says mean; cls and mean pass through."""
    folder = str(_sentence_transformers_folder(tmp_path, MEAN))
    assert resolve_pooling("auto", folder, "bert") == "mean"
    assert resolve_pooling("auto", folder, "mpnet") == "mean"
    assert resolve_pooling("auto", folder, "distilbert") == "cls"
    assert resolve_pooling("auto", str(tmp_path / "elsewhere"), "bert") == "cls"
    assert resolve_pooling("cls", folder, "bert") == "cls"
    assert resolve_pooling("mean", "any", "bert") == "mean"


def test_resolve_pooling_mean_unsupported_type():
    """Mean pooling asked for an architecture without support raises, naming the setting."""
    with pytest.raises(TailTuneError, match="distilbert") as info:
        resolve_pooling("mean", "any", "distilbert")
    assert info.value.setting == "pooling"


def test_resolve_pooling_unknown_name():
    """An unknown pooling name raises, listing the valid ones."""
    with pytest.raises(TailTuneError, match="max") as info:
        resolve_pooling("max", "any", "bert")
    assert "mean" in str(info.value)
    assert info.value.setting == "pooling"


def test_mean_pool_ignores_padding():
    """mean_pool equals the mean over the tokens the mask keeps, whatever the padded positions hold."""
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    expected = torch.stack([hidden[i, : int(mask[i].sum())].mean(dim=0) for i in range(3)])
    torch.testing.assert_close(mean_pool(hidden, mask), expected)
    changed = hidden.clone()
    changed[mask == 0] = 1e3
    torch.testing.assert_close(mean_pool(changed, mask), expected)


def test_mean_pool_without_mask():
    """Without a mask every token counts; an all-zero mask row gives zeros instead of NaN."""
    hidden = torch.randn(2, 3, 4)
    torch.testing.assert_close(mean_pool(hidden, None), hidden.mean(dim=1))
    pooled = mean_pool(hidden, torch.zeros(2, 3, dtype=torch.long))
    assert torch.equal(pooled, torch.zeros(2, 4))


def _logits(model, input_ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=mask).logits


def _pad(batch, extra: int) -> tuple[torch.Tensor, torch.Tensor]:
    pads = torch.zeros(batch["input_ids"].shape[0], extra, dtype=batch["input_ids"].dtype)
    return torch.cat([batch["input_ids"], pads], dim=1), torch.cat([batch["attention_mask"], pads], dim=1)


@pytest.fixture(scope="module")
def mean_model(tiny_model_no_dropout):
    """A tiny BERT classifier whose head reads the token mean, in eval mode."""
    torch.manual_seed(0)
    model, tokenizer = load_classifier(tiny_model_no_dropout, LABELS, pooling="mean")
    return model.eval(), tokenizer


def test_mean_pooling_model_config(mean_model):
    """The model records its pooling and keeps the stock class's parameter names."""
    model, _ = mean_model
    assert model.config.tailtune_pooling == "mean"
    assert type(model).__name__ == "TailTuneMeanPoolingBertForSequenceClassification"
    assert type(model).__mro__[1].__name__ == "BertForSequenceClassification"
    names = dict(model.named_parameters())
    assert "classifier.weight" in names and "bert.embeddings.word_embeddings.weight" in names


def test_mean_pooling_logits_ignore_appended_padding(mean_model):
    """Appending masked padding tokens leaves the logits unchanged; averaging them in would change them."""
    model, tokenizer = mean_model
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    base = _logits(model, batch["input_ids"], batch["attention_mask"])
    ids, mask = _pad(batch, 7)
    torch.testing.assert_close(_logits(model, ids, mask), base, rtol=0, atol=1e-5)
    # Without the mask the padded positions enter the mean: the test above can tell the difference.
    unmasked = _logits(model, ids, torch.ones_like(mask))
    assert not torch.allclose(unmasked, base, atol=1e-3)


def test_mean_pooling_differs_from_cls(tiny_model_no_dropout, mean_model):
    """With the same head weights, the mean-pooling model's logits differ from the [CLS] pooler's."""
    model, tokenizer = mean_model
    cls_model, _ = load_classifier(tiny_model_no_dropout, LABELS, pooling="cls")
    cls_model.eval().classifier.load_state_dict(model.classifier.state_dict())
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    mean_logits = _logits(model, batch["input_ids"], batch["attention_mask"])
    cls_logits = _logits(cls_model, batch["input_ids"], batch["attention_mask"])
    assert not torch.allclose(mean_logits, cls_logits, atol=1e-3)


def test_mean_pooling_loss(mean_model):
    """Given labels, the model returns the cross-entropy of its logits."""
    model, tokenizer = mean_model
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = torch.tensor([1, 0, 2])
    with torch.no_grad():
        out = model(**batch, labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))


@pytest.fixture(scope="module")
def saved_mean(mean_model, tmp_path_factory) -> Path:
    """The mean-pooling model saved by save_classifier, with its head moved off its initial values."""
    model, tokenizer = mean_model
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    path = tmp_path_factory.mktemp("saved-mean") / "model"
    save_classifier(model, tokenizer, path)
    return path


def test_saved_folder_has_pooling_code(saved_mean):
    """The saved folder holds the modeling file, tailtune's own model type with an auto_map into the file, and
    the pooling in config.json."""
    assert (saved_mean / CODE_FILE).is_file()
    assert (saved_mean / "model.safetensors").is_file()
    config = json.loads((saved_mean / "config.json").read_text())
    assert config["tailtune_pooling"] == "mean"
    assert config["model_type"] == "tailtune-mean-pooling-bert" and config["tailtune_base_model_type"] == "bert"
    assert config["architectures"] == ["TailTuneMeanPoolingBertForSequenceClassification"]
    assert config["auto_map"] == {
        "AutoConfig": "tailtune_pooling.TailTuneMeanPoolingBertConfig",
        "AutoModelForSequenceClassification": "tailtune_pooling.TailTuneMeanPoolingBertForSequenceClassification",
    }
    code = (saved_mean / CODE_FILE).read_text()
    assert "class TailTuneMeanPoolingBertConfig(BertConfig)" in code
    assert 'model_type = "tailtune-mean-pooling-bert"' in code
    assert "class TailTuneMeanPoolingBertForSequenceClassification(BertForSequenceClassification)" in code
    assert "config_class = TailTuneMeanPoolingBertConfig" in code
    compile(code, CODE_FILE, "exec")


def test_plain_transformers_refuses_saved_mean(saved_mean, monkeypatch):
    """Without trust_remote_code, transformers refuses the folder instead of reading the [CLS] pooler."""
    import transformers.dynamic_module_utils
    from transformers import AutoConfig, AutoModelForSequenceClassification, pipeline

    monkeypatch.setattr(transformers.dynamic_module_utils, "TIME_OUT_REMOTE_CODE", 0)  # refuse, don't prompt
    for remote in ({}, {"trust_remote_code": False}):
        for load in (AutoModelForSequenceClassification.from_pretrained, AutoConfig.from_pretrained):
            with pytest.raises(ValueError, match="trust_remote_code=True"):
                load(str(saved_mean), **remote)
        with pytest.raises(ValueError, match="trust_remote_code=True"):
            pipeline("text-classification", model=str(saved_mean), device="cpu", **remote)


def test_pipeline_with_remote_code_predicts_as_tailtune(saved_mean):
    """pipeline(trust_remote_code=True) gives tailtune's labels and scores."""
    from transformers import pipeline

    from tailtune.classifier import TailTuner

    tuner = TailTuner.load(saved_mean)
    probs = tuner.predict_proba(TEXTS)
    classify = pipeline("text-classification", model=str(saved_mean), device="cpu", trust_remote_code=True)
    results = classify(TEXTS)
    assert [r["label"] for r in results] == list(tuner.predict(TEXTS))
    np.testing.assert_allclose([r["score"] for r in results], probs.max(axis=1), rtol=0, atol=1e-6)


def test_folder_of_earlier_version_still_loads(mean_model, saved_mean, tmp_path):
    """A folder saved before tailtune had its own model type (bert + auto_map to the model class) loads as trained,
    and saving it again writes the current layout."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(saved_mean, old)
    config = json.loads((old / "config.json").read_text())
    del config["tailtune_base_model_type"]
    config.update(model_type="bert", auto_map={"AutoModelForSequenceClassification": (
        "tailtune_pooling.TailTuneMeanPoolingBertForSequenceClassification")})  # fmt: skip
    (old / "config.json").write_text(json.dumps(config))
    model, tokenizer = mean_model
    loaded, _, labels = load_saved_classifier(old)
    assert labels == LABELS and loaded.config.tailtune_pooling == "mean"
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    torch.testing.assert_close(_logits(loaded.eval(), batch["input_ids"], batch["attention_mask"]),
                               _logits(model, batch["input_ids"], batch["attention_mask"]))  # fmt: skip
    save_classifier(loaded, tokenizer, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text())["model_type"] == "tailtune-mean-pooling-bert"


def test_save_load_round_trip(mean_model, saved_mean):
    """load_saved_classifier restores mean pooling, the labels and identical logits."""
    model, tokenizer = mean_model
    loaded, loaded_tokenizer, labels = load_saved_classifier(saved_mean)
    loaded.eval()
    assert labels == LABELS
    assert loaded.config.tailtune_pooling == "mean"
    assert type(loaded).__name__ == "TailTuneMeanPoolingBertForSequenceClassification"
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    again = loaded_tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], again["input_ids"])
    torch.testing.assert_close(
        _logits(loaded, batch["input_ids"], batch["attention_mask"]),
        _logits(model, batch["input_ids"], batch["attention_mask"]),
    )


def test_auto_pooling_keeps_saved_mean(saved_mean):
    """pooling='auto' on a tailtune checkpoint keeps the pooling it was trained with."""
    loaded, _ = load_classifier(str(saved_mean), LABELS, pooling="auto")
    assert loaded.config.tailtune_pooling == "mean"


def test_transformers_loads_saved_mean_with_remote_code(mean_model, saved_mean):
    """AutoModelForSequenceClassification with trust_remote_code loads the folder and gives the same logits."""
    from transformers import AutoModelForSequenceClassification

    model, tokenizer = mean_model
    loaded = AutoModelForSequenceClassification.from_pretrained(str(saved_mean), trust_remote_code=True).eval()
    assert type(loaded).__name__ == "TailTuneMeanPoolingBertForSequenceClassification"
    assert type(loaded).__module__ != "tailtune.models.pooling"  # the folder's own code, not tailtune's
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    torch.testing.assert_close(
        _logits(loaded, batch["input_ids"], batch["attention_mask"]),
        _logits(model, batch["input_ids"], batch["attention_mask"]),
    )
    ids, mask = _pad(batch, 5)
    torch.testing.assert_close(
        _logits(loaded, ids, mask), _logits(model, batch["input_ids"], batch["attention_mask"]), rtol=0, atol=1e-5
    )


def test_mlp_head_with_mean_pooling_raises(tiny_model_no_dropout):
    """The mlp head reads the [CLS] pooler, so asking for it with mean pooling raises."""
    with pytest.raises(TailTuneError, match="mlp") as info:
        load_classifier(tiny_model_no_dropout, LABELS, head="mlp", pooling="mean")
    assert info.value.setting == "head"


def test_mean_pooling_unsupported_architecture(tmp_path):
    """load_classifier with pooling='mean' on a DistilBERT checkpoint raises before loading weights."""
    from conftest import build_tiny_model_dir

    folder = build_tiny_model_dir(tmp_path / "distilbert", "distilbert")
    with pytest.raises(TailTuneError, match="pooling"):
        load_classifier(str(folder), LABELS, pooling="mean")


@pytest.mark.parametrize("model_type", ["roberta", "mpnet"])
def test_mean_pooling_head_modules(tmp_path, model_type):
    """RoBERTa's and MPNet's head modules read the first token; a sentence-transformers folder of either gets mean
    pooling under auto, its logits ignore padding and differ from the first token's, and plain transformers
    (trust_remote_code) gives the same logits from the saved folder."""
    from conftest import build_tiny_model_dir
    from transformers import AutoModelForSequenceClassification

    folder = build_tiny_model_dir(tmp_path / model_type, model_type, dropout=0.0)
    _sentence_transformers_folder(folder, MEAN)
    torch.manual_seed(0)
    model, tokenizer = load_classifier(str(folder), LABELS, pooling="auto")
    model.eval()
    assert model.config.tailtune_pooling == "mean"
    assert "classifier.out_proj.weight" in dict(model.named_parameters())  # the stock head module, kept
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    base = _logits(model, batch["input_ids"], batch["attention_mask"])
    ids, mask = _pad(batch, 7)
    torch.testing.assert_close(_logits(model, ids, mask), base, rtol=0, atol=1e-5)
    first, _ = load_classifier(str(folder), LABELS, pooling="cls")
    first.eval().classifier.load_state_dict(model.classifier.state_dict())
    assert not torch.allclose(_logits(first, batch["input_ids"], batch["attention_mask"]), base, atol=1e-3)

    save_classifier(model, tokenizer, tmp_path / "saved")
    loaded = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "saved"), trust_remote_code=True)
    assert type(loaded).__module__ != "tailtune.models.pooling"  # the folder's own code
    torch.testing.assert_close(_logits(loaded.eval(), batch["input_ids"], batch["attention_mask"]), base)
