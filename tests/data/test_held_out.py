"""Held-out data that shares texts with the training data is said so, at a level that matches how much; validation
data without some classes is said so."""

import logging

from tailtune.data.held_out import training_texts_in, warn_of_held_out
from tailtune.data.types import Splits, TextDataset


def _data(texts, source):
    return TextDataset(list(texts), ["a"] * len(texts), source)


def test_texts_are_compared_with_whitespace_collapsed_and_case_kept():
    train = _data(["one  two", "three"], "train.csv")
    held = _data(["one two", " three\n", "Three", "four", "three"], "test.csv")
    assert training_texts_in(train, held) == 3


def test_a_copy_under_another_name_is_called_training_data(caplog):
    train = _data(["x y", "z"], "train.csv")
    with caplog.at_level(logging.INFO):
        warn_of_held_out(Splits(train, test=_data(["z", "x y"], "copy.csv")))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("copy.csv: the test data holds only texts of the training data")


def test_a_notable_share_warns_and_a_few_shared_texts_are_info(caplog):
    train = _data([f"text {i}" for i in range(300)], "train.csv")
    notable = _data(["text 1", "text 2"] + [f"new {i}" for i in range(98)], "eval.csv")
    few = _data(["text 1"] + [f"new {i}" for i in range(199)], "test.csv")
    with caplog.at_level(logging.INFO):
        warn_of_held_out(Splits(train, eval=notable, test=few))
    levels = {record.getMessage().split(":")[0]: record.levelno for record in caplog.records}
    assert levels == {"eval.csv": logging.WARNING, "test.csv": logging.INFO}
    assert "2 of the 100 validation texts (2.0%) are training texts too (train.csv)" in caplog.text


def test_nothing_shared_says_nothing(caplog):
    with caplog.at_level(logging.INFO):
        warn_of_held_out(Splits(_data(["a"], "t"), test=_data(["b"], "u")))
    assert not caplog.records


def test_validation_data_without_some_classes_names_them(caplog):
    train = TextDataset(["a", "b", "c", "d"], ["sport", "tech", "money", "sport"], "train.csv")
    given = TextDataset(["e", "f"], ["sport", "sport"], "eval.csv")
    with caplog.at_level(logging.WARNING):
        warn_of_held_out(Splits(train, eval=given, test=TextDataset(["g"], ["tech"], "test.csv")))
    assert caplog.messages == ["eval.csv: the validation data holds no example of 2 of the 3 training classes "
                               "('money', 'tech'): what is chosen on it (epochs, the decision rule, a search's trials) "
                               "sees only the others"]  # fmt: skip
