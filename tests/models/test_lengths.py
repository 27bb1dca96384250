"""Tests of the token budget read from the training texts, and of long texts read whole, in windows."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FILLER, WORDS, build_tiny_model_with_positions, make_texts, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from tailtune.config import DEFAULT_MAX_LENGTH
from tailtune.models.lengths import (
    COST_CAP,
    MAX_WINDOWS,
    PERCENTILE,
    ROUND_TO,
    SAMPLE_SIZE,
    choose_max_length,
    length_sample,
    window_starts,
)
from tailtune.strategies import build_run_config
from tailtune.training.batching import encode, special_layout
from tailtune.training.loop import mean_over_windows

VOCAB = sorted({w for ws in WORDS.values() for w in ws.split()} | set(FILLER))


def _long_text(n_words: int, seed: int = 0) -> str:
    """A text of ``n_words`` words of the tiny tokenizer's vocabulary (one token each)."""
    return " ".join(random.Random(seed).choices(VOCAB, k=n_words))


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


# ----------------------------------------------------------------------------------------- the windows of a text


@settings(max_examples=400, deadline=None)
@given(n_tokens=st.integers(0, 4000), width=st.integers(1, 300), max_windows=st.integers(1, 10))
def test_windows_cover_every_token(n_tokens, width, max_windows):
    """As few full windows as cover the text, the first at its start and (uncapped) the last at its end; past the cap,
    the first max_windows * width tokens end to end."""
    starts = window_starts(n_tokens, width, max_windows)
    needed = max(1, math.ceil(n_tokens / width))
    read = min(n_tokens, max_windows * width)
    assert len(starts) == min(needed, max_windows)
    assert starts[0] == 0 and np.all(np.diff(starts) > 0)
    covered = np.zeros(max(read, width), dtype=bool)
    for start in starts:
        assert start + width <= max(read, width)  # every window lies within what is read
        covered[start : start + width] = True
    assert covered[:read].all()
    if n_tokens > width and needed <= max_windows:
        assert starts[-1] + width == n_tokens  # every window is full: the last ends at the text's end


def test_windows_by_hand():
    assert window_starts(10, 5).tolist() == [0, 5]  # no overlap where the width divides the text
    assert window_starts(11, 5).tolist() == [0, 3, 6]
    assert window_starts(3, 5).tolist() == [0]
    assert window_starts(100, 5, max_windows=3).tolist() == [0, 5, 10]


def test_mean_over_windows_by_hand():
    logits = np.array([[1, 2], [3, 4], [5, 7], [7, 8]], dtype=np.float32)
    assert mean_over_windows(logits, np.array([0, 1, 1, 2])).tolist() == [[1, 2], [4, 5.5], [7, 8]]
    one_each = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    assert np.array_equal(mean_over_windows(one_each, np.arange(5)), one_each)  # a single window: exactly its logits
    with pytest.raises(RuntimeError, match="windows of 2 texts where 3 were encoded"):
        mean_over_windows(logits[:2], np.array([0, 2]))


def test_short_texts_encode_as_truncated(tokenizer):
    """Texts that fit max_length are the same rows, id for id, whether long texts are cut or read in windows."""
    texts, labels = make_texts({"sport": 5, "tech": 5}, seed=3)
    truncated = encode(tokenizer, [*texts, ""], None, max_length=16)
    chunked = encode(tokenizer, [*texts, ""], None, max_length=16, long_texts="chunks")
    assert np.array_equal(chunked.ids, truncated.ids) and np.array_equal(chunked.offsets, truncated.offsets)
    assert chunked.owners.tolist() == list(range(len(texts) + 1)) and chunked.n_texts == len(texts) + 1


