"""Choose default settings on training data alone: every variant scored on a development split of ``train.csv``.

A benchmark's test file must not choose the settings it is then reported with. For every data folder given,
this holds out a stratified share of ``train.csv`` (``--dev-fraction``, seeded; a class with one example stays
in training) as the development test set, or reads ``dev.csv`` where the folder has one (an extreme tail made
from a training file with ``tailtune make-imbalanced``, its held-out file renamed ``dev.csv``). ``test.csv`` is
never read. Each variant is ``tailtune train`` with the flags listed in :data:`VARIANTS`; its development
predictions are scored by the same code as ``real_longtail.py``, with the run's wall time, its CPU-seconds
(those of the ``tailtune train`` process, from ``getrusage``: exact only with ``--jobs 1``, where runs do not
overlap), the 1-minute load average at its start and end, its validation choices and whether it refit. Rows
already in the ``--json`` file are kept unless run again, so the file gathers several invocations; a finished
run folder is read back, not trained again.

    python benchmarks/choose_defaults.py r8=../shared/data/real/r8 ohsumed=../shared/data/real/ohsumed \\
        --variants default no-refit --seeds 1 2 --jobs 2 --out runs/choose --json choose.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
from real_longtail import run_probe, run_tfidf, scores

from tailtune.training.precision import cpu_info
from tailtune.training.selection import carve_validation

# Each variant: the flags added to ``tailtune train`` (none: the defaults as they are).
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "no-refit": ["--no-refit"],
    "stage2-3ep": ["--no-refit", "--epochs", "1", "3"],
    "tail-validated": ["--eval-min-class-count", "2"],
    "tail-validated-no-refit": ["--eval-min-class-count", "2", "--no-refit"],
    "len256": ["--no-refit", "--max-length", "256"],
    "top3-3ep": ["--no-refit", "--trainable", "top1", "top3", "--epochs", "1", "3"],
    "top3": ["--trainable", "top1", "top3"],
    "top3-no-refit": ["--no-refit", "--trainable", "top1", "top3"],
}


KEY = ("data", "variant", "seed")  # one row per run in the --json file


def dev_split(folder: Path, fraction: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The development split of a folder: ``dev.csv`` as given, else a stratified share of ``train.csv``."""
    read = {"dtype": str, "keep_default_na": False}
    train = pd.read_csv(folder / "train.csv", **read)
    if (folder / "dev.csv").is_file():
        return train, pd.read_csv(folder / "dev.csv", **read)
    kept, held = carve_validation(train["label"].tolist(), fraction=fraction, min_class_count=2, seed=seed)
    return train.iloc[kept].reset_index(drop=True), train.iloc[held].reset_index(drop=True)


def children_cpu_s() -> float:
    """CPU-seconds (user and system) of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_variant(data: Path, out: Path, variant: str, seed: int, model: str) -> dict:
    """One ``tailtune train`` run on the development split; its row (scores, wall and CPU time, choices)."""
    run = out / f"{data.name}-{variant}-seed-{seed}"
    if not (run / "metrics.json").is_file():
        before, load = children_cpu_s(), os.getloadavg()[0]
        command = [sys.executable, "-m", "tailtune", "train", "--train", str(data / "train.csv"), "--test",
                   str(data / "dev.csv"), "--model", model, "--seed", str(seed), "--output", str(run), "-q",
                   *VARIANTS[variant]]  # fmt: skip
        done = subprocess.run(command, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}, capture_output=True,
                              text=True)  # fmt: skip
        if done.returncode != 0:
            return {"data": data.name, "variant": variant, "seed": seed, "error": done.stderr[-2000:]}
        usage = {"cpu_s": round(children_cpu_s() - before, 1), "load_start": load, "load_end": os.getloadavg()[0]}
        (run / "usage.json").write_text(json.dumps(usage) + "\n", encoding="utf-8")
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    train = pd.read_csv(data / "train.csv", dtype=str, keep_default_na=False)
    predicted = pd.read_csv(run / "predictions.csv", dtype=str, keep_default_na=False)
    selection = metrics.get("selection") or []
    return {
        "data": data.name,
        "variant": variant,
        "seed": seed,
        "wall_s": metrics.get("wall_time_s"),
        **(json.loads((run / "usage.json").read_text()) if (run / "usage.json").is_file() else {"cpu_s": None}),
        **scores(train["label"].tolist(), predicted["label"].tolist(), predicted["predicted"].tolist()),
        "validation": [round(choice.get("best_score", float("nan")), 4) for choice in selection],
        "epochs_run": [choice.get("epochs_run") for choice in selection],
        "best_epoch": [choice.get("best_epoch") for choice in selection],
        "refit": bool(metrics.get("refit_epochs")),
    }


def run_baseline(data: Path, method: str) -> dict:
    """A baseline of ``real_longtail.py`` (``tfidf-svm`` or ``frozen-probe``) on the development split."""
    read = {"dtype": str, "keep_default_na": False}
    train, dev = pd.read_csv(data / "train.csv", **read), pd.read_csv(data / "dev.csv", **read)
    start, cpu_start = time.perf_counter(), time.process_time()
    predicted = run_tfidf(train, dev) if method == "tfidf-svm" else run_probe(train, dev)
    return {"data": data.name, "variant": method, "seed": None, "wall_s": round(time.perf_counter() - start, 1),
            "cpu_s": round(time.process_time() - cpu_start, 1),
            **scores(train["label"].tolist(), dev["label"].tolist(), predicted)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="NAME=FOLDER holding train.csv (and perhaps dev.csv)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--baselines", nargs="*", default=["tfidf-svm"], choices=["tfidf-svm", "frozen-probe"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--model", default="builtin:minilm")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--out", type=Path, default=Path("runs/choose-defaults"))
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    cpu = cpu_info()[0]
    folders = []
    for spec in args.folders:
        name, _, folder = spec.partition("=")
        data = args.out / "data" / name
        data.mkdir(parents=True, exist_ok=True)
        train, dev = dev_split(Path(folder), args.dev_fraction)
        train.to_csv(data / "train.csv", index=False)
        dev.to_csv(data / "dev.csv", index=False)
        folders.append(data)
    # The first seed of everything first: a run cut short still compares every variant.
    tasks = [(data, variant, seed) for seed in args.seeds for data in folders for variant in args.variants]
    # Rows of earlier invocations in the same file stay, unless this one runs them again.
    rows = json.loads(args.json.read_text(encoding="utf-8"))["rows"] if args.json and args.json.is_file() else []
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_variant, data, args.out, variant, seed, args.model) for data, variant, seed in tasks]
        futures += [pool.submit(run_baseline, data, method) for data in folders for method in args.baselines]
        for future in as_completed(futures):
            row = {**future.result(), "cpu": cpu}
            rows = [old for old in rows if [old[key] for key in KEY] != [row[key] for key in KEY]] + [row]
            print(json.dumps(rows[-1]), flush=True)
            if args.json:  # written after every run: a run cut short keeps what finished
                record = {"cpu": cpu, "cores": os.cpu_count(), "rows": rows}
                args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    good = pd.DataFrame([row for row in rows if "error" not in row])
    if not good.empty:
        summary = good.groupby(["data", "variant"], sort=False)
        table = summary[["accuracy", "macro_f1", "tail_f1", "wall_s", "cpu_s"]].mean().round(4)
        table["runs"] = summary.size()
        print(f"\nmean over seeds, development splits, {cpu}\n{table.to_string()}")


if __name__ == "__main__":
    main()
