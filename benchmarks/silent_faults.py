"""The silent faults of a trust review, each as a case that prints what tailtune does with it.

Run against any checkout: ``PYTHONPATH=<checkout>/src python benchmarks/silent_faults.py OUT`` (a tiny BERT built
in code, so the whole script takes a few minutes on two CPU cores). Each line names the case and what happened:
a value, an accepted input, or the error raised.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import build_tiny_model_dir, make_texts  # noqa: E402

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
results = []


def case(name):
    def wrap(fn):
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001
            value = f"raised {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            if os.environ.get("CASES_DEBUG"):
                traceback.print_exc()
        results.append((name, value))
        print(f"{name}: {value}", flush=True)
        return fn

    return wrap


def cli(*args, stdin=None):
    proc = subprocess.run(
        [sys.executable, "-m", "tailtune", *args], capture_output=True, text=True, env=ENV, input=stdin
    )
    err = proc.stderr.strip().splitlines()
    return proc.returncode, proc.stdout, proc.stderr, (err[-1][:160] if err else "")


from tailtune.classifier import TailTuner  # noqa: E402
from tailtune.data import load_dataset  # noqa: E402

tiny = build_tiny_model_dir(OUT / "tiny")
texts, labels = make_texts({"sport": 30, "tech": 12, "money": 6}, seed=1)
data = OUT / "train.csv"
pd.DataFrame({"text": texts, "label": labels}).to_csv(data, index=False)
FAST = dict(strategy="vanilla", epochs=1, min_steps=0, lr=1e-3, show_progress=False, eval_fraction=0, max_length=64)


@case("csv: unclosed quote, 120 rows written")
def _():
    lines = ["text,label"] + [f"row {i} text,{'ab'[i % 2]}" for i in range(120)]
    lines[31] = '"row 30 starts a quote,a'
    lines[61] = 'row 60 ends" it,b'
    p = OUT / "unclosed.csv"
    p.write_text("\n".join(lines) + "\n")
    return f"{len(load_dataset(p))} rows read"


@case("csv: one unquoted comma in every text")
def _():
    p = OUT / "comma.csv"
    p.write_text("text,label\n" + "".join(f"hello there, world {i},{'ab'[i % 2]}\n" for i in range(10)))
    d = load_dataset(p)
    return f"first text read as {d.texts[0]!r}"


@case("csv: labels '1' and '1.0'")
def _():
    p = OUT / "float.csv"
    p.write_text("text,label\n" + "".join(f"t{i},{'1' if i % 2 else '1.0'}\n" for i in range(6)) + "x,2\n")
    return f"classes {sorted(set(load_dataset(p).labels))}"


@case("metrics: test holds 2 of 6 classes, all right")
def _():
    from tailtune.metrics import compute_metrics

    m = compute_metrics([0, 0, 1, 1], [0, 0, 1, 1], label_names=list("abcdef"), train_counts=[9, 8, 7, 6, 5, 4])
    return f"macro-F1 {m['macro_f1']:.2f}, accuracy {m['accuracy']:.2f}, tail F1 {m['tail_f1']}"


@case("api: predict('one text')")
def _():
    clf = TailTuner(model=str(tiny), **FAST).fit(texts, labels)
    case.fitted = clf
    out = clf.predict("one text")
    return f"{type(out).__name__} of {len(out)}"


@case("api: fit(DataFrame, y)")
def _():
    TailTuner(model=str(tiny), **FAST).fit(pd.DataFrame({"a": texts, "b": texts}), labels)
    return "accepted"


@case("api: fit(texts, y as column vector)")
def _():
    TailTuner(model=str(tiny), **FAST).fit(texts, np.array(labels).reshape(-1, 1))
    return "accepted"


@case("api: NaN label")
def _():
    clf = TailTuner(model=str(tiny), **FAST).fit(texts, labels[:-1] + [float("nan")])
    return f"accepted, classes {list(clf.classes_)}"


@case("api: None text")
def _():
    TailTuner(model=str(tiny), **FAST).fit([None] + texts[1:], labels)
    return "accepted"


@case("api: fit([], [])")
def _():
    TailTuner(model=str(tiny), **FAST).fit([], [])
    return "accepted"


@case("api: pickle fitted, predict in a fresh process")
def _():
    clf = case.fitted
    clf.predict(["goal match"])
    p = OUT / "clf.pkl"
    p.write_bytes(pickle.dumps(clf))
    code = f"import pickle; c = pickle.load(open({str(p)!r}, 'rb')); print(list(c.predict(['goal match'])))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    if proc.returncode == 0:
        return "predicts " + proc.stdout.strip()
    return "fails: " + proc.stderr.strip().splitlines()[-1][:120]


@case("api: cross_val_predict(method='predict_proba')")
def _():
    from sklearn.model_selection import cross_val_predict

    proba = cross_val_predict(TailTuner(model=str(tiny), **FAST), texts, labels, cv=2, method="predict_proba")
    return f"shape {proba.shape}"


@case("api: numbers as texts")
def _():
    clf = case.fitted
    return f"predicts {clf.predict(np.array([[0.5, -1.2]]))!r}"


@case("api: tags declare string input")
def _():
    tags = TailTuner().__sklearn_tags__()
    return f"string={tags.input_tags.string} two_d_array={tags.input_tags.two_d_array}"


run1 = OUT / "run1"


@case("train: a default run (mean pooling) saved, plain pipeline agreement")
def _():
    # a sentence-transformers-like folder: modules.json says mean pooling
    st = OUT / "st-tiny"
    build_tiny_model_dir(st)
    (st / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (st / "1_Pooling").mkdir(exist_ok=True)
    (st / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    rc, _, _, last = cli(
        "train",
        "--train",
        str(data),
        "--model",
        str(st),
        "--output",
        str(run1),
        "--strategy",
        "vanilla",
        "--epochs",
        "8",
        "--min-steps",
        "0",
        "--lr",
        "3e-3",
        "--eval-fraction",
        "0",
        "--max-length",
        "64",
        "-q",
    )
    if rc:
        return f"train failed: {last}"
    from transformers import pipeline

    try:
        pipe = pipeline("text-classification", model=str(run1 / "model"))
    except Exception as exc:  # noqa: BLE001
        return f"plain pipeline refuses: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
    tuned = TailTuner.load(run1 / "model")
    ours = [str(x) for x in tuned.predict(texts)]
    theirs = [r["label"] for r in pipe(texts)]
    agreement = np.mean([a == b for a, b in zip(ours, theirs, strict=True)])
    return (
        f"plain pipeline loads it; agreement with tailtune {agreement:.2f} "
        f"({len(set(ours))} distinct labels from tailtune)"
    )


@case("train: continue from a checkpoint whose id2label is in another order")
def _():
    src = OUT / "ckpt-plain"
    rc, _, _, last = cli(
        "train",
        "--train",
        str(data),
        "--model",
        str(tiny),
        "--output",
        str(src),
        "--strategy",
        "vanilla",
        "--epochs",
        "8",
        "--min-steps",
        "0",
        "--lr",
        "3e-3",
        "--eval-fraction",
        "0",
        "--pooling",
        "cls",
        "--calibrate",
        "none",
        "--max-length",
        "64",
        "-q",
    )
    if rc:
        return f"train failed: {last}"
    # reorder id2label (and the head rows with it) -> the same model under another label order
    from safetensors.torch import load_file, save_file

    folder = OUT / "ckpt-reordered"
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(src / "model", folder)
    cfg = json.loads((folder / "config.json").read_text())
    names = [cfg["id2label"][str(i)] for i in range(len(cfg["id2label"]))]
    order = [1, 2, 0]
    cfg["id2label"] = {str(i): names[j] for i, j in enumerate(order)}
    cfg["label2id"] = {names[j]: i for i, j in enumerate(order)}
    (folder / "config.json").write_text(json.dumps(cfg))
    state = load_file(str(folder / "model.safetensors"))
    for key in ("classifier.weight", "classifier.bias"):
        state[key] = state[key][order].contiguous()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    before = [str(x) for x in TailTuner.load(folder).predict(texts)]
    cont = TailTuner(
        model=str(folder),
        strategy="vanilla",
        epochs=1,
        lr=1e-12,
        min_steps=0,
        show_progress=False,
        eval_fraction=0,
        calibrate="none",
        pooling="cls",
        max_length=64,
    ).fit(texts, labels)
    after = [str(x) for x in cont.predict(texts)]
    unchanged = np.mean([a == b for a, b in zip(before, after, strict=True)])
    return (
        f"predictions unchanged after lr=1e-12 continuation: {unchanged:.2f}"
        f" ({len(set(before))} distinct labels before)"
    )


@case("predict: checkpoint with an untrained head")
def _():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    untrained = OUT / "untrained"
    AutoModelForSequenceClassification.from_pretrained(str(tiny), num_labels=3).save_pretrained(str(untrained))
    AutoTokenizer.from_pretrained(str(tiny)).save_pretrained(str(untrained))
    rc, _, _, last = cli("predict", "--model", str(untrained), "--input", str(data), "--output", str(OUT / "u.csv"))
    return f"exit {rc}: {last}"


@case("make-imbalanced twice into one folder")
def _():
    big = OUT / "big.csv"
    t, y = make_texts({"sport": 40, "tech": 40, "money": 40}, seed=5)
    pd.DataFrame({"text": t, "label": y}).to_csv(big, index=False)
    out = OUT / "lt"
    cli("make-imbalanced", "--input", str(big), "--output", str(out), "--ratio", "4", "--test-per-class", "10")
    cli("make-imbalanced", "--input", str(big), "--output", str(out), "--ratio", "4")
    if not (out / "test.csv").exists():
        return "no stale test.csv"
    test = set(pd.read_csv(out / "test.csv").text)
    train = set(pd.read_csv(out / "train.csv").text)
    return f"stale test.csv kept; {len(test & train)} of {len(test)} test texts in train.csv"


@case("train: position limit 64 < 128, no --max-length")
def _():
    rc, _, _, last = cli(
        "train",
        "--train",
        str(data),
        "--model",
        str(tiny),
        "--output",
        str(OUT / "pos"),
        "--strategy",
        "vanilla",
        "--epochs",
        "1",
        "--min-steps",
        "0",
        "-q",
    )
    return f"exit {rc}" + (f": {last}" if rc else "")


for value in ("1", "-3", "0"):

    @case(f"predict --max-length {value}")
    def _(value=value):
        rc, _, err, last = cli(
            "predict",
            "--model",
            str(run1 / "model"),
            "--input",
            str(data),
            "--output",
            str(OUT / "p.csv"),
            "--max-length",
            value,
        )
        return f"exit {rc}" + (" (traceback)" if "Traceback" in err else "") + f": {last}"


@case("predict: other columns, output format, stdout, empty text")
def _():
    inp = OUT / "ids.csv"
    pd.DataFrame({"id": range(5), "text": texts[:4] + [""], "extra": list("abcde")}).to_csv(inp, index=False)
    rc, _, _, last = cli(
        "predict", "--model", str(run1 / "model"), "--input", str(inp), "--output", str(OUT / "p.jsonl")
    )
    parts = [f"empty text: exit {rc} {last[:60]}"]
    inp2 = OUT / "ids2.csv"
    pd.DataFrame({"id": range(4), "text": texts[:4]}).to_csv(inp2, index=False)
    rc, _, _, last = cli(
        "predict", "--model", str(run1 / "model"), "--input", str(inp2), "--output", str(OUT / "p2.jsonl")
    )
    first = (OUT / "p2.jsonl").read_text().splitlines()[0] if (OUT / "p2.jsonl").exists() else ""
    parts.append(f"--output p2.jsonl starts {first[:50]!r}")
    cwd = OUT / "stdout-cwd"
    cwd.mkdir(exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tailtune",
            "predict",
            "--model",
            str(run1 / "model"),
            "--input",
            str(inp2),
            "--output",
            "-",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
    )
    parts.append("file named '-' created" if (cwd / "-").exists() else "no file named '-'")
    return "; ".join(parts)


@case("report: two unrelated train runs")
def _():
    folder = OUT / "mixed"
    folder.mkdir(exist_ok=True)
    for i, lr in enumerate(("3e-3", "1e-3")):  # two unrelated runs: another learning rate, another seed
        cli(
            "train",
            "--train",
            str(data),
            "--model",
            str(tiny),
            "--output",
            str(folder / f"r{i}"),
            "--strategy",
            "vanilla",
            "--epochs",
            "1",
            "--min-steps",
            "0",
            "--lr",
            lr,
            "--max-length",
            "32",
            "--seed",
            str(i),
            "--eval-fraction",
            "0",
            "-q",
        )
    rc, _, _, last = cli("report", str(folder))
    return f"exit {rc}: {last[:120]}"


@case("-q: stderr lines of a train run")
def _():
    rc, _, err, _ = cli(
        "train",
        "--train",
        str(data),
        "--model",
        str(tiny),
        "--output",
        str(OUT / "quiet"),
        "--strategy",
        "vanilla",
        "--epochs",
        "1",
        "--min-steps",
        "0",
        "--max-length",
        "32",
        "-q",
    )
    return f"exit {rc}, {len(err.strip().splitlines())} stderr lines"


(OUT / "results.json").write_text(json.dumps(results, indent=1))
