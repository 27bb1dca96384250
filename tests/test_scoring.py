"""The estimators' score: macro-F1 over the labels true or predicted, as metrics.json's macro_f1."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from sklearn.metrics import f1_score

from tailtune.data.types import LabelMap
from tailtune.errors import TailTuneError
from tailtune.multilabel_metrics import compute_multilabel_metrics
from tailtune.scoring import macro_f1_score
from tailtune.task import Task, get_task

TEXTS = ["a", "b", "c", "d"]
#: Three labels; the third is neither true nor predicted for any of these texts.
TRUTH = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]])
PREDICTED = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0]])


@dataclass
class FixedModel:
    """A fitted multi-label model in all that score reads, predicting ``PREDICTED``."""

    task: Task = field(default_factory=lambda: get_task("multi-label"))
    label_map: LabelMap = field(default_factory=lambda: LabelMap.from_label_sets([("x", "y", "z")]))
    classes_: np.ndarray = field(default_factory=lambda: np.array(["x", "y", "z"]))

    def predict(self, texts):
        return PREDICTED[: len(texts)]


def test_a_label_neither_true_nor_predicted_is_not_scored():
    measured = f1_score(TRUTH, PREDICTED, labels=[0, 1], average="macro")
    assert macro_f1_score(FixedModel(), TEXTS, TRUTH) == pytest.approx(measured)
    assert macro_f1_score(FixedModel(), TEXTS, [["x"], ["y"], ["x", "y"], ["y"]]) == pytest.approx(measured)
    metrics = compute_multilabel_metrics(TRUTH, PREDICTED, label_names=["x", "y", "z"], train_counts=[5, 5, 5])
    assert metrics["macro_f1"] == pytest.approx(measured)
    assert measured > f1_score(TRUTH, PREDICTED, average="macro", zero_division=0)  # the all-labels average


def test_nothing_true_or_predicted_has_no_score():
    empty = np.zeros((1, 3), dtype=int)
    model = FixedModel()
    model.predict = lambda texts: empty
    assert np.isnan(macro_f1_score(model, ["a"], empty))


def test_a_label_never_seen_in_training_is_scored_as_missed(caplog):
    """As an unseen single label is: a column the model never predicts, so a cross-validation fold holding a label
    that only it has still scores (it raised); said with a warning naming it."""
    truth = np.column_stack([TRUTH, [1, 0, 0, 0]])
    measured = f1_score(truth, np.column_stack([PREDICTED, np.zeros(4, int)]), labels=[0, 1, 3], average="macro")
    given = [["x", "new"], ["Y"], ["x", "Y"], ["Y"]]
    assert macro_f1_score(FixedModel(), TEXTS, [["x", "new"], ["y"], ["x", "y"], ["y"]]) == pytest.approx(measured)
    assert "score(): label(s) 'new' never seen in training are scored as missed on every text" in caplog.text
    caplog.clear()
    macro_f1_score(FixedModel(), TEXTS, given)
    assert caplog.messages == ["score(): label(s) 'Y', 'new' never seen in training are scored as missed on every "
                               "text ('Y' is the model's 'y' in another letter case, width or spacing)"]  # fmt: skip
    assert measured < macro_f1_score(FixedModel(), TEXTS, TRUTH)
    with pytest.raises(TailTuneError, match="score\\(\\): labels of several kinds"):  # as fit() refuses them
        macro_f1_score(FixedModel(), TEXTS, [["x", 1], ["y"], ["x"], ["y"]])


@pytest.mark.parametrize("wrong", [np.where(TRUTH == 1, 2, 0), np.where(TRUTH == 1, np.nan, 0), TRUTH * 0.7,
                                   TRUTH.astype(str)])  # fmt: skip
def test_an_indicator_matrix_is_checked_as_fit_checks_it(wrong):
    """Values other than 0 and 1 are refused in one line naming the row (a 2 scored 1.0, a nan scored nan)."""
    with pytest.raises(TailTuneError, match=r"score\(\): row 1 of the indicator labels holds"):
        macro_f1_score(FixedModel(), TEXTS, wrong)
    import scipy.sparse

    assert macro_f1_score(FixedModel(), TEXTS, scipy.sparse.csr_matrix(TRUTH)) == macro_f1_score(
        FixedModel(), TEXTS, TRUTH.astype(bool)
    )


def test_a_label_holding_the_joining_separator_is_warned_of_once_where_predictions_are_written(tmp_path, caplog):
    """The predictions table joins a text's labels with '|': a label holding '|' makes its cells ambiguous, which
    writing predictions.csv says once (not on every evaluation)."""
    from tailtune.data.types import TextDataset
    from tailtune.runs.rundir import write_predictions

    label_map = LabelMap.from_label_sets([("a|b", "ship")])
    data = TextDataset(["x", "y"], [("a|b", "ship"), ("ship",)], "t.jsonl")
    scores = np.array([[0.9, 0.9], [0.1, 0.9]])
    _, table = get_task("multi-label").evaluate(label_map, data, scores, train_counts=[1, 2])
    assert table["label"].tolist() == ["a|b|ship", "ship"] and not caplog.text
    for run in (".one.partial", "two"):  # a run is written in its staging folder, then moved into place
        (tmp_path / run).mkdir()
        write_predictions(tmp_path / run, table)
    assert caplog.text.count("the label 'a|b' holds '|', which joins a text's labels in its cells") == 1
    assert caplog.messages[0].startswith(f"{tmp_path / 'one' / 'predictions.csv'}: the label")
    caplog.clear()
    _, plain = get_task("multi-label").evaluate(LabelMap.from_label_sets([("a", "b")]), TextDataset(["x"], [("a",)],
                                                "t.jsonl"), np.array([[0.9, 0.1]]), train_counts=[1, 1])  # fmt: skip
    write_predictions(tmp_path / "one", plain)
    assert not caplog.text


def test_an_indicator_dataframe_is_read_by_its_column_names():
    """Columns in another order are lined up with classes_ by name (they were read by position: a wrong score);
    names that are not the classes are refused; a bad value names its label, not its column number."""
    import pandas as pd

    frame = pd.DataFrame(TRUTH, columns=["x", "y", "z"])
    expected = macro_f1_score(FixedModel(), TEXTS, TRUTH)
    assert macro_f1_score(FixedModel(), TEXTS, frame[["z", "x", "y"]]) == expected
    assert macro_f1_score(FixedModel(), TEXTS, pd.DataFrame(TRUTH)) == expected  # default columns: by position
    with pytest.raises(TailTuneError, match=r"score\(\): y's columns are not the model's classes \('w' differ\)"):
        macro_f1_score(FixedModel(), TEXTS, frame.rename(columns={"z": "w"}))
    with pytest.raises(TailTuneError, match="row 1 of the indicator labels holds 2 for label 'x'"):
        macro_f1_score(FixedModel(), TEXTS, frame.replace({1: 2}))


def test_single_labels_the_model_never_saw_are_warned_of(caplog):
    """Every label upper-cased scored 0.0 and said nothing; the warning names them and the model's spelling."""

    @dataclass
    class OneLabel:
        task: Task = field(default_factory=lambda: get_task(None))
        label_map: LabelMap = field(default_factory=lambda: LabelMap.from_labels(["earn", "acq"]))

        def predict(self, texts):
            return np.array(["earn", "acq"] * (len(texts) // 2))

    assert macro_f1_score(OneLabel(), TEXTS, ["earn", "acq", "earn", "acq"]) == 1.0 and not caplog.records
    assert macro_f1_score(OneLabel(), TEXTS, ["EARN", "ACQ", "EARN", "ACQ"]) == 0.0
    assert caplog.messages == ["score(): label(s) 'ACQ', 'EARN' never seen in training are scored as missed on every "
                               "text ('ACQ' is the model's 'acq' in another letter case, width or spacing; 'EARN' is "
                               "the model's 'earn' in another letter case, width or spacing)"]  # fmt: skip


def test_class_ids_mean_the_classes_of_a_checkpoint_saved_without_names(caplog):
    """transformers names such classes LABEL_0, LABEL_1, ...: data labelled 0, 1, ... is scored against them (it
    scored 0.0, every label unseen), and encoding for evaluate says how it read them."""

    @dataclass
    class Unnamed:
        task: Task = field(default_factory=lambda: get_task(None))
        label_map: LabelMap = field(default_factory=lambda: LabelMap(["LABEL_0", "LABEL_1"]))

        def predict(self, texts):
            return np.array(["LABEL_0", "LABEL_1"] * (len(texts) // 2))

    with caplog.at_level("INFO", logger="tailtune"):
        assert macro_f1_score(Unnamed(), TEXTS, [0, 1, 0, 1]) == 1.0
        assert Unnamed().label_map.encode(["1", "0", "LABEL_1"], source="d.csv").tolist() == [1, 0, 1]
    said = "labels 0, 1 read as the model's LABEL_0, LABEL_1 (the names transformers gives classes saved without names)"
    assert caplog.messages == [f"score(): {said}", f"d.csv: {said}"]
    with pytest.raises(TailTuneError, match="label.s. '2' never seen in training"):
        Unnamed().label_map.encode(["2"], source="d.csv")
    assert LabelMap(["LABEL_1", "LABEL_0"]).known_as(["0"], source="s") == [
        "0"
    ]  # not transformers' own order: names only