@pytest.mark.parametrize("n_words", [15, 30, 57, 200])
def test_long_text_windows(tokenizer, n_words):
    """Each window is max_length tokens with the special tokens; the first is the truncated text; together they hold
    every token of the text up to the cap of MAX_WINDOWS windows."""
    text = _long_text(n_words)
    full = tokenizer(text)["input_ids"]
    prefix, suffix = special_layout(tokenizer)
    assert (prefix, suffix) == (1, 1)
    content, width = full[1:-1], 16 - 2
    chunked = encode(tokenizer, ["goal", text], np.array([0, 1]), max_length=16, long_texts="chunks")
    rows = [chunked.row(r).tolist() for r in range(len(chunked)) if chunked.owners[r] == 1]
    assert rows[0] == encode(tokenizer, [text], None, max_length=16).row(0).tolist()
    assert all(len(row) == 16 and row[0] == full[0] and row[-1] == full[-1] for row in rows)
    assert len(rows) == min(math.ceil(n_words / width), MAX_WINDOWS)
    rebuilt = [None] * len(content)
    for start, row in zip(window_starts(len(content), width), rows, strict=True):
        rebuilt[start : start + width] = row[1:-1]
    read = min(len(content), MAX_WINDOWS * width)
    assert rebuilt[:read] == content[:read]
    assert chunked.collate([0, len(chunked) - 1])["labels"].tolist() == [0, 1]  # each window carries its text's label


def test_a_tokenizer_without_a_fixed_layout_is_refused():
    from tailtune.errors import TailTuneError

    class Odd:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [1, 2, 3] if not add_special_tokens else [9, 1, 9, 2, 3]}

        def num_special_tokens_to_add(self):
            return 2

    with pytest.raises(TailTuneError, match="cannot be read in windows; give long_texts truncate") as info:
        special_layout(Odd())
    assert info.value.setting == "long_texts"


def test_predict_logits_averages_the_windows(tiny_model, tokenizer):
    """A long text's logits are the mean of its windows' logits; a short text's are exactly the truncated path's."""
    from tailtune.models.transformer import load_classifier
    from tailtune.training.loop import make_accelerator, predict_logits

    model, _ = load_classifier(tiny_model, ["a", "b", "c"])
    accelerator = make_accelerator(build_run_config(tiny_model, "vanilla", settings={"mixed_precision": "no"}))
    short, _ = make_texts({"sport": 4, "money": 4}, seed=5)
    texts = [*short, _long_text(40), _long_text(300, seed=1)]
    chunked = encode(tokenizer, texts, None, max_length=16, long_texts="chunks")
    logits = predict_logits(model, chunked, accelerator, batch_size=4)
    assert logits.shape == (len(texts), 3)
    only_short = predict_logits(model, encode(tokenizer, short, None, max_length=16), accelerator, batch_size=4)
    assert np.array_equal(predict_logits(model, encode(tokenizer, short, None, max_length=16, long_texts="chunks"),
                                         accelerator, batch_size=4), only_short)  # fmt: skip
    np.testing.assert_allclose(logits[: len(short)], only_short, atol=1e-6)
    with torch.no_grad():
        for text in (len(short), len(short) + 1):
            rows = [torch.as_tensor(chunked.row(r), dtype=torch.long) for r in np.flatnonzero(chunked.owners == text)]
            each = model.eval()(input_ids=torch.stack(rows)).logits.numpy()
            np.testing.assert_allclose(logits[text], each.mean(axis=0), atol=1e-5)
    assert (chunked.owners == len(short) + 1).sum() == MAX_WINDOWS


# ------------------------------------------------------------------------------------------- the length from data


def _pick(lengths, limit=512) -> int:
    return choose_max_length(np.asarray(lengths), limit).max_length


def test_max_length_rule_on_synthetic_lengths():
    """The 95th percentile rounded up to a multiple of 64, within [128, 256] and the model's limit."""
    assert (PERCENTILE, ROUND_TO, DEFAULT_MAX_LENGTH, COST_CAP) == (95, 64, 128, 256)
    assert _pick([20] * 100) == 128  # short texts: the least length
    assert _pick([150] * 100) == 192
    assert _pick([192] * 100) == 192
    assert _pick([193] * 100) == 256
    assert _pick([100] * 95 + [1000] * 5) == 128  # 95% fit in 100 tokens
    assert _pick([100] * 94 + [1000] * 6) == 256  # they do not: the cost cap
    assert _pick([5000] * 10) == 256
    assert _pick([150] * 100, limit=160) == 160  # the model's limit
    assert _pick([20] * 100, limit=64) == 64
    assert _pick([], limit=None) == 128
    assert choose_max_length(None, None).max_length == 128  # no texts: the default
    assert choose_max_length(None, 24).max_length == 24
    choice = choose_max_length(np.array([100] * 94 + [1000] * 6), 512)
    assert (choice.percentile_tokens, choice.covered, choice.measured) == (1000, 0.94, 100)
    assert choice.reason == ("max_length 256 from the training texts: 95% of the 100 measured have at most 1000 tokens "
                             "(above the cost cap of 256); 94% of them fit whole, longer ones are cut to it in "
                             "training")  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(2, 2000), min_size=1, max_size=300), limit=st.sampled_from([None, 64, 200, 512]))
