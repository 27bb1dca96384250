"""Content fingerprints of data (:mod:`tailtune.data.fingerprint`): content, not path, decides."""

from __future__ import annotations

from tailtune.data.fingerprint import changed_roles, describe_change, fingerprint, short, split_fingerprints
from tailtune.data.types import Splits, TextDataset


def _data(texts: list[str], labels: list[str] | None, source: str = "a.csv") -> TextDataset:
    return TextDataset(texts, labels, source)


def test_same_rows_under_another_path_fingerprint_alike():
    assert fingerprint(_data(["x y", "z"], ["a", "b"], "one.csv")) == fingerprint(_data(["x y", "z"], ["a", "b"], "2"))


def test_reshuffled_texts_with_the_same_labels_and_counts_differ():
    """Texts moved to other rows, labels (and so their counts) unchanged: other data."""
    labels = ["a", "a", "b"]
    assert fingerprint(_data(["t1", "t2", "t3"], labels)) != fingerprint(_data(["t3", "t1", "t2"], labels))


def test_row_order_labels_and_boundaries_count():
    base = fingerprint(_data(["ab", "c"], ["x", "y"]))
    assert base != fingerprint(_data(["c", "ab"], ["y", "x"]))  # rows reordered
    assert base != fingerprint(_data(["ab", "c"], ["y", "x"]))  # relabelled
    assert base != fingerprint(_data(["a", "bc"], ["x", "y"]))  # the same characters split otherwise
    assert base != fingerprint(_data(["ab", "c"], None))  # unlabelled
    assert fingerprint(None) is None
    assert base.startswith("sha256:") and len(short(base)) == 12


def test_changed_roles():
    splits = Splits(_data(["t"], ["a"]), None, _data(["u"], ["a"], "test.csv"))
    now = split_fingerprints(splits)
    assert changed_roles(now, now) == []
    assert changed_roles({**now, "test": "sha256:00"}, now) == ["test"]
    assert changed_roles({**now, "eval": "sha256:00"}, now) == ["eval"]  # given then, not now
    assert changed_roles(None, now) is None  # recorded before fingerprints: unknown
    assert changed_roles({"train": now["train"]}, now) == []  # a role not recorded is not compared
    assert describe_change("test", splits, now) == "the test data now given (test.csv) differs in content"
    assert describe_change("eval", splits, {"eval": "sha256:00"}) == "eval data was given then and is not now"
