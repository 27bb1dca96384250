from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_file

from tailtune.data.readers import parse_hub_spec, read_dataset, save_dataset
from tailtune.data.types import LabelMap, TextDataset
from tailtune.data.values import dataset_from_values
from tailtune.errors import TailTuneError

# Texts that trip up naive writers and readers: separators, quotes, newlines, non-ASCII, NA-like words.
TEXTS = ["plain", 'has, a comma and "quotes"', "two\nlines", "tab\there", "café £5 ✓", "NA", "None"]
LABELS = ["pos", "neg", "NA", "None", "pos", "neg", "null"]


def _ds() -> TextDataset:
    return TextDataset(list(TEXTS), list(LABELS), "mem")


# ------------------------------------------------------------------------------------ TextDataset/LabelMap


def test_the_old_name_of_read_dataset_still_imports():
    from tailtune.data.readers import load_dataset

    assert load_dataset is read_dataset


def test_subset_keeps_order_and_source():
    sub = _ds().subset(np.array([4, 0]))
    assert sub.texts == ["café £5 ✓", "plain"]
    assert sub.labels == ["pos", "pos"]
    assert sub.source == "mem"
    assert len(sub) == 2
    assert TextDataset(["a", "b"], None, "x").subset([1]).labels is None


def test_labelmap_orders_integers_numerically_and_strings_lexically():
    assert LabelMap.from_labels(["10", "2", "1", "2"]).labels == ["1", "2", "10"]
    assert LabelMap.from_labels(["b", "10", "a"]).labels == ["10", "a", "b"]
    m = LabelMap.from_labels(["pos", "neg"])
    assert m.label2id == {"neg": 0, "pos": 1}
    assert len(m) == 2


def test_labelmap_encode():
    m = LabelMap(["neg", "pos"])
    ids = m.encode(["pos", "neg", "pos"], source="x.csv")
    assert ids.dtype == np.int64
    assert ids.tolist() == [1, 0, 1]


def test_labelmap_encode_unknown_names_them():
    with pytest.raises(TailTuneError, match=r"^test\.csv: label\(s\) 'maybe', 'zzz' never seen in training"):
        LabelMap(["neg", "pos"]).encode(["pos", "zzz", "maybe", "zzz"], source="test.csv")


def test_labelmap_encode_matches_a_saved_label_written_in_another_form(caplog):
    # A model saved with labels in NFD or with a zero-width space still knows them as read today (NFC, no ZWSP).
    m = LabelMap(["cine\u0301", "football\u200b", "money"])
    assert m.encode(["ciné", "football", "money", "cine\u0301"], source="test.csv").tolist() == [0, 1, 2, 0]
    assert not caplog.records
    # Two saved spellings of one name each match only exactly, with a warning naming both.
    twins = LabelMap(["a", "a\u200b", "b"])
    assert twins.encode(["a", "a\u200b", "b"], source="test.csv").tolist() == [0, 1, 2]
    assert [r.getMessage() for r in caplog.records] == [
        "test.csv: the model has 2 classes that print alike ('a', 'a\\u200b'), saved before labels were compared in "
        "one form, while data is read as 'a' now: retrain the model to make them one class"
    ]


# --------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_roundtrip_every_format(tmp_path, suffix):
    path = tmp_path / "sub" / f"data{suffix}"
    save_dataset(_ds(), path)
    back = read_dataset(str(path))
    assert back.texts == TEXTS
    assert back.labels == LABELS
    assert back.source == str(path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_roundtrip_custom_columns_and_unlabelled(tmp_path):
    path = tmp_path / "d.csv"
    save_dataset(_ds(), path, text_column="sentence", label_column="y")
    assert list(pd.read_csv(path).columns) == ["sentence", "y"]
    back = read_dataset(path, text_column="sentence", label_column="y")
    assert back.labels == LABELS
    unl = tmp_path / "u.jsonl"
    save_dataset(TextDataset(["a", "b"], None, "m"), unl)
    assert json.loads(unl.read_text().splitlines()[0]) == {"text": "a"}
    back = read_dataset(unl, require_labels=False)
    assert back.texts == ["a", "b"] and back.labels is None


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "d.csv"
    save_dataset(_ds(), path)
    save_dataset(TextDataset(["x"], ["y"], "m"), path)
    assert read_dataset(path).texts == ["x"]


def test_save_unknown_extension(tmp_path):
    with pytest.raises(TailTuneError, match=r"d\.xlsx: cannot write '\.xlsx'.*\.csv, \.tsv"):
        save_dataset(_ds(), tmp_path / "d.xlsx")


def test_integer_labels_become_strings(tmp_path):
    pq = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [1.0, 0.0, 2.0]}).to_parquet(pq)
    assert read_dataset(pq).labels == ["1", "0", "2"]
    pd.DataFrame({"text": ["a", "b"], "label": np.array([3, 0], dtype=np.int64)}).to_parquet(pq)
    assert read_dataset(pq).labels == ["3", "0"]
    js = write_file(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 2.0}\n')
    assert read_dataset(js).labels == ["1", "2"]


def test_csv_keeps_na_like_labels_and_bom(tmp_path):
    path = write_file(tmp_path / "d.csv", "\ufefftext,label\nhello,NA\nworld,None\nx, pos \n")
    ds = read_dataset(path)
    assert ds.labels == ["NA", "None", "pos"]