def test_max_length_rule_bounds(lengths, limit):
    """Always within the bounds; where no bound binds, at least 95% of the texts fit whole."""
    choice = choose_max_length(np.array(lengths), limit)
    top = COST_CAP if limit is None else min(COST_CAP, limit)
    assert choice.max_length <= top
    assert choice.max_length >= min(DEFAULT_MAX_LENGTH, top)
    assert choice.max_length == top or choice.max_length % ROUND_TO == 0
    if choice.max_length < top:
        assert np.mean(np.array(lengths) <= choice.max_length) >= PERCENTILE / 100


def test_length_sample_is_fixed():
    texts = [str(i) for i in range(SAMPLE_SIZE + 7)]
    sample = length_sample(texts)
    assert len(sample) == SAMPLE_SIZE and sample == length_sample(texts) and len(set(sample)) == SAMPLE_SIZE
    assert length_sample(texts[:50]) == texts[:50]


def test_a_given_max_length_is_never_changed(tokenizer):
    from tailtune.training.fitting import fit_max_length

    model_config = SimpleNamespace(max_position_embeddings=600)
    long_texts = [_long_text(400, seed=i) for i in range(5)]
    for given_length in (16, 40):
        config = build_run_config("m", "vanilla", settings={"max_length": given_length})
        assert fit_max_length(config, model_config, tokenizer, long_texts).max_length == given_length
    # Not given: the texts decide, within the tokenizer's limit of 64.
    assert fit_max_length(build_run_config("m", "vanilla"), model_config, tokenizer, long_texts).max_length == 64


@pytest.fixture(scope="module")
def roomy_model(tmp_path_factory) -> str:
    """A tiny BERT with 600 positions whose tokenizer states 512: room for the length the data asks for."""
    return build_tiny_model_with_positions(tmp_path_factory.mktemp("roomy-bert"), 600, 512)


def test_training_texts_decide_the_length(roomy_model, tmp_path, caplog):
    """Without max_length, fit reads it from the training texts: logged with its numbers, used and recorded."""
    from tailtune.classifier import TailTuner

    texts = [_long_text(120 + i, seed=i) for i in range(40)]  # 122 to 161 tokens: 95% (38) have at most 159
    labels = ["sport", "tech"] * 20
    with caplog.at_level("INFO", logger="tailtune.training.fitting"):
        tuner = TailTuner(roomy_model, "vanilla", epochs=0, eval_fraction=0, show_progress=False).fit(texts, labels)
    assert tuner.config_.max_length == tuner._max_length() == 192
    assert (
        "max_length 192 from the training texts: 95% of the 40 measured have at most 159 tokens (rounded up to a "
        "multiple of 64); 100% of them fit whole, longer ones are cut to it in training"
    ) in caplog.messages
    saved = tuner.save(tmp_path / "model")
    assert json.loads((saved / "config.json").read_text())["tailtune_max_length"] == 192
    given = TailTuner(roomy_model, "vanilla", epochs=0, eval_fraction=0, max_length=100, show_progress=False)
    assert given.fit(texts, labels).config_.max_length == 100


# ------------------------------------------------------------------------------------ prediction reads whole texts


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory) -> Path:
    """A tiny BERT trained at max_length 16 to read long texts in windows, and saved."""
    from tailtune.classifier import TailTuner

    texts, labels = make_texts({"sport": 8, "tech": 8}, seed=1)
    tuner = TailTuner(tiny_model, "vanilla", epochs=1, min_steps=0, max_length=16, eval_fraction=0,
                      long_texts="chunks", mixed_precision="no", show_progress=False).fit(texts, labels)  # fmt: skip
    return tuner.save(tmp_path_factory.mktemp("trained") / "model")


