"""``tailtune predict``: the input's columns kept in the format --output names, standard output, and what it refuses
before loading the model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_texts, run_cli

from tailtune.cli import main

LABELS = ["money", "sport", "tech"]


@pytest.fixture(scope="module")
def predict_model(tiny_model, tiny_data, tmp_path_factory) -> Path:
    """A saved model for the predict tests, trained once for the module."""
    run = tmp_path_factory.mktemp("predict") / "run"
    code = main(["train", "--model", tiny_model, "--train", str(tiny_data["train"]), "--output", str(run),
                 "--strategy", "vanilla", "--epochs", "1", "--max-length", "16", "-q"])  # fmt: skip
    assert code == 0
    return run / "model"


def _predict_input(tmp_path: Path) -> Path:
    # An id column read as text ("007"), a column after the texts, an empty text and one holding a bare CR.
    path = tmp_path / "in.csv"
    path.write_bytes(
        b'id,text,note\r\n007,match goal team win,a\r\n8,,b\r\n9,"bank shares\rprofit market",c\r\n10,chip phone,d\r\n'
    )
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_predict_keeps_the_input_columns_in_the_format_named(predict_model, tmp_path, capsys, caplog, suffix):
    """predict writes every input column as read, then predicted, score and (asked) one prob_<label> per class,
    in the format --output names; an empty text is predicted with a warning instead of failing the run."""
    from tailtune.classifier import TailTuner
    from tailtune.data.readers import read_dataset

    source = _predict_input(tmp_path)
    out = tmp_path / f"p{suffix}"
    code, stdout, err = run_cli(capsys, "predict", "--model", predict_model, "--input", source, "--output", out,
                             "--probabilities")  # fmt: skip
    assert code == 0, err
    assert stdout.strip() == f"4 predictions written to {out}"
    assert "1 empty text(s)" in caplog.text
    back = read_dataset(out, require_labels=False, allow_empty_texts=True)
    columns = back.columns
    probs = ["prob_money", "prob_sport", "prob_tech"]
    assert list(columns) == ["id", "text", "note", "predicted", "score", *probs]
    assert [str(v) for v in columns["id"]] == ["007", "8", "9", "10"]
    assert columns["text"] == ["match goal team win", "", "bank shares\rprofit market", "chip phone"]
    assert columns["note"] == ["a", "b", "c", "d"]
    expected = TailTuner.load(predict_model).predict_proba(columns["text"])
    table = np.array([[float(v) for v in columns[name]] for name in probs]).T
    assert table == pytest.approx(expected, abs=1e-6)
    assert [float(v) for v in columns["score"]] == pytest.approx(expected.max(axis=1), abs=1e-6)
    assert [str(v) for v in columns["predicted"]] == [LABELS[i] for i in expected.argmax(axis=1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.csv", out.name])  # no temporary file left


def test_predict_to_standard_output(predict_model, tmp_path, capsys, monkeypatch):
    """--output - writes CSV to standard output (the count goes to stderr) and no file named '-'."""
    monkeypatch.chdir(tmp_path)
    source = _predict_input(tmp_path)
    code, stdout, err = run_cli(capsys, "predict", "--model", predict_model, "--input", source, "--output", "-")
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(stdout), dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["id", "text", "note", "predicted", "score"]
    assert frame["id"].tolist() == ["007", "8", "9", "10"]
    assert frame["text"].tolist()[2] == "bank shares\rprofit market"
    assert "4 predictions written to standard output" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_predict_writes_a_label_column_as_read_without_checking_it(predict_model, tmp_path, capsys, caplog):
    """Labels in the input are not predict's business: a column of them that training would refuse (joined names
    of another separator, an empty cell, case variants) is written back as read, with no error and no warning."""
    source = tmp_path / "in.csv"
    source.write_text("text,label\nmatch goal,sport|money\nbank shares,\nchip phone,Tech\nmatch team,tech\n")
    out = tmp_path / "p.csv"
    code, _, err = run_cli(capsys, "predict", "--model", predict_model, "--input", source, "--output", out,
                           "--label-separator", ";")  # fmt: skip
    assert code == 0, err
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert frame["label"].tolist() == ["sport|money", "", "Tech", "tech"]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_predict_refuses_what_it_cannot_write_before_loading_the_model(predict_model, tmp_path, capsys):
    """An unknown --output extension is refused before the model loads (a model that is not there is not even
    looked at); an input column named like an output column is refused, naming it, and nothing is written."""
    source = _predict_input(tmp_path)
    code, _, err = run_cli(capsys, "predict", "--model", tmp_path / "no-model", "--input", source,
                        "--output", tmp_path / "p.txt")  # fmt: skip
    assert code == 2
    assert err.strip() == (f"tailtune: error: {tmp_path / 'p.txt'}: cannot write '.txt' files; use one of .csv, "
                           ".tsv, .jsonl, .json, .parquet")  # fmt: skip

    clash = tmp_path / "clash.csv"
    clash.write_text("text,score,prob_tech\nmatch goal,1,2\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "predict", "--model", predict_model, "--input", clash, "--output",
                           tmp_path / "p.csv")  # fmt: skip
    assert code == 2 and "already has column(s) 'score', which predict writes" in err
    code, _, err = run_cli(capsys, "predict", "--model", predict_model, "--input", clash, "--output",
                        tmp_path / "p.csv", "--probabilities")  # fmt: skip
    assert code == 2 and "already has column(s) 'score', 'prob_tech', which predict writes" in err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.txt").exists()

    # The input file as --output: refused before anything is read, the input left as it was.
    before = source.read_bytes()
    code, _, err = run_cli(capsys, "predict", "--model", predict_model, "--input", source, "--output", source)
    assert code == 2 and err.strip() == (f"tailtune: error: --output {source} is the --input file; write the "
                                         "predictions to another file (predict never replaces its input)")  # fmt: skip
    assert source.read_bytes() == before


def test_predict_counts_texts_of_invisible_characters_as_empty(predict_model, tmp_path, capsys, caplog):
    """A text of zero-width characters, BOMs, soft hyphens and spaces shows nothing: predict counts it among the
    empty texts, and -q keeps the warning."""
    source = tmp_path / "in.jsonl"
    texts = ["match goal team", "", "\u200b\u200b", "\ufeff \u2060", "\u00ad", "bank shares \u200b"]
    source.write_text("".join(f'{{"text": "{t}"}}\n' for t in texts), encoding="utf-8")
    code, stdout, err = run_cli(capsys, "predict", "--model", predict_model, "--input", source, "--output",
                                tmp_path / "p.csv", "-q")  # fmt: skip
    assert code == 0, err
    assert stdout.strip() == f"6 predictions written to {tmp_path / 'p.csv'}"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{source}: 4 empty text(s) (no visible character); predicted like the others, from no words"]


def test_predict_counts_texts_the_model_reads_as_next_to_nothing(predict_model, tmp_path, capsys, caplog):
    """Words the tiny model's vocabulary lacks are its unknown token: such texts all look alike to it, as an empty one
    does. predict counts empty texts on their own."""
    from tailtune.classifier import TailTuner

    texts = ["match goal team", "zzz qqq", "", "goal zzz qqq xxx", "bank shares"]
    assert TailTuner.load(str(predict_model)).unread(texts).tolist() == [False, True, True, True, False]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    code, _, err = run_cli(capsys, "predict", "--model", predict_model, "--input", source, "--output",
                           tmp_path / "p.csv", "-q")  # fmt: skip
    assert code == 0, err
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings[1] == (f"{source}: the model reads 2 of 5 text(s) as next to nothing (no word it knows, or a "
                           "script its vocabulary does not cover): they get much the same prediction, whatever they "
                           "say")  # fmt: skip


def test_a_tfidf_model_reads_texts_without_its_terms_as_nothing():
    from tailtune.classifier import TailTuner

    texts, labels = make_texts({"sport": 10, "tech": 10}, seed=1)
    tuner = TailTuner(strategy="tfidf", show_progress=False).fit(texts, labels)
    assert tuner.unread(["goal team", "经济市场", "hello there"]).tolist() == [False, True, True]
    assert tuner.unread([]).tolist() == [] == tuner.classic_.unread([]).tolist()
    sets = [[label] for label in labels[1:]] + [["sport", "tech"]]
    label_sets = TailTuner(strategy="tfidf", show_progress=False).fit(texts, sets)
    assert label_sets.unread(["goal team", "经济市场"]).tolist() == [False, True]


def _topic_csv(path: Path, seed: int, spell) -> Path:
    """Topic texts labelled 'ciné', 'football' and 'money', each label written as ``spell(label, row)`` says."""
    texts, topics = make_texts({"sport": 12, "tech": 12, "money": 12}, seed=seed)
    names = {"sport": "ciné", "tech": "football", "money": "money"}
    labels = [spell(names[topic], i) for i, topic in enumerate(topics)]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def test_labels_that_print_alike_are_one_class_in_train_and_evaluate(tmp_path, capsys, caplog):
    """'ciné' written half NFC, half NFD, and 'football' half with a zero-width space, train three classes with a
    warning naming both spellings that -q keeps; a test file written all in NFD is scored against the model's
    labels."""
    import unicodedata

    def mixed(label: str, row: int) -> str:
        if row % 2:
            return unicodedata.normalize("NFD", label) if label == "ciné" else label + "\u200b"
        return label

    train = _topic_csv(tmp_path / "train.csv", 1, mixed)
    code, _, err = run_cli(capsys, "train", "--strategy", "tfidf", "--train", train, "--output", tmp_path / "run",
                           "-q")  # fmt: skip
    assert code == 0, err
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("label 'ciné' is written 2 ways that print alike" in w and "'cine\\u0301' in 6 rows" in w
               for w in warnings), warnings  # fmt: skip
    assert any("label 'football' is written 2 ways" in w and "'football\\u200b' in 6 rows" in w for w in warnings)

    test = _topic_csv(tmp_path / "test.csv", 2, lambda label, _: unicodedata.normalize("NFD", label) + "\ufeff")
    out = tmp_path / "metrics.json"
    code, stdout, err = run_cli(capsys, "evaluate", "--model", tmp_path / "run" / "model", "--data", test,
                                "--output", out)  # fmt: skip
    assert code == 0, err
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert list(metrics["per_class"]) == ["ciné", "football", "money"]
    assert [c["support"] for c in metrics["per_class"].values()] == [12, 12, 12]
    assert [c["train_count"] for c in metrics["per_class"].values()] == [12, 12, 12]
