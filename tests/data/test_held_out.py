"""Held-out data that shares texts with the training data is said so, at a level that matches how much; validation
data without some classes is said so."""

import logging

import numpy as np

from tailtune.data.held_out import training_texts_in, warn_of_held_out, warn_of_run_data
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


def _run_data(train, *, eval_data=None, selected_on_eval=True):
    from tailtune.data.fingerprint import fingerprint
    from tailtune.data.held_out import text_keys

    return {"data": {"train": train.source, "eval": eval_data and eval_data.source},
            "fingerprints": {"train": fingerprint(train), "eval": fingerprint(eval_data)},
            "selected_on_eval": selected_on_eval, "train_texts": np.unique(text_keys(train.texts))}  # fmt: skip


def test_a_saved_model_scored_on_what_its_run_trained_or_chose_on_is_said_so(caplog):
    """By content: the training rows exactly, then shuffled or in part (texts compared as held-out texts are); the
    run's eval file only where the run chose something on it (a tfidf run chooses nothing)."""
    train = _data([f"text {i}" for i in range(300)], "train.csv")
    val = _data(["held one", "held two"], "val.csv")
    with caplog.at_level(logging.INFO):
        warn_of_run_data(_data(train.texts, "copy.csv"), _run_data(train))
        warn_of_run_data(_data(train.texts[::-1][:100], "part.csv"), _run_data(train))
        warn_of_run_data(_data(["text  1", *(f"new {i}" for i in range(199))], "new.csv"), _run_data(train))
        warn_of_run_data(val, _run_data(train, eval_data=val))
        warn_of_run_data(val, _run_data(train, eval_data=val, selected_on_eval=False))
        warn_of_run_data(_data(["brand new"], "fresh.csv"), _run_data(train))
        warn_of_run_data(_data(train.texts, "copy.csv"), None)  # a model outside a run: nothing to compare
    assert [(r.levelno, r.getMessage().split(";")[0]) for r in caplog.records] == [
        (logging.WARNING, "copy.csv: this is the data the model's run trained on (train.csv)"),
        (logging.WARNING, "part.csv: 100 of its 100 texts (100.0%) are texts the model's run trained on"),
        (logging.INFO, "new.csv: 1 of its 200 texts (0.5%) are texts the model's run trained on"),
        (logging.WARNING, "val.csv: this is the data the model's run chose its epochs and decision rule on (val.csv)"),
    ]
