"""The ``tailtune`` command as a whole: commands used together, ``python -m tailtune``, --help without the heavy
libraries, -q, built-in data names, outputs that cannot be written and bf16 on a CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_texts, run_cli

from tailtune.data.types import TextDataset
from tailtune.strategies import STRATEGIES, describe_strategies


def test_train_evaluate_predict(tiny_model, tiny_data, tmp_path, capsys, caplog):
    """train writes a complete run; evaluate scores RUN/model alike; predict adds predicted and score to the input."""
    run = tmp_path / "run"
    code, out, err = run_cli(
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
    code, out, err = run_cli(capsys, "evaluate", "--model", run / "model", "--data", tiny_data["test"], "--output",
                             scores)  # fmt: skip
    assert code == 0, err
    evaluated = json.loads(scores.read_text())
    assert evaluated["split"] == str(tiny_data["test"])
    for key in ("accuracy", "macro_f1", "micro_f1", "balanced_accuracy", "tail_f1", "log_loss"):
        assert evaluated[key] == pytest.approx(metrics[key]), key
    assert evaluated["long_texts"] == metrics["long_texts"]["chosen"]  # read as train read its test data
    assert {name: row["train_count"] for name, row in evaluated["per_class"].items()} == {
        "money": 4, "sport": 40, "tech": 12,
    }  # fmt: skip
    assert out.splitlines()[0].startswith(f"{tiny_data['test']}: macro-F1 {metrics['macro_f1']:.4f}")
    assert out.rstrip().endswith(f"metrics written to {scores}")
    assert "the data the model's run" not in caplog.text

    copy = tmp_path / "copy.csv"  # the training file under another name: the same content
    copy.write_bytes(Path(tiny_data["train"]).read_bytes())
    code, _, err = run_cli(capsys, "evaluate", "--model", run / "model", "--data", copy)
    assert code == 0, err
    assert (
        f"{copy}: this is the data the model's run trained on ({tiny_data['train']}); its scores show how well "
        "the model fits texts it has seen, not how the model does on new texts"
    ) in caplog.messages
    caplog.clear()
    shuffled = tmp_path / "shuffled.csv"  # the training rows in another order: texts the run kept digests of
    pd.read_csv(tiny_data["train"]).iloc[::-1].to_csv(shuffled, index=False)
    assert run_cli(capsys, "evaluate", "--model", run / "model", "--data", shuffled)[0] == 0
    assert f"{shuffled}: 56 of its 56 texts (100.0%) are texts the model's run trained on" in caplog.text

    preds = tmp_path / "out" / "preds.csv"
    code, out, err = run_cli(capsys, "predict", "--model", run / "model", "--input", tiny_data["test"], "--output",
                             preds)  # fmt: skip
    assert code == 0, err
    assert out.strip() == f"30 predictions written to {preds}"
    frame = pd.read_csv(preds)
    assert list(frame.columns) == ["text", "label", "predicted", "score"]
    reference = pd.read_csv(run / "predictions.csv")
    assert frame["text"].tolist() == reference["text"].tolist()
    assert frame["predicted"].tolist() == reference["predicted"].tolist()
    assert frame["score"].tolist() == pytest.approx(reference["score"].tolist(), abs=1e-5)


def test_evaluate_and_predict_errors(tmp_path, tiny_data, capsys):
    """evaluate and predict report a missing model folder or input file in one line."""
    code, _, err = run_cli(capsys, "evaluate", "--model", tmp_path / "gone", "--data", tiny_data["test"])
    assert (code, err.strip()) == (2, f"tailtune: error: {tmp_path / 'gone'}: model folder not found")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "predict", "--model", tmp_path / "empty", "--input", "x.csv", "--output", "p.csv")
    assert code == 2 and err.strip().startswith(f"tailtune: error: {tmp_path / 'empty'}: no model here")
    assert not Path("p.csv").exists()


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
    strategies = listing.stdout.split("\n\n")[0]  # then how the losses train on label sets
    assert strategies == describe_strategies()
    headers = [line.split(":")[0] for line in strategies.splitlines() if not line.startswith(" ")]
    assert headers == list(STRATEGIES)
    failing = subprocess.run(
        [sys.executable, "-m", "tailtune", "train", "--model", "m", "--train", "missing.csv", "--output", "out"],
        **env_run,
    )
    assert failing.returncode == 2
    assert failing.stderr.splitlines() == ["tailtune: error: missing.csv: file not found; check the path"]
    assert not (tmp_path / "out").exists()


def test_reader_that_stops_early_is_no_error(tmp_path):
    """`tailtune strategies | head -1`: the reader closes the pipe early; tailtune ends quietly, no traceback."""
    process = subprocess.Popen([sys.executable, "-m", "tailtune", "strategies"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=tmp_path)  # fmt: skip
    process.stdout.close()  # the reader has gone before the first line
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and err.decode() == ""


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


def test_outputs_that_cannot_be_written_are_one_line(tiny_model, tiny_data, tmp_path, capsys):
    """--output naming a file (train) or a folder (predict) ends in one line and exit 2, never a traceback."""
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--output", taken,
                        "--epochs", "1", "-q")  # fmt: skip
    assert code == 2 and err.strip() == f"tailtune: error: {taken}: exists and is not a folder; choose another --output"
    assert taken.read_text() == "keep me"

    folder = tmp_path / "folder"
    folder.mkdir()
    model = _trained(tiny_model, tiny_data, tmp_path, capsys)
    code, _, err = run_cli(capsys, "predict", "--model", model, "--input", tiny_data["test"], "--output", folder)
    assert code == 2 and err.strip() == f"tailtune: error: {folder}: is a folder; name a file to write"


def _trained(tiny_model, tiny_data, tmp_path, capsys) -> Path:
    run = tmp_path / "small-run"
    code, _, err = run_cli(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"], "--output", run,
                        "--strategy", "vanilla", "--epochs", "1", "--max-length", "16", "-q")  # fmt: skip
    assert code == 0, err
    return run / "model"


def test_every_data_command_reads_builtin_names(tiny_model, tiny_data, tmp_path, capsys, monkeypatch):
    """evaluate, predict and make-imbalanced accept the builtin: names that train accepts."""
    import tailtune.data.builtin as builtin

    texts, labels = make_texts({"sport": 6, "tech": 6, "money": 6}, seed=9)
    monkeypatch.setattr(builtin, "bbc_news", lambda: TextDataset(texts, labels, "stand-in bbc-news"))
    out = tmp_path / "made"
    code, _, err = run_cli(capsys, "make-imbalanced", "--input", "builtin:bbc-news", "--output", out, "--ratio", "2")
    assert code == 0, err
    assert (out / "train.parquet").is_file()
    model = _trained(tiny_model, tiny_data, tmp_path, capsys)
    code, _, err = run_cli(capsys, "predict", "--model", model, "--input", "builtin:bbc-news", "--output",
                        tmp_path / "p.csv")  # fmt: skip
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "p.csv")) == 18
    code, out_text, err = run_cli(capsys, "evaluate", "--model", model, "--data", "builtin:bbc-news")
    assert code == 0, err
    assert out_text.startswith("stand-in bbc-news: macro-F1 ")
    code, _, err = run_cli(capsys, "predict", "--model", model, "--input", "builtin:nope", "--output",
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


@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "--max-length", "3.5"], "tailtune train: error: argument --max-length: invalid int value: '3.5'"),
    (["predict", "--model", "m"], "tailtune predict: error: the following arguments are required: --input, --output"),
    (["no-such-command"], "tailtune: error: argument COMMAND: invalid choice: 'no-such-command'"),
])  # fmt: skip
def test_option_errors_are_one_line(argv, expected, capsys):
    """A mistyped option is one line naming it and where help is, not argparse's whole usage block."""
    from tailtune.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(expected) and "--help')" in err