def test_tailtuner_reads_long_texts_whole(trained, tokenizer):
    """TailTuner.predict_proba averages a long text's windows as recorded with the model; long_texts="truncate"
    reads its first max_length tokens instead."""
    from tailtune.classifier import TailTuner
    from tailtune.metrics import softmax

    assert json.loads((trained / "config.json").read_text())["tailtune_long_texts"] == "chunks"
    card = (trained / "README.md").read_text()
    assert "tailtune reads this model's longer texts whole, in windows of 16 tokens" in card
    tuner = TailTuner.load(trained, mixed_precision="no")
    texts = ["goal match team", _long_text(60, seed=2)]
    probs = tuner.predict_proba(texts)
    chunked = encode(tokenizer, texts[1:], None, max_length=16, long_texts="chunks")
    with torch.no_grad():
        windows = torch.stack([torch.as_tensor(chunked.row(r), dtype=torch.long) for r in range(len(chunked))])
        logits = tuner.model_.eval()(input_ids=windows).logits.numpy()
    assert len(windows) == 5
    np.testing.assert_allclose(probs[1:], softmax(logits.mean(axis=0, keepdims=True)), atol=1e-5)
    cut = TailTuner.load(trained, mixed_precision="no", long_texts="truncate").predict_proba(texts)
    np.testing.assert_allclose(cut[0], probs[0], atol=1e-6)
    np.testing.assert_allclose(cut[1:], softmax(logits[:1]), atol=1e-5)  # the first window alone
    assert not np.allclose(logits[0], logits.mean(axis=0), rtol=0, atol=1e-6)  # so the two readings differ here


def test_a_model_trained_to_truncate_predicts_truncated(tiny_model, trained, tmp_path):
    from tailtune.classifier import TailTuner

    texts, labels = make_texts({"sport": 6, "tech": 6}, seed=2)
    saved = TailTuner(tiny_model, "vanilla", epochs=1, min_steps=0, max_length=16, eval_fraction=0,
                      long_texts="truncate", show_progress=False).fit(texts, labels).save(tmp_path / "m")  # fmt: skip
    assert json.loads((saved / "config.json").read_text())["tailtune_long_texts"] == "truncate"
    assert TailTuner.load(saved)._long_texts() == "truncate"
    assert TailTuner.load(saved, long_texts="chunks")._long_texts() == "chunks"
    with pytest.raises(ValueError, match="long_texts: unknown value 'all'; valid: auto, chunks, truncate"):
        TailTuner.load(saved, long_texts="all")


@pytest.fixture
def encodings(monkeypatch) -> list[str]:
    """The long_texts of every encode() that prediction and fitting make."""
    from tailtune import classifier
    from tailtune.training import batching, family, fitting

    seen: list[str] = []

    def spy(*args, long_texts="truncate", **kwargs):
        seen.append(long_texts)
        return batching.encode(*args, long_texts=long_texts, **kwargs)

    monkeypatch.setattr(classifier, "encode", spy)
    monkeypatch.setattr(fitting, "encode", spy)
    monkeypatch.setattr(family, "encode", spy)  # the run's scoring of its test data
    return seen


def test_predict_and_evaluate_read_long_texts_whole(trained, tmp_path, capsys, encodings):
    from tailtune.classifier import TailTuner

    texts = ["goal match team", _long_text(60, seed=2), "chip phone code"]
    pd.DataFrame({"text": texts, "label": ["sport", "sport", "tech"]}).to_csv(tmp_path / "in.csv", index=False)
    assert run_cli(capsys, "predict", "--model", trained, "--input", tmp_path / "in.csv", "--output",
                   tmp_path / "out.csv", "--probabilities", "--mixed-precision", "no")[0] == 0  # fmt: skip
    assert run_cli(capsys, "predict", "--model", trained, "--input", tmp_path / "in.csv", "--output",
                   tmp_path / "cut.csv", "--long-texts", "truncate", "--mixed-precision", "no")[0] == 0  # fmt: skip
    assert run_cli(capsys, "evaluate", "--model", trained, "--data", tmp_path / "in.csv")[0] == 0
    # predict reads its texts twice, as it predicts them: to say which it reads as next to nothing, then to predict.
    assert encodings == ["chunks", "chunks", "truncate", "truncate", "chunks"]
    written = pd.read_csv(tmp_path / "out.csv")
    expected = TailTuner.load(trained, mixed_precision="no").predict_proba(texts)
    np.testing.assert_allclose(written[[c for c in written.columns if c.startswith("prob_")]], expected, atol=1e-6)