def test_json_array_accepted(tmp_path):
    path = write_file(tmp_path / "d.json", json.dumps([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]))
    assert read_dataset(path).labels == ["x", "y"]


def test_require_labels_false_without_label_column(tmp_path):
    path = write_file(tmp_path / "d.csv", "text\na\nb\n")
    assert read_dataset(path, require_labels=False).labels is None
    with pytest.raises(TailTuneError, match="name it with label_column$"):
        read_dataset(path)


# ------------------------------------------------------------------------------------------ datasets folders


@pytest.fixture(scope="module")
def hf():
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    return datasets


def _classlabel_ds(hf, texts, ids):
    features = hf.Features({"text": hf.Value("string"), "label": hf.ClassLabel(names=["neg", "pos"])})
    return hf.Dataset.from_dict({"text": texts, "label": ids}, features=features)


def test_save_to_disk_dataset(hf, tmp_path):
    hf.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}).save_to_disk(str(tmp_path / "ds"))
    ds = read_dataset(str(tmp_path / "ds"))
    assert ds.texts == ["a", "b"]
    assert ds.labels == ["0", "1"]
    with pytest.raises(TailTuneError, match="without splits"):
        read_dataset(f"{tmp_path / 'ds'}:train")


def test_save_to_disk_datasetdict_classlabel_names(hf, tmp_path):
    dd = hf.DatasetDict(
        train=_classlabel_ds(hf, ["a", "b", "c"], [1, 0, 1]),
        validation=_classlabel_ds(hf, ["d"], [0]),
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    train = read_dataset(str(tmp_path / "dd"))  # defaults to "train"
    assert train.texts == ["a", "b", "c"]
    assert train.labels == ["pos", "neg", "pos"]
    val = read_dataset(f"{tmp_path / 'dd'}:validation")
    assert val.labels == ["neg"]
    with pytest.raises(TailTuneError, match=r"no split 'test'; available splits: 'train', 'validation'"):
        read_dataset(f"{tmp_path / 'dd'}:test")


def test_save_to_disk_datasetdict_split_choice(hf, tmp_path):
    hf.DatasetDict(only=_classlabel_ds(hf, ["a"], [1])).save_to_disk(str(tmp_path / "one"))
    assert read_dataset(str(tmp_path / "one")).labels == ["pos"]
    hf.DatasetDict(a=_classlabel_ds(hf, ["a"], [1]), b=_classlabel_ds(hf, ["b"], [0])).save_to_disk(
        str(tmp_path / "two")
    )
    with pytest.raises(TailTuneError, match=r"holds splits 'a', 'b'.*:SPLIT"):
        read_dataset(str(tmp_path / "two"))


def test_classlabel_minus_one_is_missing(hf, tmp_path):
    _classlabel_ds(hf, ["a", "b"], [1, -1]).save_to_disk(str(tmp_path / "t"))
    with pytest.raises(TailTuneError, match="data row 2 has an empty label"):
        read_dataset(str(tmp_path / "t"))
    assert read_dataset(str(tmp_path / "t"), require_labels=False).labels is None


def test_plain_folder_is_not_a_dataset(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(TailTuneError, match="not one written by datasets' save_to_disk"):
        read_dataset(str(tmp_path / "folder"))


# ----------------------------------------------------------------------------------------------------- hub


def test_parse_hub_spec():
    assert parse_hub_spec("glue/sst2:train") == ("glue", "sst2", "train")
    assert parse_hub_spec("imdb") == ("imdb", None, None)
    assert parse_hub_spec("imdb:test") == ("imdb", None, "test")
    assert parse_hub_spec("nyu-mll/glue/sst2:validation") == ("nyu-mll/glue", "sst2", "validation")
    for bad in ["", "a//b", "a:", "a/b/c/d"]:
        with pytest.raises(TailTuneError):
            parse_hub_spec(bad)


def test_hub_load_calls_datasets_and_falls_back_to_repo(hf, monkeypatch):
    calls = []

    def fake_load(name, config=None, split=None):
        calls.append((name, config, split))
        if config is not None:
            raise hf.exceptions.DatasetNotFoundError("Dataset 'stanfordnlp' doesn't exist on the Hub")
        return _classlabel_ds(hf, ["x", "y"], [0, 1])

    monkeypatch.setattr(hf, "load_dataset", fake_load)
    ds = read_dataset("stanfordnlp/imdb:train")
    assert calls == [("stanfordnlp", "imdb", "train"), ("stanfordnlp/imdb", None, "train")]
    assert ds.labels == ["neg", "pos"]
    assert ds.source == "stanfordnlp/imdb:train"


def test_hub_failure_is_one_line_and_offline_tries_once(hf, monkeypatch):
    calls = []

    def fake_load(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("Couldn't reach the Hub\nlong details")

    monkeypatch.setattr(hf, "load_dataset", fake_load)
    with pytest.raises(TailTuneError) as err:
        read_dataset("glue/sst2:train")
    assert str(err.value) == (
        "glue/sst2:train: could not load from the Hugging Face hub (as 'glue' config 'sst2': Couldn't reach "
        "the Hub); check the name, config and split, your network connection, or pass a local file"
    )
    assert calls == [("glue", "sst2")]


def test_hub_not_found_either_way(hf, monkeypatch):
    def fake_load(name, config=None, split=None):
        raise hf.exceptions.DatasetNotFoundError(f"Dataset '{name}' doesn't exist on the Hub")

    monkeypatch.setattr(hf, "load_dataset", fake_load)
    pattern = r"\(as 'a' config 'b': Dataset 'a' doesn't .*; as 'a/b': Dataset 'a/b'"
    with pytest.raises(TailTuneError, match=pattern):
        read_dataset("a/b")


def test_hub_without_datasets_package(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(TailTuneError, match="pip install datasets"):
        read_dataset("glue/sst2:train")


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("spec", ["missing.csv", "./missing", "/nowhere/at/all", "data/x.txt", "./nope:train"])
def test_missing_local_path(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TailTuneError, match=r"file not found"):
        read_dataset(spec)


def test_empty_file(tmp_path):
    path = write_file(tmp_path / "d.csv", b"")
    with pytest.raises(TailTuneError, match=r"d\.csv: the file is empty \(0 bytes\)"):
        read_dataset(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [("h.csv", "text,label\n"), ("h.tsv", "text\tlabel\n"), ("h.jsonl", "\n\n")],
)
def test_header_only(tmp_path, name, content):
    path = write_file(tmp_path / name, content)
    with pytest.raises(TailTuneError, match=rf"{name}: (has a header but no data rows|the file holds only whitespace)"):
        read_dataset(path)


def test_parquet_without_rows(tmp_path):
    path = tmp_path / "e.parquet"
    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)}).to_parquet(path)
    with pytest.raises(TailTuneError, match=r"e\.parquet: has a header but no data rows"):
        read_dataset(path)


def test_missing_columns_list_found(tmp_path):
    path = write_file(tmp_path / "d.csv", "sentence,y\na,b\n")
    with pytest.raises(TailTuneError) as err:
        read_dataset(path)
    assert str(err.value) == (
        f"{path}: no text column 'text' (columns found: 'sentence', 'y'); name it with text_column"
    )
    assert err.value.setting == "text_column"
    with pytest.raises(
        TailTuneError, match=r"no label column 'label' \(columns found: 'sentence', 'y'\); name it with label_column$"
    ) as err:
        read_dataset(path, text_column="sentence")
    assert err.value.setting == "label_column"


def test_csv_empty_labels_name_rows_and_lines(tmp_path):
    # Row 2's text spans two lines, so data rows and file lines drift apart after it.
    content = 'text,label\na,x\n"b\nc",\nd,y\ne,  \nf,z\n'
    path = write_file(tmp_path / "d.csv", content)
    with pytest.raises(TailTuneError) as err:
        read_dataset(path)
    assert str(err.value) == (
        f"{path}: data rows 2, 4 (lines 3, 6 of the file) have an empty label; fill it in or remove the row"
    )


def test_empty_labels_beside_joined_ones_name_the_separator(tmp_path):
    """Empty cells beside cells that join names: label sets read without their separator, most likely."""
    path = write_file(tmp_path / "d.csv", "text,label\na,grain|wheat\nb,\nc,corn|oat\n")
    with pytest.raises(TailTuneError) as err:
        read_dataset(path)
    assert str(err.value) == (
        f"{path}: data row 2 (line 3 of the file) has an empty label; fill it in or remove "
        "the row; if a text may carry several labels or none, give '|' as label_separator"
    )
    assert err.value.setting == "label_separator"


def test_csv_short_row_is_refused(tmp_path):
    path = write_file(tmp_path / "d.csv", "text,label\na,x\nb\n")
    with pytest.raises(
        TailTuneError, match=r"data row 2 \(line 3 of the file\) has 1 field where the header has 2; wrap"
    ):
        read_dataset(path)


def test_csv_empty_texts_capped_at_ten(tmp_path):
    rows = "".join(f"{'' if i % 2 else 't'},x\n" for i in range(30))
    path = write_file(tmp_path / "d.csv", "text,label\n" + rows)
    with pytest.raises(TailTuneError) as err:
        read_dataset(path)
    msg = str(err.value)
    assert "data rows 2, 4, 6, 8, 10, 12, 14, 16, 18, 20 and 5 more (lines 3, 5," in msg
    assert "have an empty text" in msg


def test_tsv_whitespace_text(tmp_path):
    path = write_file(tmp_path / "d.tsv", "text\tlabel\nok\tx\n   \ty\n")
    with pytest.raises(TailTuneError, match=r"d\.tsv: data row 2 \(line 3 of the file\) has an empty text"):
        read_dataset(path)


def test_csv_too_many_fields(tmp_path):
    path = write_file(tmp_path / "d.csv", "text,label\na,b\nc,d,e\n")
    with pytest.raises(TailTuneError, match=r"d\.csv: data row 2 \(line 3 of the file\) has 3 fields where the header"):
        read_dataset(path)


def test_jsonl_malformed_line(tmp_path):
    lines = ['{"text": "a", "label": "x"}'] * 6 + ['{"text": "b", "label": }']
    path = write_file(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(TailTuneError, match=r"d\.jsonl line 7: not valid JSON \("):
        read_dataset(path)


def test_jsonl_not_an_object(tmp_path):
    path = write_file(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n')
    with pytest.raises(TailTuneError, match=r"d\.jsonl line 2: expected a JSON object"):
        read_dataset(path)


def test_jsonl_null_and_missing_label_rows(tmp_path):
    content = '{"text": "a", "label": "x"}\n\n{"text": "b", "label": null}\n{"text": "c"}\n'
    path = write_file(tmp_path / "d.jsonl", content)
    with pytest.raises(TailTuneError, match=r"data rows 2, 3 \(lines 3, 4 of the file\) have an empty label"):
        read_dataset(path)


def test_jsonl_nested_value(tmp_path):
    path = write_file(tmp_path / "d.jsonl", '{"text": "a", "label": {"x": 1}}\n')
    with pytest.raises(TailTuneError, match=r"data row 1 \(line 1 of the file\) has a dict in column 'label'"):
        read_dataset(path)


def test_parquet_nan_label(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [1.0, float("nan"), 0.0]}).to_parquet(path)
    with pytest.raises(TailTuneError, match=r"d\.parquet: data row 2 has an empty label"):
        read_dataset(path)


def test_not_utf8(tmp_path):
    path = write_file(tmp_path / "d.csv", b"text,label\nok,x\n" + "caf\xe9,y\n".encode("latin-1"))
    with pytest.raises(TailTuneError, match=r"d\.csv: not valid UTF-8 \(byte 0xe9 at offset 19, line 3\); re-save"):
        read_dataset(path)


def test_damaged_parquet(tmp_path):
    path = write_file(tmp_path / "d.parquet", b"not parquet at all")
    with pytest.raises(TailTuneError, match=r"d\.parquet: cannot read as Parquet"):
        read_dataset(path)


def test_unknown_extension(tmp_path):
    path = write_file(tmp_path / "d.txt", "hello\n")
    with pytest.raises(TailTuneError, match=r"d\.txt: unknown file type '\.txt'; use one of \.csv, \.tsv, \.jsonl"):
        read_dataset(path)


# ------------------------------------------------------------------------------------- strict CSV and TSV


def _rows(n: int, sep: str = ",") -> list[str]:
    return [f"text {i}{sep}{'even' if i % 2 == 0 else 'odd'}\n" for i in range(n)]


@pytest.mark.parametrize("sep", [",", "\t"])
def test_unclosed_quote_names_its_line(tmp_path, sep):
    # Read leniently, the quote swallows every row after it (and the class "odd" with them) without a word.
    rows = _rows(40, sep)
    rows[30] = f'"quoted at the start{sep}even\n'
    path = write_file(tmp_path / ("d.csv" if sep == "," else "d.tsv"), f"text{sep}label\n" + "".join(rows))
    with pytest.raises(TailTuneError) as err:
        read_dataset(path)
    assert str(err.value).startswith(f"{path} line 32: a field opened by a double quote in this row never closes")
    assert "double each double quote inside it" in str(err.value)


def test_unquoted_comma_in_every_row_is_refused(tmp_path):
    # Read leniently, the extra field turns the first one into the index: every text loses its first word.
    path = write_file(tmp_path / "d.csv", "text,label\nhello, world,pos\nbye, now,neg\nok,pos\n")
    with pytest.raises(TailTuneError) as err:
        read_dataset(path)
    assert str(err.value) == (
        f"{path}: data rows 1, 2 (lines 2, 3 of the file) have 3 fields where the header has 2; wrap every field "
        "holding a comma, a double quote or a line break in double quotes (doubling the quotes inside it), or fix "
        "the row"
    )


def test_tsv_field_count_names_a_tab(tmp_path):
    path = write_file(tmp_path / "d.tsv", "text\tlabel\na\tb\tc\nd\n")
    with pytest.raises(
        TailTuneError, match=r"have 1 or 3 fields where the header has 2; wrap every field holding a tab"
    ):
        read_dataset(path)


def test_text_after_closing_quote_is_refused(tmp_path):
    path = write_file(tmp_path / "d.csv", 'text,label\na,x\n"Wow" she said,y\n')
    with pytest.raises(TailTuneError, match=r"d\.csv line 3: a quoted field goes on after its closing double quote"):
        read_dataset(path)


def test_bare_quote_with_quoted_fields_elsewhere_is_refused(tmp_path):
    # The stray quote on line 2 opens a field that the quoted text on line 4 closes early; the file then parses
    # into rows of the right width, and only the bare quote left behind on line 5 gives it away.
    path = write_file(tmp_path / "d.csv", '"t1,l1\n",",l2\n"\nfoo",l3\n'.join(["text,label\n", ""]))
    with pytest.raises(TailTuneError, match=r"d\.csv line 5: a double quote inside an unquoted field, while the file "):
        read_dataset(path)
    path = write_file(tmp_path / "e.csv", 'text,label\n5" screen,x\n"a, b",y\n')
    with pytest.raises(TailTuneError, match=r"e\.csv line 2: a double quote inside an unquoted field"):
        read_dataset(path)


def test_bare_quotes_in_a_file_without_quoting_are_text(tmp_path):
    path = write_file(tmp_path / "d.tsv", 'text\tlabel\n5" screen\tx\nsay "hi"\ty\n')
    assert read_dataset(path).texts == ['5" screen', 'say "hi"']


def test_csv_keeps_texts_exactly(tmp_path):
    path = write_file(tmp_path / "d.csv", 'text,label\n  padded  ,x\nNA,y\n"a\r\nb",x\n"",y\n')
    with pytest.raises(TailTuneError, match=r"data row 4 \(line 6 of the file\) has an empty text"):
        read_dataset(path)
    ds = read_dataset(path, allow_empty_texts=True)
    assert ds.texts == ["  padded  ", "NA", "a\r\nb", ""]


def test_blank_lines_and_line_ends(tmp_path):
    path = write_file(tmp_path / "d.csv", "\ntext,label\r\n\n   \na,x\rb,y\r\n\nc,x")
    ds = read_dataset(path)
    assert ds.texts == ["a", "b", "c"]
    write_file(path, "text,label\n\na,x\n \nb\n")
    with pytest.raises(TailTuneError, match=r"data row 2 \(line 5 of the file\) has 1 field"):
        read_dataset(path)


def test_one_column_keeps_lines_of_spaces(tmp_path):
    # Texts to label, one per line: a line of spaces is a row to answer, not a blank to drop.
    path = write_file(tmp_path / "d.csv", "text\na\n   \n\nb\n")
    ds = read_dataset(path, require_labels=False, allow_empty_texts=True)
    assert ds.texts == ["a", "   ", "b"]


def test_header_names(tmp_path):
    path = write_file(tmp_path / "d.csv", "text,label,text\na,x,b\n")
    with pytest.raises(TailTuneError, match=r"d\.csv line 1: the header names column\(s\) 'text' more than once"):
        read_dataset(path)
    # An index column written without a name, and trailing empty columns, as spreadsheets and pandas write them.
    write_file(path, ",text,label,,\n0,a,x,,\n")
    ds = read_dataset(path)
    assert list(ds.columns) == ["Unnamed: 0", "text", "label", "Unnamed: 3", "Unnamed: 4"]
    assert ds.texts == ["a"] and ds.labels == ["x"]


def test_long_field(tmp_path):
    import csv

    text = "word " * 60_000  # over the csv module's default field limit of 128 KiB
    limit = csv.field_size_limit()
    save_dataset(TextDataset([text, "b"], ["x", "y"], "mem"), tmp_path / "d.csv")
    assert read_dataset(tmp_path / "d.csv").texts == [text, "b"]
    assert csv.field_size_limit() == limit


# ---------------------------------------------------------------------------------- one normalisation


def test_whole_number_labels_are_one_class_in_every_format(tmp_path):
    path = write_file(tmp_path / "d.csv", "text,label\na,1\nb,1.0\nc, 2.00 \nd,-3.0\ne,1e3\nf,2.50\ng,007\n")
    expected = ["1", "1", "2", "-3", "1e3", "2.50", "007"]
    assert read_dataset(path).labels == expected
    values = [1, 1.0, "1.0", " 2.00 ", -3.0, "1e3", "2.50", "007"]
    js = write_file(tmp_path / "d.jsonl", "".join(json.dumps({"text": "t", "label": v}) + "\n" for v in values))
    assert read_dataset(js).labels == ["1", *expected]
    values = [1, np.int64(1), 1.0, np.float32(2.0), "-3.0", True]
    assert dataset_from_values(["t"] * 6, values, source="fit()").labels == ["1", "1", "1", "2", "-3", "True"]
    assert LabelMap.from_labels(read_dataset(path).labels[:4]).labels == ["-3", "1", "2"]


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_missing_labels_and_texts_name_the_row_everywhere(tmp_path, missing):
    js = tmp_path / "d.jsonl"
    write_file(js, "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in [("a", "x"), ("b", missing)]))
    with pytest.raises(TailTuneError, match=r"d\.jsonl: data row 2 \(line 2 of the file\) has an empty label"):
        read_dataset(js)
    write_file(js, "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in [("a", "x"), (missing, "y")]))
    with pytest.raises(TailTuneError, match=r"data row 2 \(line 2 of the file\) has no text \(null, NaN or no value\) "
                                            r"in column 'text'"):  # fmt: skip
        read_dataset(js, allow_empty_texts=True)
    pq = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a", "b"], "label": ["x", missing]}).to_parquet(pq)
    with pytest.raises(TailTuneError, match=r"d\.parquet: data row 2 has an empty label"):
        read_dataset(pq)
    pd.DataFrame({"text": ["a", missing], "label": ["x", "y"]}).to_parquet(pq)
    with pytest.raises(TailTuneError, match=r"d\.parquet: data row 2 has no text"):
        read_dataset(pq)
    with pytest.raises(TailTuneError, match=r"^fit\(\): data row 2 has an empty label"):
        dataset_from_values(["a", "b"], ["x", missing], source="fit()")
    with pytest.raises(TailTuneError, match=r"^predict\(\): data row 1 has no text .* in column 'texts'"):
        dataset_from_values([missing, "b"], None, source="predict()", allow_empty_texts=True)


def test_non_string_texts_are_refused(tmp_path):
    js = write_file(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": 12, "label": "y"}\n')
    with pytest.raises(TailTuneError, match=r"data row 2 \(line 2 of the file\) has a non-text value \(int\) in column "
                                            r"'text'; expected text"):  # fmt: skip
        read_dataset(js)
    pq = tmp_path / "d.parquet"
    pd.DataFrame({"text": [1.5, 2.5], "label": ["x", "y"]}).to_parquet(pq)
    with pytest.raises(TailTuneError, match=r"data rows 1, 2 have a non-text value \(float\)"):
        read_dataset(pq)
    with pytest.raises(TailTuneError, match=r"data row 1 has a non-text value \(list\) in column 'texts'"):
        dataset_from_values([["a"], "b"], ["x", "y"], source="fit()")


def test_allow_empty_texts(tmp_path):
    path = write_file(tmp_path / "d.csv", "text,label\n,x\n  ,y\nc,x\n")
    with pytest.raises(TailTuneError, match=r"data rows 1, 2 \(lines 2, 3 of the file\) have an empty text"):
        read_dataset(path)
    assert read_dataset(path, allow_empty_texts=True).texts == ["", "  ", "c"]
    assert dataset_from_values(["", "b"], None, source="predict()", allow_empty_texts=True).texts == ["", "b"]


def test_dataset_from_values_checks_its_arguments():
    ds = dataset_from_values(np.array(["a", "b"]), np.array([3, 0]), source="fit()")
    assert ds.texts == ["a", "b"] and ds.labels == ["3", "0"] and ds.columns is None
    assert all(type(t) is str for t in ds.texts)
    assert dataset_from_values(["a"], None, source="predict()").labels is None
    with pytest.raises(TailTuneError, match=r"^fit\(\): 2 texts but 1 labels; pass one label per text$"):
        dataset_from_values(["a", "b"], ["x"], source="fit()")
    with pytest.raises(TailTuneError, match=r"^fit\(\): texts must be a one-dimensional sequence"):
        dataset_from_values("ab", ["x", "y"], source="fit()")
    with pytest.raises(TailTuneError, match=r"^fit\(\): labels must be a one-dimensional sequence"):
        dataset_from_values(["a", "b"], np.zeros((2, 1, 1)), source="fit()")
    # A 2-D array is a 0/1 indicator matrix (multi-label), its columns named "0" .. "K-1".
    assert dataset_from_values(["a", "b"], np.array([[0], [1]]), source="fit()").labels == [(), ("0",)]
    with pytest.raises(TailTuneError, match=r"^fit\(\): no texts given$"):
        dataset_from_values([], [], source="fit()")
    with pytest.raises(TailTuneError, match=r"data row 1 has an empty text"):
        dataset_from_values([" "], ["x"], source="fit()")


# ------------------------------------------------------------------------------------------------ columns


def test_columns_keep_the_source_as_read(tmp_path):
    path = write_file(tmp_path / "d.csv", "id,text,label,score\n7, a ,1.0,0.5\n8,b, x ,\n")
    ds = read_dataset(path)
    assert ds.labels == ["1", "x"]
    assert ds.columns == {"id": ["7", "8"], "text": [" a ", "b"], "label": ["1.0", " x "], "score": ["0.5", ""]}
    sub = ds.subset([1])
    assert sub.columns == {"id": ["8"], "text": ["b"], "label": [" x "], "score": [""]}
    js = write_file(tmp_path / "d.jsonl", '{"label": 1.0, "text": "a", "n": null}\n{"text": "b", "label": 2}\n')
    assert read_dataset(js).columns == {"label": [1.0, 2], "text": ["a", "b"], "n": [None, None]}
    assert TextDataset(["a"], None, "mem").columns is None
    with pytest.raises(ValueError, match="columns of another length"):
        TextDataset(["a"], None, "mem", {"x": [1, 2]})


def test_save_to_disk_columns_and_bad_classlabel_id(hf, tmp_path):
    _classlabel_ds(hf, ["a", "b"], [1, 0]).save_to_disk(str(tmp_path / "ok"))
    ds = read_dataset(str(tmp_path / "ok"))
    assert ds.columns == {"text": ["a", "b"], "label": [1, 0]}
    features = hf.Features({"text": hf.Value("string"), "label": hf.Value("int64")})
    bad = hf.Dataset.from_dict({"text": ["a", "b"], "label": [0, 5]}, features=features)
    bad = bad.cast_column("label", hf.ClassLabel(names=["neg", "pos"]))  # keeps the out-of-range id 5
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(TailTuneError, match=r"data row 2 has label id 5 in column 'label', which has only 2 class"):
        read_dataset(str(tmp_path / "bad"))


def test_save_to_disk_labels_normalise_as_files_do(hf, tmp_path):
    hf.Dataset.from_dict({"text": ["a", "b", "c"], "label": [1.0, 2.0, 1.5]}).save_to_disk(str(tmp_path / "f"))
    assert read_dataset(str(tmp_path / "f")).labels == ["1", "2", "1.5"]
    hf.Dataset.from_dict({"text": ["a", "b"], "label": ["1.0", " 1 "]}).save_to_disk(str(tmp_path / "s"))
    assert read_dataset(str(tmp_path / "s")).labels == ["1", "1"]
    hf.Dataset.from_dict({"text": ["a", None], "label": ["x", "y"]}).save_to_disk(str(tmp_path / "n"))
    with pytest.raises(TailTuneError, match=r"data row 2 has no text \(null, NaN or no value\) in column 'text'"):
        read_dataset(str(tmp_path / "n"))


def test_jsonl_text_with_unicode_line_separators_reads_whole(tmp_path):
    # U+2028, U+2029 and U+0085 may stand in a JSON string as they are; they end no JSON line.
    texts = ["match\u2028goal", "a\u2029b", "c\x85d"]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": "x"}, ensure_ascii=False) + "\r\n" for t in texts),
                    encoding="utf-8")  # fmt: skip
    assert read_dataset(path).texts == texts


def test_json_object_with_a_repeated_key_is_refused(tmp_path):
    path = write_file(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "a", "label": "x", "text": "b"}\n')
    with pytest.raises(TailTuneError, match=r"d\.jsonl line 2: an object names the key\(s\) 'text' more than once"):
        read_dataset(path)
    array = write_file(tmp_path / "d.json", '[{"text": "a", "label": "x", "label": "y"}]')
    with pytest.raises(TailTuneError, match=r"d\.json: not valid JSON \(an object names the key\(s\) 'label'"):
        read_dataset(array)


def test_parquet_keeps_a_named_index_as_a_column(tmp_path):
    frame = pd.DataFrame({"id": [7, 8], "text": ["a", "b"], "label": ["x", "y"]}).set_index("id")
    frame.to_parquet(tmp_path / "d.parquet")
    ds = read_dataset(tmp_path / "d.parquet")
    assert list(ds.columns) == ["id", "text", "label"] and ds.columns["id"] == [7, 8]
    assert ds.texts == ["a", "b"]


# ------------------------------------------------------------------------------- labels and texts as they show


def test_label_spellings_that_print_alike_are_one_class_with_a_warning(tmp_path, caplog):
    nfd = "cine\u0301"
    rows = ["ciné", nfd, nfd, "football", "football\u200b", "\ufefffootball", "money\u00ad", "money"]
    path = write_file(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{y}\n" for i, y in enumerate(rows)))
    with caplog.at_level("WARNING", logger="tailtune"):
        ds = read_dataset(path)
    assert ds.labels == ["ciné", "ciné", "ciné", "football", "football", "football", "money", "money"]
    assert LabelMap.from_labels(ds.labels).labels == ["ciné", "football", "money"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{path}: label 'ciné' is written 2 ways that print alike ('cine\\u0301' in 2 rows, 'ciné' in 1 row); read "
        "as one class 'ciné' (labels are compared in Unicode NFC, without invisible characters)",
        f"{path}: label 'football' is written 3 ways that print alike ('football' in 1 row, 'football\\u200b' in 1 "
        "row, '\\ufefffootball' in 1 row); read as one class 'football' (labels are compared in Unicode NFC, "
        "without invisible characters)",
        f"{path}: label 'money' is written 2 ways that print alike ('money\\u00ad' in 1 row, 'money' in 1 row); read "
        "as one class 'money' (labels are compared in Unicode NFC, without invisible characters)",
    ]


def test_labels_differing_only_in_case_width_or_spacing_stay_apart_with_a_warning(tmp_path, caplog):
    rows = ["grain", "Grain", "grain", "GRAIN", "crude", "\uff43\uff52\uff55\uff44\uff45", "ship", "money fx",
            '"money\tfx"', "money  fx", "money\u00a0fx"]  # fmt: skip
    path = write_file(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{y}\n" for i, y in enumerate(rows)))
    with caplog.at_level("WARNING", logger="tailtune"):
        ds = read_dataset(path)
    assert ds.labels == [*rows[:8], "money\tfx", *rows[9:]]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{path}: labels 'grain' on 2 texts, 'GRAIN' on 1 text, 'Grain' on 1 text differ only in letter case, "
        "character width or white space; read as 3 classes (if they are one, write them one way)",
        f"{path}: labels 'crude' on 1 text, '\uff43\uff52\uff55\uff44\uff45' on 1 text differ only in letter case, "
        "character width or white space; read as 2 classes (if they are one, write them one way)",
        f"{path}: labels 'money\\u0009fx' on 1 text, 'money  fx' on 1 text, 'money fx' on 1 text, 'money\\u00a0fx' on "
        "1 text differ only in letter case, character width or white space; read as 4 classes (if they are one, "
        "write them one way)",
    ]


def test_case_variants_inside_label_sets_are_warned_of(tmp_path, caplog):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "labels": ["Grain", "wheat"]}\n{"text": "b", "labels": ["grain"]}\n')
    with caplog.at_level("WARNING", logger="tailtune"):
        ds = read_dataset(path, label_column="labels")
    assert ds.labels == [("Grain", "wheat"), ("grain",)]
    assert "labels 'Grain' on 1 text, 'grain' on 1 text differ only in letter case" in caplog.text


def test_labels_that_are_lists_written_as_text_are_warned_of(tmp_path, caplog):
    """A column of lists saved with DataFrame.to_csv reads as one label per cell, with a warning naming a row; a
    few bracketed names among plain ones are no such column."""
    path = write_file(tmp_path / "d.csv", "text,label\na,\"['grain', 'wheat']\"\nb,['grain']\nc,[]\nd,ship\n")
    with caplog.at_level("WARNING", logger="tailtune"):
        ds = read_dataset(path)
    assert ds.labels == ["['grain', 'wheat']", "['grain']", "[]", "ship"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{path}: 3 labels in column 'label' are lists written as text (data row 1 (line 2 of the file) has "
        "'['grain', 'wheat']'); each is read as one label. For several labels a text, store lists (JSON lines, "
        "Parquet) or join the names with a separator and give it as label_separator (--label-separator)"
    ]
    caplog.clear()
    few = write_file(tmp_path / "few.csv", "text,label\na,[unknown]\nb,ship\nc,grain\n")
    with caplog.at_level("WARNING", logger="tailtune"):
        read_dataset(few)
    assert not caplog.records


def test_labels_in_one_form_are_read_without_a_warning(tmp_path, caplog):
    # Surrounding spaces and whole-number decimals were always one label: nothing to warn of.
    path = write_file(tmp_path / "d.csv", "text,label\na,ciné\nb, ciné \nc,1\nd,1.0\n")
    with caplog.at_level("WARNING", logger="tailtune"):
        assert read_dataset(path).labels == ["ciné", "ciné", "1", "1"]
    assert not caplog.records


def test_a_label_of_invisible_characters_is_an_empty_label(tmp_path):
    path = write_file(tmp_path / "d.csv", "text,label\na,x\nb,\u200b\u2060\n")
    with pytest.raises(TailTuneError, match=r"data row 2 \(line 3 of the file\) has an empty label"):
        read_dataset(path)


@pytest.mark.parametrize("blank", ["\u200b", "\u200b\u200c\u200d", "\ufeff \u2060", "\u00ad\t\u00a0", "\u3164"])
def test_a_text_of_invisible_characters_is_empty(tmp_path, blank):
    path = write_file(tmp_path / "d.jsonl", "".join(json.dumps({"text": t, "label": "x"}) + "\n" for t in ["a", blank]))
    with pytest.raises(TailTuneError, match=r"d\.jsonl: data row 2 \(line 2 of the file\) has an empty text; fill"):
        read_dataset(path)
    with pytest.raises(TailTuneError, match=r"fit\(\): data row 1 has an empty text"):
        dataset_from_values([blank, "a"], ["x", "y"], source="fit()")
    # A visible character among them is a text; prediction takes the empty ones too.
    assert dataset_from_values([blank + "a"], ["x"], source="fit()").texts == [blank + "a"]
    assert read_dataset(path, allow_empty_texts=True).texts == ["a", blank]


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("d.csv", "text;label\nhello;x\nbye;y\n", "splits on ';', not on commas, so the file would read as one "
         "column; save it with commas between the fields, or with tabs as a .tsv file"),
        # Excel quotes a field holding the list separator; read with commas, that quote fails first.
        ("d.csv", '"text";"label"\n"hello; world";x\n', "splits on ';', not on commas"),
        ("d.csv", 'text;label\n"hello, world";x\nbye;y\n', "splits on ';', not on commas"),
        ("d.csv", "text\tlabel\nhello\tx\n", "splits on tabs, not on commas, so the file would read as one column; "
         "rename the file to .tsv"),
        ("d.tsv", "text,label\nhello,x\n", "splits on commas, not on tabs, so the file would read as one column; "
         "rename the file to .csv"),
        ("d.tsv", "\ntext;label;id\nhello;x;1\n", "splits on ';', not on tabs, so the file would read as one "
         "column; save it with tabs between the fields, or with commas as a .csv file"),
    ],
)  # fmt: skip
def test_a_header_split_by_another_separator_is_refused_naming_it(tmp_path, name, content, says):
    path = write_file(tmp_path / name, content)
    with pytest.raises(TailTuneError) as err:
        read_dataset(path)
    line = 2 if content.startswith("\n") else 1
    assert str(err.value).startswith(f"{path} line {line}: the header ")
    assert says in str(err.value)


def test_a_one_column_file_is_read_when_its_header_holds_no_other_separator(tmp_path):
    # Texts to label, one per line, may hold semicolons and commas; only the header tells the separator.
    path = write_file(tmp_path / "d.csv", "text\nfirst; second\nthird\ta tab\n")
    assert read_dataset(path, require_labels=False).texts == ["first; second", "third\ta tab"]
    path = write_file(tmp_path / "d.tsv", "text\na, b; c\n")
    assert read_dataset(path, require_labels=False).texts == ["a, b; c"]


def test_labels_that_look_like_measurements_are_warned_of(tmp_path, caplog):
    """Numbers with a fraction, most distinct: a regression target; codes that repeat (ICD-9 250.01) are classes."""
    values = [f"{0.137 * i:.3f}" for i in range(12)]
    path = write_file(tmp_path / "m.csv", "text,label\n" + "".join(f"t{i},{v}\n" for i, v in enumerate(values)))
    codes = write_file(tmp_path / "c.csv", "text,label\n" + "".join(f"t{i},{['250.01', '401.9'][i % 2]}\n"
                                                                      for i in range(12)))  # fmt: skip
    with_placeholder = write_file(tmp_path / "p.csv", "text,label\n" + "".join(
        f"t{i},{'unknown' if i == 5 else v}\n" for i, v in enumerate(values)))  # fmt: skip
    prices = write_file(tmp_path / "w.csv", "text,label\n" + "".join(f"t{i},{100 + 7 * i}\n" for i in range(60)))
    digits = write_file(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{i}\n" for i in range(10)))
    with caplog.at_level("WARNING", logger="tailtune"):
        assert read_dataset(path).labels == ["0", *values[1:]]
        read_dataset(codes)
        read_dataset(with_placeholder)
        read_dataset(digits)  # ten classes of one text each: too few to call measurements
        read_dataset(prices)
    tail = ("(such as '0.137'): a classifier learns one class per value; if they are measurements, this is a "
            "regression task, not one tailtune trains")  # fmt: skip
    assert caplog.messages == [
        f"{path}: 12 of the 12 labels in column 'label' are numbers, 12 distinct {tail}",
        f"{tmp_path / 'p.csv'}: 11 of the 12 labels in column 'label' are numbers, 11 distinct {tail}",
        f"{prices}: 60 of the 60 labels in column 'label' are numbers, 60 distinct {tail.replace('0.137', '100')}",
    ]
