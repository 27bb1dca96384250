"""Reading multi-label data: label columns of lists, CSV/TSV cells split on a separator, what is refused, writing
label sets back, and the Reuters-21578 set (90 topics) as shipped."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_file

from tailtune.cli.common import in_flag_terms
from tailtune.data.readers import read_dataset, save_dataset
from tailtune.data.types import Splits, TextDataset, check_label_sets
from tailtune.errors import TailTuneError

REUTERS = Path("/work/shared/data/real/reuters90")


def _jsonl(tmp_path: Path, rows: list[dict], name: str = "d.jsonl") -> Path:
    return write_file(tmp_path / name, "".join(json.dumps(row) + "\n" for row in rows))


# ------------------------------------------------------------------------------------------ list columns


def test_a_label_column_of_lists_is_multi_label_normalised_sorted_and_deduplicated(tmp_path):
    rows = [
        {"text": "a", "label": ["wheat", "grain", "wheat"]},
        {"text": "b", "label": []},
        {"text": "c", "label": [" grain\u200b ", 3, 1.0, "2.0", True]},
    ]
    ds = read_dataset(_jsonl(tmp_path, rows))
    assert ds.multi_label
    assert ds.labels == [("grain", "wheat"), (), ("1", "2", "3", "True", "grain")]
    assert ds.columns is not None and ds.columns["label"][1] == []


def test_a_single_label_dataset_is_not_multi_label(tmp_path):
    ds = read_dataset(_jsonl(tmp_path, [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]))
    assert not ds.multi_label and ds.labels == ["x", "y"]
    assert not TextDataset(["a"], None, "m").multi_label


def test_spellings_merged_inside_label_lists_are_warned_of(tmp_path, caplog):
    rows = [{"text": "a", "label": ["cin\u00e9"]}, {"text": "b", "label": ["cine\u0301", "x"]}]
    with caplog.at_level(logging.WARNING):
        ds = read_dataset(_jsonl(tmp_path, rows))
    assert ds.labels == [("cin\u00e9",), ("cin\u00e9", "x")]
    assert "written 2 ways that print alike" in caplog.text


def test_mixed_lists_and_single_labels_are_refused_naming_the_row(tmp_path):
    rows = [{"text": "a", "label": ["x"]}, {"text": "b", "label": ["y"]}, {"text": "c", "label": "x"}]
    path = _jsonl(tmp_path, rows)
    with pytest.raises(TailTuneError, match=(
        r"^.*d\.jsonl: data row 3 \(line 3 of the file\) has a single label in column 'label' while data row 1 has "
        r"a list of labels; write every row's labels as a list \(\[\] for a text with no label\)$"
    )):  # fmt: skip
        read_dataset(path)
    # A separator does not make the mix acceptable.
    with pytest.raises(TailTuneError, match="has a single label in column 'label'"):
        read_dataset(path, label_separator="|")


@pytest.mark.parametrize(
    ("item", "what"),
    [(["y"], "a list"), ({"y": 1}, "a dict"), (None, "a null"), ("", "an empty label"), ("\u200b", "an empty label")],
)
def test_a_list_holding_anything_but_label_names_is_refused(tmp_path, item, what):
    path = _jsonl(tmp_path, [{"text": "a", "label": ["x"]}, {"text": "b", "label": ["x", item]}])
    with pytest.raises(TailTuneError, match=(
        rf"d\.jsonl: data row 2 \(line 2 of the file\) has {what} inside its list of labels in column 'label'; a "
        r"list holds label names \(strings or numbers\) only: remove it$"
    )):  # fmt: skip
        read_dataset(path)


def test_a_null_label_list_is_a_missing_label(tmp_path, caplog):
    path = _jsonl(tmp_path, [{"text": "a", "label": ["x"]}, {"text": "b", "label": None}, {"text": "c"}])
    with pytest.raises(TailTuneError, match=(
        r"data rows 2, 3 \(lines 2, 3 of the file\) have no label list; write \[\] for a text with no label, or "
        "remove the row$"
    )):  # fmt: skip
        read_dataset(path)
    with caplog.at_level(logging.WARNING):
        assert read_dataset(path, require_labels=False).labels is None
    assert "2 rows have no label" in caplog.text


def test_a_separator_leaves_lists_alone_and_splits_strings_in_json(tmp_path):
    lists = _jsonl(tmp_path, [{"text": "a", "label": ["x|y"]}, {"text": "b", "label": ["z"]}])
    assert read_dataset(lists, label_separator="|").labels == [("x|y",), ("z",)]
    strings = _jsonl(tmp_path, [{"text": "a", "label": "x| y"}, {"text": "b", "label": 7}, {"text": "c", "label": ""}],
                     name="s.jsonl")  # fmt: skip
    assert read_dataset(strings, label_separator="|").labels == [("x", "y"), ("7",), ()]


def test_parquet_list_columns_are_multi_label(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [["x", "y"], [], ["y"]]}).to_parquet(path)
    ds = read_dataset(path)
    assert ds.labels == [("x", "y"), (), ("y",)]
    ints = tmp_path / "i.parquet"
    pd.DataFrame({"text": ["a", "b"], "label": [[2, 10], [1]]}).to_parquet(ints)
    assert read_dataset(ints).labels == [("10", "2"), ("1",)]


def test_hub_sequences_of_class_label_ids_become_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    topics = datasets.Sequence(datasets.ClassLabel(names=["neg", "pos", "mixed"]))
    features = datasets.Features({"text": datasets.Value("string"), "label": topics})
    saved = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [[2, 0], []]}, features=features)
    saved.save_to_disk(str(tmp_path / "saved"))
    assert read_dataset(tmp_path / "saved").labels == [("mixed", "neg"), ()]


# ------------------------------------------------------------------------------------- CSV/TSV separators


def test_csv_cells_split_on_the_separator(tmp_path):
    path = write_file(tmp_path / "d.csv", 'text,label\na,"grain | wheat|"\nb,\nc,earn\nd,"|| \u200b |"\n')
    ds = read_dataset(path, label_separator="|")
    assert ds.multi_label
    assert ds.labels == [("grain", "wheat"), (), ("earn",), ()]
    tsv = write_file(tmp_path / "d.tsv", "text\tlabel\na\tx; y\nb\ty\n")
    assert read_dataset(tsv, label_separator=";").labels == [("x", "y"), ("y",)]


def test_a_csv_read_without_the_separator_stays_single_label(tmp_path):
    path = write_file(tmp_path / "d.csv", 'text,label\na,"Business, Finance"\nb,Business\nc,Sport\n')
    assert read_dataset(path).labels == ["Business, Finance", "Business", "Sport"]


def test_an_empty_separator_is_refused(tmp_path):
    path = write_file(tmp_path / "d.csv", "text,label\na,x\n")
    with pytest.raises(TailTuneError, match="^label_separator must not be empty") as caught:
        read_dataset(path, label_separator="")
    assert in_flag_terms(caught.value).startswith("--label-separator must not be empty")


@pytest.mark.parametrize("joiner", ["|", ";", ","])
def test_labels_joined_without_the_separator_named_are_refused_naming_the_first_row(tmp_path, joiner):
    body = f'text,label\na,grain\nb,"grain{joiner} wheat"\nc,wheat\nd,"wheat{joiner}grain"\n'
    path = write_file(tmp_path / "d.csv", body)
    with pytest.raises(TailTuneError, match=(
        rf"d\.csv: data row 2 \(line 3 of the file\) has the label 'grain{joiner} wheat' in column 'label', and "
        rf"'grain', 'wheat' are labels of other rows, so it reads as several labels joined by '{joiner}'; rename "
        rf"the labels if each text has one, or if texts carry several labels give '{joiner}' as label_separator$"
    )) as caught:  # fmt: skip
        read_dataset(path)
    assert in_flag_terms(caught.value).endswith(f"give '{joiner}' as --label-separator")
    both = ("grain", "wheat")
    assert read_dataset(path, label_separator=joiner).labels == [("grain",), both, ("wheat",), both]


def test_joined_labels_in_a_json_column_of_strings_are_refused_too(tmp_path):
    rows = [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}, {"text": "c", "label": "x|y"}]
    with pytest.raises(TailTuneError, match=r"data row 3 \(line 3 of the file\) has the label 'x\|y'"):
        read_dataset(_jsonl(tmp_path, rows))


def test_a_label_joining_a_label_and_an_unknown_part_stays_single(tmp_path):
    path = write_file(tmp_path / "d.csv", "text,label\na,x\nb,x|z\nc,y\n")
    assert read_dataset(path).labels == ["x", "x|z", "y"]


def test_a_separator_named_for_a_single_label_file_reads_one_label_sets(tmp_path, caplog):
    path = write_file(tmp_path / "d.csv", "text,label\na,x\nb,y\n")
    with caplog.at_level(logging.WARNING):
        assert read_dataset(path, label_separator="|").labels == [("x",), ("y",)]
    assert "no cell of column 'label' holds the label separator '|'" in caplog.text


def test_a_label_on_every_text_is_warned_of(tmp_path, caplog):
    """Cells split on the wrong character leave a fragment every text carries: that is said, naming the label."""
    rows = "".join(f"t{i},news;{'sport' if i % 2 else 'money'}\n" for i in range(12))
    path = write_file(tmp_path / "d.csv", "text,label\n" + rows)
    with caplog.at_level(logging.WARNING):
        read_dataset(path, label_separator=";")
    assert "every text carries the label(s) 'news'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        read_dataset(write_file(tmp_path / "e.csv", "text,label\n" + rows.replace("news;", "")), label_separator=";")
    assert "every text carries" not in caplog.text and "no cell of column" in caplog.text


def test_labels_joined_by_another_character_than_the_separator_are_refused(tmp_path):
    """Cells joined by '|' read with ' ': 'acq|earn' beside 'acq' and 'earn' would be a class of its own."""
    path = write_file(tmp_path / "d.csv", "text,label\na,acq|earn\nb,acq\nc,earn grain\n")
    with pytest.raises(TailTuneError) as err:
        read_dataset(path, label_separator=" ")
    assert str(err.value) == (f"{path}: data row 1 (line 2 of the file) has the label 'acq|earn' in column 'label', "
                              "which joins 'acq', 'earn', labels of other rows, with '|' rather than the separator "
                              "' '; give '|' as label_separator")  # fmt: skip
    assert read_dataset(path, label_separator="|").labels == [("acq", "earn"), ("acq",), ("earn grain",)]
    # A name that only ends in another joiner joins nothing: '0|' beside '0' reads back as written.
    ends = write_file(tmp_path / "e.csv", "text,label\na,0;0|\nb,0\n")
    assert read_dataset(ends, label_separator=";").labels == [("0", "0|"), ("0",)]


def test_no_misreading_is_warned_of_where_no_text_has_a_label(tmp_path, caplog):
    """Empty cells only hold no separator because they hold nothing: no warning (training refuses such data)."""
    with caplog.at_level(logging.WARNING):
        read = read_dataset(write_file(tmp_path / "d.csv", "text,label\na,\nb,\n"), label_separator="|")
    assert read.labels == [(), ()]
    assert caplog.text == ""


# ----------------------------------------------------------------------------------------------- writing


def test_label_sets_are_written_as_lists_or_joined_cells(tmp_path):
    ds = TextDataset(["a", "b", "c"], [("x", "y"), (), ("y",)], "mem")
    save_dataset(ds, tmp_path / "d.jsonl")
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["label"] for line in lines] == [["x", "y"], [], ["y"]]
    save_dataset(ds, tmp_path / "d.csv")
    assert (tmp_path / "d.csv").read_bytes() == b"text,label\r\na,x|y\r\nb,\r\nc,y\r\n"
    save_dataset(ds, tmp_path / "d.tsv", label_separator=";")
    assert read_dataset(tmp_path / "d.tsv", label_separator=";").labels == ds.labels
    for suffix in (".jsonl", ".parquet", ".csv"):
        save_dataset(ds, tmp_path / f"r{suffix}")
        back = read_dataset(tmp_path / f"r{suffix}", label_separator="|")
        assert back.labels == ds.labels and back.texts == ds.texts


def test_a_label_holding_the_separator_is_not_written_joined(tmp_path):
    ds = TextDataset(["a"], [("x|y", "z")], "mem")
    with pytest.raises(TailTuneError, match=r"cannot join label sets with '\|': label\(s\) 'x\|y' hold it; pick "):
        save_dataset(ds, tmp_path / "d.csv")
    save_dataset(ds, tmp_path / "d.csv", label_separator=";")
    assert read_dataset(tmp_path / "d.csv", label_separator=";").labels == [("x|y", "z")]


# --------------------------------------------------------------------------------------------- reuters90


@pytest.mark.skipif(not REUTERS.is_dir(), reason="the Reuters-21578 set is not on this machine")
def test_reuters90_reads_as_90_labels_with_the_recorded_counts():
    train = read_dataset(REUTERS / "train.jsonl", label_column="labels")
    test = read_dataset(REUTERS / "test.jsonl", label_column="labels")
    assert (len(train), len(test)) == (7770, 3019)
    assert train.multi_label and test.multi_label
    label_map = check_label_sets(Splits(train, test=test))
    assert len(label_map) == 90 and len({n for row in test.labels for n in row}) == 90
    counts = json.loads((REUTERS / "counts.json").read_text(encoding="utf-8"))
    assert dict(zip(label_map.labels, label_map.counts(train), strict=True)) == counts
    # Every document carries a topic: no negative examples in either split, and 1.23 topics a document.
    assert sum(not row for row in train.labels) == sum(not row for row in test.labels) == 0
    assert np.mean([len(row) for row in train.labels]) == pytest.approx(1.23, abs=0.005)
    assert label_map.encode_sets(test.labels, source=test.source).sum() == sum(map(len, test.labels))


def test_an_unseen_label_that_differs_only_in_case_is_named_beside_its_near_twin():
    """'Money' against a model trained on 'money' says so (it said only "never seen in training")."""
    from tailtune.data.types import LabelMap
    from tailtune.errors import TailTuneError

    label_map = LabelMap.from_labels(["money", "sport", "Sport"])
    with pytest.raises(TailTuneError, match=r"\('Money' is the model's 'money' in another letter case, width or "
                                            r"spacing\)$"):  # fmt: skip
        label_map.encode(["Money", "sport"], source="t.csv")
    with pytest.raises(TailTuneError, match=r"\('SPORT' is the model's 'Sport' or 'sport' in another letter case"):
        label_map.encode(["SPORT"], source="t.csv")
    with pytest.raises(TailTuneError, match=r"retrain with them$"):
        label_map.encode(["weather"], source="t.csv")
