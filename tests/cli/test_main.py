"""Tests of the tailtune command line, in-process through cli.main and once as a subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_texts

from tailtune.cli import main
from tailtune.cli.common import in_flag_terms
from tailtune.data import TextDataset
from tailtune.errors import TailTuneError
from tailtune.strategies import STRATEGIES, describe_strategies

LABELS = ["money", "sport", "tech"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_evaluate_predict(tiny_model, tiny_data, tmp_path, capsys):
    """train writes a complete run; evaluate scores RUN/model alike; predict adds predicted and score to the input."""
    run = tmp_path / "run"
    code, out, err = _run(
        capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--test", tiny_data["test"],
        "--output", run, "--strategy", "two-stage", "--epochs", "1", "--lr", "1e-3", "1e-4", "--batch-size", "8",
        "--max-length", "32", "-q",
    )  # fmt: skip
    assert code == 0, err
    assert "tailtune: error" not in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert out.splitlines()[0].startswith(f"test: macro-F1 {metrics['macro_f1']:.4f}  micro-F1 ")
    assert out.rstrip().endswith(f"run directory: {run}")
    assert [line.split()[0] for line in out.splitlines()[2:5]] == ["sport", "tech", "money"]  # by train count
    config = json.loads((run / "config.json").read_text())
    assert [(s["lr"], s["epochs"]) for s in config["run"]["stages"]] == [(1e-3, 1), (1e-4, 1)]
    assert (config["run"]["batch_size"], config["run"]["max_length"]) == (8, 32)

    scores = tmp_path / "scores.json"
    code, out, err = _run(capsys, "evaluate", "--model", run / "model", "--data", tiny_data["test"], "--output", scores)
    assert code == 0, err
    evaluated = json.loads(scores.read_text())
    assert evaluated["split"] == str(tiny_data["test"])
    for key in ("accuracy", "macro_f1", "micro_f1", "balanced_accuracy", "tail_f1"):
        assert evaluated[key] == pytest.approx(metrics[key]), key
    assert {name: row["train_count"] for name, row in evaluated["per_class"].items()} == {
        "money": 4, "sport": 40, "tech": 12,
    }  # fmt: skip
    assert out.splitlines()[0].startswith(f"{tiny_data['test']}: macro-F1 {metrics['macro_f1']:.4f}")
    assert out.rstrip().endswith(f"metrics written to {scores}")

    preds = tmp_path / "out" / "preds.csv"
    code, out, err = _run(capsys, "predict", "--model", run / "model", "--input", tiny_data["test"], "--output", preds)
    assert code == 0, err
    assert out.strip() == f"30 predictions written to {preds}"
    frame = pd.read_csv(preds)
    assert list(frame.columns) == ["text", "label", "predicted", "score"]
    reference = pd.read_csv(run / "predictions.csv")
    assert frame["text"].tolist() == reference["text"].tolist()
    assert frame["predicted"].tolist() == reference["predicted"].tolist()
    assert frame["score"].tolist() == pytest.approx(reference["score"].tolist(), abs=1e-5)


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
    code, stdout, err = _run(capsys, "train", "--config", config_file, "--max-length", "24", "--weights", "none",
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
    code, _, err = _run(capsys, "train", "--config", config_file)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("tailtune: error: --config: unknown key(s) learning_rate; valid: ")


def test_make_imbalanced(tmp_path, capsys):
    """make-imbalanced writes a long-tailed train file, a balanced test file and counts.json."""
    texts, labels = make_texts({"sport": 20, "tech": 20, "money": 20}, seed=4)
    source = tmp_path / "all.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(source, index=False)
    out = tmp_path / "lt"
    code, stdout, err = _run(
        capsys, "make-imbalanced", "--input", source, "--output", out, "--ratio", "4", "--max-per-class", "8",
        "--test-per-class", "3", "--order", "sport", "tech", "money",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "test.csv", "train.csv"]
    counts = json.loads((out / "counts.json").read_text())
    assert counts["train"] == {"sport": 8, "tech": 4, "money": 2}
    assert counts["test"] == {"sport": 3, "tech": 3, "money": 3}
    assert counts["order"] == ["sport", "tech", "money"] and counts["ratio"] == 4.0
    train, test = pd.read_csv(out / "train.csv"), pd.read_csv(out / "test.csv")
    assert train["label"].value_counts().to_dict() == {"sport": 8, "tech": 4, "money": 2}
    assert test["label"].value_counts().to_dict() == {"sport": 3, "tech": 3, "money": 3}
    assert not set(train["text"]) & set(test["text"])
    assert set(train["text"]) | set(test["text"]) <= set(texts)
    assert [line.split() for line in stdout.splitlines()[:3]] == [["sport", "8"], ["tech", "4"], ["money", "2"]]


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


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
        _write(tmp_path / name, content)
    out = tmp_path / "run"
    argv = ["train", "--model", tiny_model, "--output", out, "-q"]
    argv += [a.format(tmp=tmp_path, train=tiny_data["train"]) for a in extra]
    if "--model" in extra:
        argv = argv[:1] + argv[3:]  # the case's own --model replaces the default one
    code, stdout, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tailtune: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err and stdout == ""
    assert not (out / "metrics.json").exists()


def test_missing_required_options(tiny_model, tiny_data, tmp_path, capsys):
    """train without --model, --train or --output names the missing option."""
    code, _, err = _run(capsys, "train", "--train", tiny_data["train"], "--output", tmp_path / "r")
    assert code == 2 and err.strip().startswith("tailtune: error: --model is required (a local model folder")
    code, _, err = _run(capsys, "train", "--model", tiny_model, "--output", tmp_path / "r")
    assert code == 2 and err.startswith("tailtune: error: --train is required")
    code, _, err = _run(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"])
    assert code == 2 and err.startswith("tailtune: error: --output is required")


def test_evaluate_and_predict_errors(tmp_path, tiny_data, capsys):
    """evaluate and predict report a missing model folder or input file in one line."""
    code, _, err = _run(capsys, "evaluate", "--model", tmp_path / "gone", "--data", tiny_data["test"])
    assert (code, err.strip()) == (2, f"tailtune: error: {tmp_path / 'gone'}: model folder not found")
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, "predict", "--model", tmp_path / "empty", "--input", "x.csv", "--output", "p.csv")
    assert code == 2 and err.strip().startswith(f"tailtune: error: {tmp_path / 'empty'}: no model here")
    assert not Path("p.csv").exists()


def test_strategies_command(capsys):
    """tailtune strategies prints the strategy listing."""
    code, out, _ = _run(capsys, "strategies")
    assert code == 0
    assert out == describe_strategies() + "\n"


def test_python_m_tailtune_subprocess(tmp_path):
    """python -m tailtune: --help lists the commands, strategies lists every strategy, errors are one line."""
    env_run = {"capture_output": True, "text": True, "timeout": 120, "cwd": tmp_path}
    help_run = subprocess.run([sys.executable, "-m", "tailtune", "--help"], **env_run)
    assert help_run.returncode == 0, help_run.stderr
    assert help_run.stdout.startswith("usage: tailtune")
    for command in ("train", "evaluate", "predict", "strategies", "demo", "make-imbalanced", "compare", "report"):
        assert command in help_run.stdout
    listing = subprocess.run([sys.executable, "-m", "tailtune", "strategies"], **env_run)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.strip() == describe_strategies()
    headers = [line.split(":")[0] for line in listing.stdout.splitlines() if not line.startswith(" ")]
    assert headers == list(STRATEGIES)
    failing = subprocess.run(
        [sys.executable, "-m", "tailtune", "train", "--model", "m", "--train", "missing.csv", "--output", "out"],
        **env_run,
    )
    assert failing.returncode == 2
    assert failing.stderr.splitlines() == ["tailtune: error: missing.csv: file not found; check the path"]
    assert not (tmp_path / "out").exists()


def test_help_does_not_import_the_heavy_libraries():
    """Every command's --help answers without importing torch, transformers or pandas."""
    code = (
        "import sys\n"
        "from tailtune.cli import build_parser\n"
        "for argv in ([], *([c] for c in sys.argv[1:])):\n"
        "    try:\n"
        "        build_parser().parse_args([*argv, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))\n"
    )
    commands = ["train", "evaluate", "predict", "strategies", "demo", "make-imbalanced", "compare", "report"]
    result = subprocess.run([sys.executable, "-c", code, *commands], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_options_of_settings_follow_the_config():
    """An option of a run setting or stage shortcut has the config's number type and valid values, and the default
    its help names is the config's."""
    import argparse

    from tailtune.cli import build_parser
    from tailtune.cli.options import setting_field
    from tailtune.config import CHOICES, number_type
    from tailtune.strategies import SETTINGS

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    checked = set()
    for command in ("train", "tune"):
        for action in commands[command]._actions:
            if action.dest not in SETTINGS or action.nargs == 0:  # --no-refit and the like store a boolean
                continue
            field = setting_field(action.dest)
            assert action.type is number_type(field), action.dest
            assert action.choices == (CHOICES.get(field.name) if action.nargs is None else None), action.dest
            if "default" in action.help and field.default not in (None, "none") and isinstance(field.default, str):
                assert field.default in action.help, action.dest
            elif "default" in action.help and isinstance(field.default, (int, float)):
                assert f"{field.default:g}" in action.help, action.dest
            checked.add(action.dest)
    assert {"head", "seed", "mixed_precision", "pooling", "calibrate", "patience", "lr", "loss"} <= checked


LIGHT_SCRIPT = """
import sys
from tailtune.cli import main
runs, experiment = sys.argv[1:]
for argv in (["report", runs], ["report", runs + "/exp-10/vanilla/seed-0"], ["compare", "--config", experiment,
             "--dry-run"]):
    assert main([*argv, "-q"]) == 0, argv
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""


def test_reading_commands_do_not_import_torch_or_transformers(tmp_path):
    """report on finished runs and compare --dry-run on an experiment whose runs are done read files only: neither
    imports torch or transformers."""
    from conftest import write_texts_csv
    from run_factory import MODEL, RUN_SETTINGS, write_run

    out = tmp_path / "out"
    for seed in (0, 1):
        write_run(out / "exp-10" / "vanilla" / f"seed-{seed}", strategy="vanilla", seed=seed, variant="exp-10",
                  ratio=10)  # fmt: skip
    data = write_texts_csv(tmp_path / "data.csv", {"sport": 4, "tech": 4})
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(json.dumps({
        "output": str(out), "model": MODEL, "seeds": [0, 1], "run": RUN_SETTINGS, "strategies": ["vanilla"],
        "data": {"variants": [{"name": "exp-10", "train": str(data), "test": str(data)}]},
    }), encoding="utf-8")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", LIGHT_SCRIPT, str(out), str(experiment)], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 runs (2 done, 0 to do)" in result.stdout
    assert (out / "report.html").is_file()
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("message", "setting", "expected"),
    [
        ("beta must be in [0, 1), got 1.0", "beta", "--beta must be in [0, 1), got 1.0"),
        ("x: name it with label_column", "label_column", "x: name it with --label-column"),
        ("stage 2: lr must be > 0", "lr", "stage 2: lr must be > 0"),
        ("lr must be > 0", None, "lr must be > 0"),
    ],
)
def test_errors_speak_of_flags(message, setting, expected):
    """A setting named first or last in a library message becomes its flag; elsewhere it stays a word."""
    assert in_flag_terms(TailTuneError(message, setting=setting)) == expected


def test_diverged_run_is_an_error_and_saves_nothing(tiny_model, tiny_data, tmp_path, capsys):
    """A learning rate that blows the loss up ends in one line naming stage, step and --lr; no results."""
    run = tmp_path / "run"
    code, out, err = _run(
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
    code, _, err = _run(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--output", run,
                        "--max-length", "4096", "-q")  # fmt: skip
    assert code == 2
    assert err.strip() == ("tailtune: error: --max-length 4096 is above this model's limit of 64 tokens; "
                           "give at most 64")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_outputs_that_cannot_be_written_are_one_line(tiny_model, tiny_data, tmp_path, capsys):
    """--output naming a file (train) or a folder (predict) ends in one line and exit 2, never a traceback."""
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    code, _, err = _run(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--output", taken,
                        "--epochs", "1", "-q")  # fmt: skip
    assert code == 2 and err.strip() == f"tailtune: error: {taken}: exists and is not a folder; choose another --output"
    assert taken.read_text() == "keep me"

    folder = tmp_path / "folder"
    folder.mkdir()
    model = _trained(tiny_model, tiny_data, tmp_path, capsys)
    code, _, err = _run(capsys, "predict", "--model", model, "--input", tiny_data["test"], "--output", folder)
    assert code == 2 and err.strip() == f"tailtune: error: {folder}: is a folder; name a file to write"


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
        code, _, err = _run(capsys, "train", "--model", tiny_model, "--train", path, "--output", run,
                            "--strategy", "vanilla", "--epochs", "1", "--max-length", "16", "-q")  # fmt: skip
    finally:
        os.umask(previous)
    assert code == 0, err
    predicted = TailTuner.load(run / "model").predict(texts[:5])
    assert predicted.dtype.kind == "i" and set(predicted.tolist()) <= {10, 20, 30}
    modes = {p.name: p.stat().st_mode & 0o777 for p in (run / "model").iterdir()}
    assert set(modes.values()) == {0o664}, modes


def _trained(tiny_model, tiny_data, tmp_path, capsys) -> Path:
    run = tmp_path / "small-run"
    code, _, err = _run(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--output", run,
                        "--strategy", "vanilla", "--epochs", "1", "--max-length", "16", "-q")  # fmt: skip
    assert code == 0, err
    return run / "model"


def test_every_data_command_reads_builtin_names(tiny_model, tiny_data, tmp_path, capsys, monkeypatch):
    """evaluate, predict and make-imbalanced accept the builtin: names that train accepts."""
    import tailtune.builtin as builtin

    texts, labels = make_texts({"sport": 6, "tech": 6, "money": 6}, seed=9)
    monkeypatch.setattr(builtin, "bbc_news", lambda: TextDataset(texts, labels, "stand-in bbc-news"))
    out = tmp_path / "made"
    code, _, err = _run(capsys, "make-imbalanced", "--input", "builtin:bbc-news", "--output", out, "--ratio", "2")
    assert code == 0, err
    assert (out / "train.parquet").is_file()
    model = _trained(tiny_model, tiny_data, tmp_path, capsys)
    code, _, err = _run(capsys, "predict", "--model", model, "--input", "builtin:bbc-news", "--output",
                        tmp_path / "p.csv")  # fmt: skip
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "p.csv")) == 18
    code, out_text, err = _run(capsys, "evaluate", "--model", model, "--data", "builtin:bbc-news")
    assert code == 0, err
    assert out_text.startswith("stand-in bbc-news: macro-F1 ")
    code, _, err = _run(capsys, "predict", "--model", model, "--input", "builtin:nope", "--output",
                        tmp_path / "q.csv")  # fmt: skip
    assert code == 2 and "unknown built-in data 'builtin:nope'" in err


def test_bf16_training_and_prediction_on_cpu(tmp_path, tiny_model, tiny_data):
    """--mixed-precision bf16 trains (autocast, fp32 weights) and predicts on a CPU; run in its own process,
    since accelerate keeps one precision per process."""
    run = tmp_path / "run"
    train = [sys.executable, "-m", "tailtune", "train", "--model", tiny_model, "--train", str(tiny_data["train"]),
             "--test", str(tiny_data["test"]), "--output", str(run), "--strategy", "vanilla", "--epochs", "1",
             "--max-length", "16", "--mixed-precision", "bf16", "-q"]  # fmt: skip
    result = subprocess.run(train, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["accelerate"]["mixed_precision"] == "bf16"
    assert 0 <= json.loads((run / "metrics.json").read_text())["macro_f1"] <= 1
    import torch
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(run / "model" / "model.safetensors").values()} == {torch.float32}
    predict = [sys.executable, "-m", "tailtune", "predict", "--model", str(run / "model"), "--input",
               str(tiny_data["test"]), "--output", str(tmp_path / "p.csv"), "--mixed-precision", "bf16"]  # fmt: skip
    result = subprocess.run(predict, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "p.csv")) == 30


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
    from tailtune.data import read_dataset

    source = _predict_input(tmp_path)
    out = tmp_path / f"p{suffix}"
    code, stdout, err = _run(capsys, "predict", "--model", predict_model, "--input", source, "--output", out,
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
    code, stdout, err = _run(capsys, "predict", "--model", predict_model, "--input", source, "--output", "-")
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(stdout), dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["id", "text", "note", "predicted", "score"]
    assert frame["id"].tolist() == ["007", "8", "9", "10"]
    assert frame["text"].tolist()[2] == "bank shares\rprofit market"
    assert "4 predictions written to standard output" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_predict_refuses_what_it_cannot_write_before_loading_the_model(predict_model, tmp_path, capsys):
    """An unknown --output extension is refused before the model loads (a model that is not there is not even
    looked at); an input column named like an output column is refused, naming it, and nothing is written."""
    source = _predict_input(tmp_path)
    code, _, err = _run(capsys, "predict", "--model", tmp_path / "no-model", "--input", source,
                        "--output", tmp_path / "p.txt")  # fmt: skip
    assert code == 2
    assert err.strip() == (f"tailtune: error: {tmp_path / 'p.txt'}: cannot write '.txt' files; use one of .csv, "
                           ".tsv, .jsonl, .json, .parquet")  # fmt: skip

    clash = tmp_path / "clash.csv"
    clash.write_text("text,score,prob_tech\nmatch goal,1,2\n", encoding="utf-8")
    code, _, err = _run(capsys, "predict", "--model", predict_model, "--input", clash, "--output", tmp_path / "p.csv")
    assert code == 2 and "already has column(s) 'score', which predict writes" in err
    code, _, err = _run(capsys, "predict", "--model", predict_model, "--input", clash, "--output",
                        tmp_path / "p.csv", "--probabilities")  # fmt: skip
    assert code == 2 and "already has column(s) 'score', 'prob_tech', which predict writes" in err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.txt").exists()


def test_make_imbalanced_replaces_an_earlier_split_whole(tmp_path, capsys):
    """A split made again into the same folder leaves no file of the earlier one: no stale test file whose rows
    the new training file holds. A folder holding anything else is refused and left as it was."""
    texts, labels = make_texts({"sport": 20, "tech": 20, "money": 20}, seed=4)
    source = tmp_path / "all.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(source, index=False)
    out = tmp_path / "lt"
    code, _, err = _run(capsys, "make-imbalanced", "--input", source, "--output", out, "--ratio", "2",
                        "--test-per-class", "3")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "test.csv", "train.csv"]
    code, stdout, err = _run(capsys, "make-imbalanced", "--input", source, "--output", out, "--ratio", "2")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "train.csv"]
    assert "test.csv" not in stdout
    train = set(pd.read_csv(out / "train.csv")["text"])
    for test_file in out.glob("test.*"):
        assert not train & set(pd.read_csv(test_file)["text"])
    code, _, err = _run(capsys, "make-imbalanced", "--input", source, "--output", out, "--ratio", "2",
                        "--format", ".jsonl")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "train.jsonl"]

    code, _, err = _run(capsys, "make-imbalanced", "--input", source, "--output", tmp_path, "--ratio", "2")
    assert code == 2
    assert err.strip() == (f"tailtune: error: {tmp_path}: holds files that are not part of an imbalanced split "
                           "('all.csv', 'lt'); the split replaces the whole folder, so write it to a new or empty "
                           "one")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.csv", "lt"]


QUIET_SCRIPT = """
import sys
from tailtune.cli import main
model, train, test, out = sys.argv[1:]
commands = [
    ["train", "--model", model, "--train", train, "--test", test, "--output", out + "/run", "--strategy", "two-stage",
     "--epochs", "1", "--max-length", "16"],
    ["evaluate", "--model", out + "/run/model", "--data", test],
    ["predict", "--model", out + "/run/model", "--input", test, "--output", out + "/p.jsonl"],
    ["make-imbalanced", "--input", train, "--output", out + "/made", "--ratio", "2"],
]
for argv in commands:
    assert main([*argv, "-q"]) == 0, argv
"""


def test_quiet_commands_print_only_their_results(tiny_model, tiny_data, tmp_path):
    """-q: no progress bar, no transformers or huggingface_hub report, no INFO log on stderr; the results
    (tables, the one-line summaries) still print on stdout."""
    result = subprocess.run(
        [sys.executable, "-c", QUIET_SCRIPT, tiny_model, str(tiny_data["train"]), str(tiny_data["test"]),
         str(tmp_path)], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for noise in ("it/s", "s/it", "%|", "LOAD REPORT", "Loading weights", "Writing model shards", " INFO "):
        assert noise not in result.stderr, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert f"run directory: {tmp_path / 'run'}" in result.stdout
    assert f"30 predictions written to {tmp_path / 'p.jsonl'}" in result.stdout
    assert result.stdout.count("macro-F1") == 2  # train's and evaluate's tables
    assert "written: " in result.stdout  # make-imbalanced's files


@pytest.mark.parametrize(
    "argv",
    [
        ["train"], ["tune", "--train", "t.csv", "--model", "m", "--output", "o"], ["evaluate", "--model", "m",
        "--data", "d.csv"], ["predict", "--model", "m", "--input", "i.csv", "--output", "o.csv"], ["demo"],
        ["make-imbalanced", "--input", "i.csv", "--output", "o"], ["compare", "--config", "c.yaml"], ["report", "r"],
    ],
)  # fmt: skip
def test_every_command_that_prints_progress_takes_quiet(argv):
    """-q and --quiet are options of every command that loads models or data or writes runs."""
    from tailtune.cli import build_parser

    assert build_parser().parse_args([*argv, "-q"]).quiet is True
    assert build_parser().parse_args([*argv, "--quiet"]).quiet is True
    assert build_parser().parse_args(argv).quiet is False
