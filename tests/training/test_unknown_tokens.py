"""Training texts the tokenizer reads as its unknown token are said before training."""

from __future__ import annotations

import logging

import pytest
from transformers import AutoTokenizer

from tailtune.training import unknown_tokens
from tailtune.training.batching import encode
from tailtune.training.unknown_tokens import unknown_shares, warn_of_unreadable_texts

THAI = "เศรษฐกิจ วันนี้ ธนาคาร"


@pytest.fixture
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(autouse=True)
def _nothing_said_yet(monkeypatch):
    monkeypatch.setattr(unknown_tokens, "_said", set())


def test_shares_count_a_texts_own_tokens(tokenizer):
    """[CLS] and [SEP] are not the text's: 'goal' and 'zzz' is half unknown, 'goal team' none; '' has no token of
    its own and is read as nothing, as an unknown one is."""
    encoded = encode(tokenizer, ["goal zzz", "goal team", THAI, ""], None, max_length=16)
    assert unknown_shares(tokenizer, encoded).tolist() == [0.5, 0.0, 1.0, 1.0]


def test_a_text_read_in_windows_is_counted_once_over_all_of_them(tokenizer):
    """Windows of 8 tokens: the first text (20 words, 15 unknown) spans three windows, and is one share."""
    texts = [" ".join(["goal"] * 5 + ["zzz"] * 15), "goal team"]
    encoded = encode(tokenizer, texts, None, max_length=8, long_texts="chunks")
    assert len(encoded.offsets) - 1 > len(texts)
    assert unknown_shares(tokenizer, encoded).tolist() == [0.75, 0.0]


def test_a_notable_share_of_unreadable_texts_warns_once(tokenizer, caplog):
    texts = [THAI] * 2 + ["goal team win"] * 18  # a tenth
    encoded = encode(tokenizer, texts, None, max_length=16)
    with caplog.at_level(logging.WARNING):
        warn_of_unreadable_texts(tokenizer, encoded, "thai.csv")
        warn_of_unreadable_texts(tokenizer, encoded, "thai.csv")  # the refit encodes them again
    (record,) = caplog.records
    assert record.getMessage().startswith("thai.csv: 2 of 20 training texts (10%) are mostly tokens the model's "
                                          "vocabulary does not hold")  # fmt: skip
    assert "as [UNK]" in record.getMessage() and "--strategy tfidf" in record.getMessage()


def test_a_few_unreadable_texts_say_nothing(tokenizer, caplog):
    encoded = encode(tokenizer, [THAI] + ["goal team win"] * 19, None, max_length=16)
    with caplog.at_level(logging.WARNING):
        warn_of_unreadable_texts(tokenizer, encoded, "mostly-english.csv")
    assert not caplog.records


def test_a_tokenizer_without_an_unknown_token_has_no_shares(tokenizer):
    class ByteLevel:
        unk_token_id = None

    assert unknown_shares(ByteLevel(), encode(tokenizer, ["goal"], None, max_length=8)) is None


def test_fitting_on_texts_the_model_cannot_read_warns(tiny_model, caplog):
    from tailtune.classifier import TailTuner

    texts = [f"{THAI} {i}" for i in range(12)]
    tuner = TailTuner(tiny_model, "vanilla", epochs=0, max_length=16, show_progress=False)
    with caplog.at_level(logging.WARNING, logger="tailtune"):
        tuner.fit(texts, ["a", "b", "c"] * 4)
    assert "12 of 12 training texts (100%) are mostly tokens the model's vocabulary does not hold" in caplog.text
