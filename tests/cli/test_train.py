"""``tailtune train``: --config files and their stage overrides, and the one-line errors of bad input, a diverging
run and an impossible --max-length; a model trained from integer labels."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from conftest import make_texts, run_cli, write_file


def test_yaml_config_with_stage_overrides(tiny_model, tiny_data, tmp_path, capsys):
    """--config supplies options and per-stage overrides; explicit CLI flags win over the file."""
    out = tmp_path / "run"
    config_file = tmp_path / "run.yaml"
    config_file.write_text(
        f"model: {tiny_model}\n"
        f"train: {tiny_data['train']}\n"
        f"output: {out}\n"
        "strategy: two-stage\n"
        "max_length: 16\n"
        "batch_size: 16\n"
        "weights: effective\n"
        "stages:\n"
        "  - {lr: 1e-3, loss: focal, trainable: head}\n"
        "  - {epochs: 0}\n",
        encoding="utf-8",
    )
    code, stdout, err = run_cli(capsys, "train", "--config", config_file, "--max-length", "24", "--weights", "none",
                             "inverse", "-q")  # fmt: skip
    assert code == 0, err
    assert stdout.strip() == f"run directory: {out}"  # no eval/test data: no metrics table
    written = json.loads((out / "config.json").read_text())
    assert (written["run"]["max_length"], written["run"]["batch_size"]) == (24, 16)
    first, second = written["run"]["stages"]
    assert (first["lr"], first["loss"], first["loss_params"], first["trainable"]) == (1e-3, "focal", {}, "head")
    assert (first["weights"], second["weights"]) == ("none", "inverse")
    assert (second["epochs"], second["lr"]) == (0, 1e-4)
    metrics = json.loads((out / "metrics.json").read_text())
    # No eval data: stage 1 ran on a held-out split, then again on all the data (the refit).
    assert metrics["validation_split"]["source"] == "carved"
    assert [s["name"] for s in metrics["stages"]] == ["stage1", "stage1"]


def test_yaml_unknown_key(tiny_model, tmp_path, capsys):
    """An unknown key in --config is a one-line error naming it."""
    config_file = tmp_path / "run.yaml"
    config_file.write_text(f"model: {tiny_model}\nlearning_rate: 1e-3\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "train", "--config", config_file)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("tailtune: error: --config: unknown key(s) learning_rate; valid: ")


@pytest.mark.parametrize(("line", "message"), [
    ("label_separator: 1", "label_separator must be a string, got 1"),
    ("text_column: [text]", "text_column must be a string, got ['text']"),
    ("train: [a.csv]", "train must be a string, got ['a.csv']"),
    ("strategy: [tfidf]", "strategy must be a string, got ['tfidf']"),
    ("output: 7", "output must be a string, got 7"),
    ("overwrite: 'yes'", "overwrite must be true or false, got 'yes'"),
])  # fmt: skip
def test_yaml_value_of_the_wrong_type(tmp_path, capsys, line, message):
    """A file, column, separator or strategy key holding a list or a number is a one-line error, not a traceback."""
    config_file = tmp_path / "run.yaml"
    config_file.write_text(f"{line}\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "train", "--config", config_file, "--strategy", "tfidf", "--train", "x.csv",
                           "--output", str(tmp_path / "run"))  # fmt: skip
    assert code == 2 and err == f"tailtune: error: --config: {message}\n"


# name -> (files to write, extra argv, fragment the error line must hold)
BAD_INPUTS = {
    "missing file": ({}, ["--train", "{tmp}/nope.csv"], "nope.csv: file not found"),
    "empty file": ({"e.csv": ""}, ["--train", "{tmp}/e.csv"], "e.csv: the file is empty (0 bytes)"),
    "header only": ({"h.csv": "text,label\n"}, ["--train", "{tmp}/h.csv"], "h.csv: has a header but no data rows"),
    "missing label column": (
        {"c.csv": "text,category\nmatch goal,sport\n"},
        ["--train", "{tmp}/c.csv"],
        "c.csv: no label column 'label' (columns found: 'text', 'category'); name it with --label-column",
    ),
    "empty label rows": (
        {"l.csv": "text,label\nmatch goal,sport\nbank shares,\nchip phone,tech\n"},
        ["--train", "{tmp}/l.csv"],
        "l.csv: data row 2 (line 3 of the file) has an empty label",
    ),
    "malformed jsonl": (
        {"j.jsonl": '{"text": "match goal", "label": "sport"}\n{"text": "bank", "label": \n'},
        ["--train", "{tmp}/j.jsonl"],
        "j.jsonl line 2: not valid JSON",
    ),
    "undecodable bytes": (
        {"u.csv": b"text,label\nmatch goal,sport\nbank \xff shares,money\n"},
        ["--train", "{tmp}/u.csv"],
        "u.csv: not valid UTF-8 (byte 0xff at offset 33, line 3)",
    ),
    "single class": (
        {"s.csv": "text,label\nmatch goal,sport\nteam win,sport\n"},
        ["--train", "{tmp}/s.csv"],
        "s.csv: only one class ('sport'); a classifier needs at least two",
    ),
    "unseen test label": (
        {"t.csv": "text,label\nmatch goal,sport\nrain cloud,weather\n"},
        ["--train", "{train}", "--test", "{tmp}/t.csv"],
        "t.csv: label(s) 'weather' never seen in training",
    ),
    "unknown strategy": ({}, ["--train", "{train}", "--strategy", "nope"], "unknown strategy 'nope'; valid: vanilla"),
    "unknown loss": ({}, ["--train", "{train}", "--loss", "hinge"], "stage 'stage1': unknown loss 'hinge'; valid:"),
    "unknown scope": ({}, ["--train", "{train}", "--trainable", "middle"], "unknown trainable scope 'middle'"),
    "model folder without model": (
        {"nomodel/readme.txt": "nothing here"},
        ["--train", "{train}", "--model", "{tmp}/nomodel"],
        "nomodel: no model here (expected config.json and model.safetensors)",
    ),
    "lr zero": ({}, ["--train", "{train}", "--lr", "0"], "learning rate must be > 0, got 0.0"),
    "beta one": ({}, ["--train", "{train}", "--beta", "1"], "beta must be in [0, 1), got 1.0"),
    "epochs negative": ({}, ["--train", "{train}", "--epochs", "-1"], "epochs must be >= 0, got -1"),
    "lr list too long": ({}, ["--train", "{train}", "--lr", "1", "2", "3"], "--lr: give one value for every stage"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2(case, tiny_model, tiny_data, tmp_path, capsys):
    """Bad input exits with 2 and one 'tailtune: error:' line naming the culprit, no traceback, no metrics."""
    files, extra, fragment = BAD_INPUTS[case]
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_file(tmp_path / name, content)
    out = tmp_path / "run"
    argv = ["train", "--model", tiny_model, "--output", out, "-q"]
    argv += [a.format(tmp=tmp_path, train=tiny_data["train"]) for a in extra]
    if "--model" in extra:
        argv = argv[:1] + argv[3:]  # the case's own --model replaces the default one
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tailtune: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err and stdout == ""
    assert not (out / "metrics.json").exists()


def test_missing_required_options(tiny_model, tiny_data, tmp_path, capsys):
    """train without --model, --train or --output names the missing option."""
    code, _, err = run_cli(capsys, "train", "--train", tiny_data["train"], "--output", tmp_path / "r")
    assert code == 2 and err.strip().startswith("tailtune: error: --model is required (a local model folder")
    assert err.strip().endswith("or --strategy tfidf, which takes none")
    code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--output", tmp_path / "r")
    assert code == 2 and err.startswith("tailtune: error: --train is required")
    code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"])
    assert code == 2 and err.startswith("tailtune: error: --output is required")


def test_diverged_run_is_an_error_and_saves_nothing(tiny_model, tiny_data, tmp_path, capsys):
    """A learning rate that blows the loss up ends in one line naming stage, step and --lr; no results."""
    run = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--test", tiny_data["test"],
        "--output", run, "--strategy", "vanilla", "--epochs", "2", "--lr", "1e30", "--batch-size", "8",
        "--max-length", "16", "-q",
    )  # fmt: skip
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("tailtune: error: stage 1 (") and "diverged" in line and "step" in line
    assert line.endswith("--lr") and "1e+30" in line
    assert not (run / "metrics.json").exists() and not (run / "model").exists()
    assert not list(tmp_path.rglob("history.jsonl")), "a failed run leaves no run files behind"


def test_max_length_above_the_model_limit_is_refused_up_front(tiny_model, tiny_data, tmp_path, capsys):
    """--max-length beyond the model's positions is one line naming both numbers, and leaves no folder."""
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--output", run,
                        "--max-length", "4096", "-q")  # fmt: skip
    assert code == 2
    assert err.strip() == ("tailtune: error: --max-length 4096 is above this model's limit of 64 tokens; "
                           "give at most 64")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_cli_model_keeps_integer_labels_and_honours_the_umask(tiny_model, tmp_path, capsys):
    """A model trained from a file of integer labels predicts integers when loaded; files follow the umask."""
    from tailtune.classifier import TailTuner

    texts, labels = make_texts({"sport": 12, "tech": 8, "money": 6}, seed=3)
    numbers = {"sport": 10, "tech": 20, "money": 30}
    path = tmp_path / "ints.csv"
    pd.DataFrame({"text": texts, "label": [numbers[y] for y in labels]}).to_csv(path, index=False)
    run = tmp_path / "run"
    previous = os.umask(0o002)  # group-writable: neither the common 0o022 nor the 0o600 of private files
    try:
        code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--train", path, "--output", run,
                            "--strategy", "vanilla", "--epochs", "1", "--max-length", "16", "-q")  # fmt: skip
    finally:
        os.umask(previous)
    assert code == 0, err
    predicted = TailTuner.load(run / "model").predict(texts[:5])
    assert predicted.dtype.kind == "i" and set(predicted.tolist()) <= {10, 20, 30}
    modes = {p.name: p.stat().st_mode & 0o777 for p in (run / "model").iterdir()}
    assert set(modes.values()) == {0o664}, modes


def test_saved_model_groups_classes_by_the_runs_training_counts(tiny_model, tiny_data, tmp_path, capsys):
    """Without a refit the model trained on what validation left, but its record holds the run's training counts,
    as config.json and train's tables do, so that evaluate groups the classes as train did."""
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--output", out,
                           "--epochs", "1", "--max-length", "16", "--no-refit", "-q")  # fmt: skip
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["validation_split"]["source"] == "carved"
    recorded = json.loads((out / "model" / "config.json").read_text())["tailtune_train_counts"]
    assert recorded == json.loads((out / "config.json").read_text())["train_counts"] == {"money": 4, "sport": 40,
                                                                                       "tech": 12}  # fmt: skip