def test_train_scores_in_windows(tiny_model, tmp_path, encodings):
    """With long_texts chunks, train reads its training data cut to max_length, and scores validation and test data
    in windows."""
    from tailtune.data.types import Splits, TextDataset
    from tailtune.runs.train import train_run

    texts, labels = make_texts({"sport": 20, "tech": 20}, seed=4)
    test = TextDataset([_long_text(50, seed=i) for i in range(6)] + texts[:4], ["sport", "tech"] * 5, "test")
    config = build_run_config(
        tiny_model,
        "vanilla",
        settings={"epochs": 1, "min_steps": 0, "max_length": 16, "batch_size": 8, "seed": 1, "long_texts": "chunks"},
    )
    metrics = train_run(config, Splits(TextDataset(texts, labels, "train"), test=test), tmp_path / "r",
                        show_progress=False)  # fmt: skip
    # The selection model's training and validation data, the refit's training data, the test data.
    assert encodings == ["truncate", "chunks", "truncate", "chunks"]
    assert metrics["n_examples"] == len(test)
    assert len(pd.read_csv(tmp_path / "r" / "predictions.csv")) == len(test)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["run"]["long_texts"] == "chunks"
    assert metrics["long_texts"] is None  # given, not chosen


def test_auto_chooses_the_reading_on_validation(tiny_model, tmp_path, encodings):
    """long_texts auto (the default): validation reads as training does; once trained, the validation split is read
    both ways and the choice, its scores and its reason are recorded; the test data and the saved model read as
    chosen."""
    from tailtune.classifier import TailTuner
    from tailtune.data.types import Splits, TextDataset
    from tailtune.runs.train import train_run

    texts, labels = make_texts({"sport": 20, "tech": 20}, seed=4)
    texts = [text if i % 2 else text + " " + _long_text(40, seed=i) for i, text in enumerate(texts)]
    test = TextDataset([_long_text(50, seed=i) for i in range(6)] + texts[:4], ["sport", "tech"] * 5, "test")
    config = build_run_config(tiny_model, "vanilla", settings={"epochs": 1, "min_steps": 0, "max_length": 16,
                                                               "batch_size": 8, "seed": 1})  # fmt: skip
    assert config.long_texts == "auto"
    metrics = train_run(config, Splits(TextDataset(texts, labels, "train"), test=test), tmp_path / "r",
                        show_progress=False)  # fmt: skip
    decision = metrics["long_texts"]
    chosen = decision["chosen"]
    assert set(decision["validation"]) == {"chunks", "truncate"} and "validation texts are longer" in decision["reason"]
    better = decision["validation"]["chunks"] > decision["validation"]["truncate"] + 0.25  # 4 validation texts
    assert chosen == ("chunks" if better else "truncate")
    # Training and selection truncate; the choice reads validation whole; the refit trains; the test reads as chosen.
    assert encodings == ["truncate", "truncate", "chunks", "truncate", chosen]
    saved = json.loads((tmp_path / "r" / "model" / "config.json").read_text())
    assert saved["tailtune_long_texts"] == chosen
    assert TailTuner.load(tmp_path / "r" / "model")._long_texts() == chosen


def test_auto_without_long_validation_texts_truncates(tiny_model):
    """Nothing to choose where no validation text is longer than max_length: the model truncates."""
    from tailtune.classifier import TailTuner

    texts, labels = make_texts({"sport": 20, "tech": 20}, seed=4)
    tuner = TailTuner(tiny_model, "vanilla", epochs=1, min_steps=0, max_length=64, show_progress=False)
    tuner.fit(texts, labels)
    assert tuner.decisions_["long_texts"] == {"chosen": "truncate",
                                              "reason": "no validation text is longer than 64 tokens"}  # fmt: skip
    assert tuner._long_texts() == "truncate"


def test_predict_refuses_auto(trained, tmp_path, capsys):
    """A saved model reads as chosen when it was trained; auto, a choice made on validation data, is no option."""
    from tailtune.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", str(trained), "--input", "in.csv", "--output", "out.csv", "--long-texts", "auto"])
    assert exit_info.value.code == 2 and "invalid choice: 'auto'" in capsys.readouterr().err
