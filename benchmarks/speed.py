"""Speed of tailtune's two-stage fine-tuning against two peer pipelines, end to end.

Data: the embedded BBC News corpus (de-duplicated), with a balanced test set held out per topic and a
long-tailed training set made from the rest (``make_long_tailed``: ratio 50, exponential profile, seed 8).
Model: the embedded all-MiniLM-L6-v2 (6-layer BERT, 384 wide) with a fresh linear head. Workloads:

- ``headlines``: the first line of each article (about 9 tokens), max length 128;
- ``articles128``: whole articles, max length 128 (nearly all are truncated);
- ``articles256``: whole articles, max length 256.

Systems (``benchmarks/peers.py`` describes the peers): **tailtune**
(``tailtune.training.fitting.train_model`` with its default
speed features, then ``tailtune.training.loop.predict_logits``), **peer_a** (two ``transformers.Trainer`` runs)
and **peer_b** (the two-stage authors' pipeline: per-example max-length padding, plain PyTorch loop). All
three run the two-stage strategy (stage 1: head + pooler + top layer, LDAM + effective-number weights,
lr 1e-4; stage 2: all parameters, cross-entropy, lr 1e-5) with the same epochs, batch size 16, AdamW
(eps 1e-8, no weight decay), linear decay without warm-up and gradient clipping at 1.0; fp32 on CPU and
bf16 autocast on a GPU, for all alike.

What is timed, per system, is one end-to-end run: load the pretrained model (seeded head), tokenise the
training data, stage 1, stage 2, and predict the test set (tokenising it too). Not timed: library imports,
reading the corpus, one warm-up load with a tiny forward/backward pass, and scoring the predictions
(macro-F1, computed the same way for all). Nothing is written to disk. Every run happens in a fresh
subprocess (``multiprocessing`` spawn) so that it has its own peak RSS and no cache survives between
systems; the runs are interleaved (the system order rotates between repetitions) and medians are reported.

Derived numbers:

- ``ratio_a`` / ``ratio_b``: tailtune's wall time over peer a's / peer b's.
- train tok/s: real (non-pad) training tokens over both stages and all epochs, divided by training time
  (both stages, stage set-up and tailtune's feature-cache build included).
- ``ceiling_fraction``: tailtune's stage-2 (full fine-tuning) real tokens per second over the FLOP ceiling
  ``G / (6 N + 12 n_layers T hidden)``, with ``G`` the best measured ``size x size`` matmul throughput
  (fp32 on CPU, bf16 on a GPU) in the same subprocess right before the run, ``N`` the encoder-layer
  parameters and ``T`` the token-weighted mean training length (``benchmarks/flops.py``).
- ``stage1_epoch_fraction``: one stage-1 epoch on the feature cache (cache build excluded and reported
  separately) over one stage-2 epoch, from tailtune's ``StageReport``s.

Targets (reported, never asserted): headlines tailtune <= 0.5x peer a and <= 0.25x peer b; articles128
<= 0.8x peer a; a stage-1 epoch on the cache <= 5% of a full fine-tuning epoch; stage-2 throughput >= 75%
of the FLOP ceiling at length 128 (articles128).

    python benchmarks/speed.py --quick --json benchmarks/results/speed_quick_cpu.json
    python benchmarks/speed.py --device cuda --json benchmarks/results/speed_cuda.json
    python benchmarks/speed.py --quick --profile tailtune peer_a --workloads headlines   # where the time goes
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

WORKLOADS: dict[str, tuple[str, int]] = {
    "headlines": ("headlines", 128),
    "articles128": ("articles", 128),
    "articles256": ("articles", 256),
}
SYSTEMS = ("tailtune", "peer_a", "peer_b")
RATIO = 50
ORDER_SEED = 8  # ranks the topics head to tail as the demo does
SPLIT_SEED = 0
RUN_SEED = 1
BATCH_SIZE = 16
EVAL_BATCH_SIZE = 64
# Sizes per workload: (training examples of the head class, test examples per topic). The exponential
# profile keeps about 1.6x the head class in all (125 -> 197 examples, 50 -> 78, 40 -> 63, 300 -> 475). --quick keeps
# the article workloads small to finish within 5 minutes on 2 CPU cores; headlines are cheap, so they get
# enough steps per stage for the per-step costs to show.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "sizes": {"headlines": (125, 20), "articles128": (50, 8), "articles256": (40, 6)},
        "epochs": 1,
        "reps": 1,
    },
    "full": {
        "sizes": {"headlines": (300, 60), "articles128": (300, 60), "articles256": (300, 60)},
        "epochs": 2,
        "reps": 3,
    },
}
TARGETS = (
    # (workload, key, comparison, goal, description)
    ("headlines", "ratio_a", "<=", 0.5, "tailtune / peer a wall time"),
    ("headlines", "ratio_b", "<=", 0.25, "tailtune / peer b wall time"),
    ("articles128", "ratio_a", "<=", 0.8, "tailtune / peer a wall time"),
    ("headlines", "stage1_epoch_fraction", "<=", 0.05, "stage-1 epoch on cache / stage-2 epoch"),
    ("articles128", "stage1_epoch_fraction", "<=", 0.05, "stage-1 epoch on cache / stage-2 epoch"),
    ("articles256", "stage1_epoch_fraction", "<=", 0.05, "stage-1 epoch on cache / stage-2 epoch"),
    ("articles128", "ceiling_fraction", ">=", 0.75, "stage-2 throughput / FLOP ceiling"),
)
# Set for the subprocesses: nothing may reach the network, and no progress bars (``datasets`` is only imported
# by peer a, so its bars are switched off through the environment rather than by importing it everywhere).
CHILD_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}


# --------------------------------------------------------------------------------------------------------
# In the subprocess: one system, one workload
# --------------------------------------------------------------------------------------------------------


def workload_splits(workload: str, *, max_per_class: int, test_per_class: int):
    """``(train, test)`` TextDatasets of a workload: long-tailed train, balanced test."""
    from tailtune.data.builtin import bbc_headlines, bbc_news
    from tailtune.data.imbalance import balanced_holdout, make_long_tailed

    kind, _ = WORKLOADS[workload]
    data = bbc_headlines() if kind == "headlines" else bbc_news()
    test_idx, rest_idx = balanced_holdout(data.labels, per_class=test_per_class, seed=SPLIT_SEED)
    rest = data.subset(rest_idx)
    train_idx = make_long_tailed(rest.labels, ratio=RATIO, profile="exp", seed=ORDER_SEED, max_per_class=max_per_class)
    return rest.subset(train_idx), data.subset(test_idx)


def build_setup(job: dict[str, Any]):
    """The :class:`peers.BenchSetup` of a job (data, stages and settings shared by all systems)."""
    from peers import BenchSetup

    from tailtune.data.builtin import minilm_path
    from tailtune.data.types import LabelMap
    from tailtune.strategies import build_run_config

    train, test = workload_splits(
        job["workload"], max_per_class=job["max_per_class"], test_per_class=job["test_per_class"]
    )
    label_map = LabelMap.from_labels(train.labels)
    return BenchSetup(
        model=minilm_path(),
        labels=label_map.labels,
        train_texts=train.texts,
        train_ids=label_map.encode(train.labels, source="train"),
        test_texts=test.texts,
        test_ids=label_map.encode(test.labels, source="test"),
        stages=build_run_config(minilm_path(), "two-stage", settings={"epochs": job["epochs"], "min_steps": 0}).stages,
        max_length=WORKLOADS[job["workload"]][1],
        batch_size=BATCH_SIZE,
        eval_batch_size=EVAL_BATCH_SIZE,
        seed=RUN_SEED,
        device=job["device"],
        bf16=job["bf16"],
    )


def run_tailtune(setup):
    """tailtune's library path: ``fit`` (load, tokenise, both stages), then ``predict_logits`` on the test set."""
    from peers import SystemRun

    from tailtune.config import RunConfig
    from tailtune.data.types import LabelMap, TextDataset
    from tailtune.training.batching import encode
    from tailtune.training.fitting import FitContext, train_model
    from tailtune.training.loop import make_accelerator, predict_logits

    start = time.perf_counter()
    config = RunConfig(
        model=setup.model,
        strategy="two-stage",
        stages=setup.stages,
        max_length=setup.max_length,
        batch_size=setup.batch_size,
        eval_batch_size=setup.eval_batch_size,
        seed=setup.seed,
        mixed_precision="bf16" if setup.bf16 else "no",
        # The same workload as the peers: the stock [CLS] head, the given epochs, no selection.
        pooling="cls",
        select_metric="none",
        calibrate="none",
    )
    label_map = LabelMap(list(setup.labels))
    train = TextDataset(setup.train_texts, [setup.labels[i] for i in setup.train_ids], "train")
    accelerator = make_accelerator(config)
    trained = train_model(FitContext.of(config, train, label_map, accelerator, show_progress=False), train)
    model, tokenizer = trained.model, trained.tokenizer
    fit_seconds = time.perf_counter() - start

    start = time.perf_counter()
    encoded = encode(tokenizer, setup.test_texts, setup.test_ids, max_length=setup.max_length)
    logits = predict_logits(model, encoded, accelerator, batch_size=setup.eval_batch_size)
    evaluate_seconds = time.perf_counter() - start

    stages = [vars(s) for s in trained.stages]
    train_seconds = sum(s["seconds"] + s["cache_seconds"] for s in stages)
    # Model loading, tokenising and the clean-up between stages (fit time outside the stages).
    phases = {"setup": fit_seconds - train_seconds}
    for index, stage in enumerate(stages, start=1):
        if stage["cached"]:
            phases[f"stage{index}_cache"] = stage["cache_seconds"]
        phases[f"stage{index}"] = stage["seconds"]
    phases["evaluate"] = evaluate_seconds
    return SystemRun(
        phases=phases,
        train_tokens=sum(s["tokens"] for s in stages),
        train_seconds=train_seconds,
        predicted=logits.argmax(axis=1),
        extra={"stages": stages, "epochs": [s.epochs for s in setup.stages]},
    )


def _system_runner(system: str):
    import peers

    return {"tailtune": run_tailtune, "peer_a": peers.run_trainer, "peer_b": peers.run_plain_loop}[system]


def _quiet_libraries() -> None:
    import logging
    import warnings

    import transformers

    warnings.filterwarnings("ignore")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("tailtune").setLevel(logging.WARNING)


def _warm_up(setup):
    """One model load and a tiny forward/backward pass, so first-call costs land outside the timed run.

    Returns the warm-up's ``(model, tokenizer)``.
    """
    import torch
    from peers import load_model

    model, tokenizer = load_model(setup)
    device = torch.device(setup.device)
    model.to(device).train()
    batch = tokenizer(setup.train_texts[:2], truncation=True, max_length=8, padding=True, return_tensors="pt")
    with torch.autocast(setup.device, dtype=torch.bfloat16, enabled=setup.bf16):
        outputs = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    outputs.logits.float().sum().backward()
    return model, tokenizer


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _profiler(device: str):
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    return profile(activities=activities)


# Operator groups of the profile summary (self time; the optimizer's is its total time, children included).
_MATMUL_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm")


def summarise_profile(prof, device: str, *, rows: int = 15) -> dict[str, Any]:
    """Where the time went: shares of matmul/attention, the optimizer step and dropout masks, and a top list."""
    events = prof.key_averages()
    attr = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    total = sum(getattr(e, attr) for e in events) or 1.0

    def share(keys) -> float:
        return sum(getattr(e, attr) for e in events if keys(e.key)) / total

    optimizer = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step"))
    return {
        "total_self_s": total / 1e6,
        "matmul_share": share(lambda k: k in _MATMUL_OPS or "scaled_dot_product" in k or "flash_attention" in k),
        "dropout_rng_share": share(lambda k: k == "aten::bernoulli_"),
        "optimizer_step_s": optimizer / 1e6,
        "table": events.table(sort_by=attr, row_limit=rows),
    }


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Subprocess entry: prepare (untimed), run one system end to end (timed), score it (untimed)."""
    import gc
    import importlib
    import resource

    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:  # peers.py and flops.py live beside this file
        sys.path.insert(0, here)
    import torch

    torch.set_num_threads(job["threads"])
    _quiet_libraries()
    from flops import attention_length, encoder_shape, matmul_flops_per_second

    from tailtune.metrics import compute_metrics

    setup = build_setup(job)
    import peers

    imports = {"tailtune": ("tailtune.training.fitting",), "peer_a": peers.PEER_A_IMPORTS,
               "peer_b": peers.PEER_B_IMPORTS}  # fmt: skip
    for module in imports[job["system"]]:
        importlib.import_module(module)
    model, tokenizer = _warm_up(setup)
    result: dict[str, Any] = {"job": job}
    if job["system"] == "tailtune":
        dtype = torch.bfloat16 if setup.bf16 else torch.float32
        size = job["matmul_size"]
        result["matmul_flops"] = matmul_flops_per_second(torch.device(setup.device), dtype, size=size)
        result["shape"] = encoder_shape(model)
        encoded = tokenizer(setup.train_texts, truncation=True, max_length=setup.max_length)
        result["attention_length"] = attention_length([len(ids) for ids in encoded["input_ids"]])
        del encoded
    del model, tokenizer
    gc.collect()
    if setup.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    result["rss_before_mb"] = _rss_mb("VmRSS")
    hwm_reset = _reset_peak_rss()

    runner = _system_runner(job["system"])
    profiler = _profiler(setup.device) if job.get("profile") else contextlib.nullcontext()
    # The Trainer prints its training summary; the other systems print nothing.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), profiler as prof:
        start = time.perf_counter()
        run = runner(setup)
        if setup.device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
    if prof is not None:
        result["profile"] = summarise_profile(prof, setup.device)

    peak = _rss_mb("VmHWM") if hwm_reset else None
    if peak is None:  # the lifetime peak of the process: an upper bound
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = compute_metrics(setup.test_ids, run.predicted, label_names=setup.labels, train_counts=setup.class_counts)
    result.update(
        wall_s=wall,
        phases=run.phases,
        train_s=run.train_seconds,
        train_tokens=run.train_tokens,
        peak_rss_mb=peak,
        peak_rss_reset=hwm_reset,
        peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if setup.device == "cuda" else None,
        macro_f1=metrics["macro_f1"],
        tail_f1=metrics["tail_f1"],
        n_train=len(setup.train_texts),
        n_test=len(setup.test_texts),
        train_counts=dict(zip(setup.labels, setup.class_counts, strict=True)),
        extra=run.extra,
    )
    return result


# --------------------------------------------------------------------------------------------------------
# In the parent: schedule, aggregate, report
# --------------------------------------------------------------------------------------------------------


def _child(job: dict[str, Any], connection) -> None:
    try:
        connection.send(("ok", run_job(job)))
    except BaseException:
        import traceback

        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def run_in_subprocess(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh spawned process (its own memory, no caches shared with other runs)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(job, sender))
    process.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise RuntimeError(
            f"{job['system']} on {job['workload']}: subprocess died (exit code {process.exitcode})"
        ) from None
    process.join()
    if status != "ok":
        raise RuntimeError(f"{job['system']} on {job['workload']} failed:\n{payload}")
    return payload


def schedule(reps: int, workloads: list[str]) -> list[tuple[int, str, str]]:
    """(rep, workload, system) in run order; the system order rotates by one every repetition."""
    order = []
    for rep in range(reps):
        shift = rep % len(SYSTEMS)
        systems = SYSTEMS[-shift:] + SYSTEMS[:-shift] if shift else SYSTEMS
        order.extend((rep, workload, system) for workload in workloads for system in systems)
    return order


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(workload: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians over repetitions, ratios, and the ceiling and stage-1 fractions of one workload."""
    from flops import ceiling_tokens_per_second, training_flops_per_token

    out: dict[str, Any] = {}
    for system in SYSTEMS:
        out[f"{system}_s"] = _median([r["wall_s"] for r in runs[system]])
    out["ratio_a"] = out["tailtune_s"] / out["peer_a_s"]
    out["ratio_b"] = out["tailtune_s"] / out["peer_b_s"]
    out["macro_f1"] = {s: _median([r["macro_f1"] for r in runs[s]]) for s in SYSTEMS}
    out["tail_f1"] = {s: _median([r["tail_f1"] for r in runs[s]]) for s in SYSTEMS}
    out["train_tokens"] = {s: runs[s][0]["train_tokens"] for s in SYSTEMS}
    out["train_s"] = {s: _median([r["train_s"] for r in runs[s]]) for s in SYSTEMS}
    out["train_tokens_per_s"] = {s: _median([r["train_tokens"] / r["train_s"] for r in runs[s]]) for s in SYSTEMS}
    out["end_to_end_tokens_per_s"] = {s: _median([r["train_tokens"] / r["wall_s"] for r in runs[s]]) for s in SYSTEMS}
    out["peak_rss_mb"] = {s: _median([r["peak_rss_mb"] for r in runs[s]]) for s in SYSTEMS}
    out["peak_gpu_mb"] = {s: _median([r["peak_gpu_mb"] for r in runs[s]]) for s in SYSTEMS}
    out["phases_s"] = {
        s: {name: _median([r["phases"].get(name) for r in runs[s]]) for name in runs[s][0]["phases"]} for s in SYSTEMS
    }

    ceiling_fractions, stage1_fractions, stage2_rates, ceilings, gflops, cache_s, stage1_epoch_s, stage2_epoch_s = (
        [], [], [], [], [], [], [], []
    )  # fmt: skip
    for r in runs["tailtune"]:
        stage1, stage2 = r["extra"]["stages"]
        epochs1, epochs2 = r["extra"]["epochs"]
        rate = stage2["tokens"] / stage2["seconds"]
        ceiling = ceiling_tokens_per_second(r["matmul_flops"], r["shape"], r["attention_length"])
        stage2_rates.append(rate)
        ceilings.append(ceiling)
        gflops.append(r["matmul_flops"] / 1e9)
        ceiling_fractions.append(rate / ceiling)
        cache_s.append(stage1["cache_seconds"])
        stage1_epoch_s.append(stage1["seconds"] / epochs1)
        stage2_epoch_s.append(stage2["seconds"] / epochs2)
        stage1_fractions.append(stage1_epoch_s[-1] / stage2_epoch_s[-1])
    first = runs["tailtune"][0]
    out.update(
        ceiling_fraction=_median(ceiling_fractions),
        stage1_epoch_fraction=_median(stage1_fractions),
        stage1_cached=all(r["extra"]["stages"][0]["cached"] for r in runs["tailtune"]),
        stage1_cache_build_s=_median(cache_s),
        stage1_epoch_s=_median(stage1_epoch_s),
        stage2_epoch_s=_median(stage2_epoch_s),
        stage2_tokens_per_s=_median(stage2_rates),
        ceiling_tokens_per_s=_median(ceilings),
        matmul_gflops=_median(gflops),
        flops_per_token=training_flops_per_token(first["shape"], first["attention_length"]),
        attention_length=first["attention_length"],
        model_shape=first["shape"],
        n_train=first["n_train"],
        n_test=first["n_test"],
        train_counts=first["train_counts"],
        max_length=WORKLOADS[workload][1],
        reps={s: [{k: v for k, v in r.items() if k != "job"} for r in runs[s]] for s in SYSTEMS},
    )
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_tables(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    """The per-workload table and the targets table, as printed and pasted into benchmarks/README.md."""
    lines = [
        f"device {meta['device']} ({meta['device_name']}), {meta['threads']} torch threads, torch {meta['torch']}, "
        f"transformers {meta['transformers']}; {meta['epochs']} epoch(s) per stage, batch {BATCH_SIZE}, "
        f"{meta['reps']} rep(s), medians",
        "",
        f"{'workload':<12} {'system':<9} {'wall s':>8} {'train s':>8} {'train tok/s':>11} {'peak RSS MB':>11} "
        f"{'macro-F1':>8} {'tailtune/x':>10}",
    ]
    lines.append("-" * len(lines[-1]))
    for workload, res in results.items():
        for i, system in enumerate(SYSTEMS):
            ratio = {"peer_a": res["ratio_a"], "peer_b": res["ratio_b"]}.get(system)
            lines.append(
                f"{workload if i == 0 else '':<12} {system:<9} {res[f'{system}_s']:>8.1f} "
                f"{res['train_s'][system]:>8.1f} {res['train_tokens_per_s'][system]:>11.0f} "
                f"{_fmt(res['peak_rss_mb'][system], '.0f'):>11} {res['macro_f1'][system]:>8.3f} "
                f"{_fmt(ratio, '.2f'):>10}"
            )
    lines += ["", "tailtune stages (medians):"]
    for workload, res in results.items():
        lines.append(
            f"  {workload}: n_train {res['n_train']}, n_test {res['n_test']}, max length {res['max_length']}; "
            f"stage 1 cache build {res['stage1_cache_build_s']:.2f} s, stage-1 epoch {res['stage1_epoch_s']:.2f} s, "
            f"stage-2 epoch {res['stage2_epoch_s']:.2f} s; stage 2 {res['stage2_tokens_per_s']:.0f} tok/s vs "
            f"ceiling {res['ceiling_tokens_per_s']:.0f} tok/s ({res['matmul_gflops']:.1f} GFLOP/s matmul, "
            f"{res['flops_per_token'] / 1e6:.1f} MFLOP/token at T={res['attention_length']:.1f})"
        )
    lines += ["", f"{'target':<76} {'value':>7} {'goal':>8}  result"]
    lines.append("-" * len(lines[-1]))
    for row in target_results(results):
        what = f"{row['workload']}: {row['what']} ({row['key']})"
        lines.append(f"{what:<76} {row['value']:>7.3f} {row['target'].replace(' ', ''):>8}  {row['result']}")
    if meta.get("preset") == "quick":
        lines += ["", "note: --quick epochs are a few steps long, so per-stage set-up dominates them and the "
                      "ceiling fraction here is no measure of it; the full preset measures it."]  # fmt: skip
    return "\n".join(lines)


def target_results(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of the measured workloads with its value and PASS or MISS."""
    rows = []
    for workload, key, comparison, goal, text in TARGETS:
        if workload in results:
            value = results[workload][key]
            ok = value <= goal if comparison == "<=" else value >= goal
            rows.append({"workload": workload, "key": key, "target": f"{comparison} {goal:g}", "value": value,
                         "result": "PASS" if ok else "MISS", "what": text})  # fmt: skip
    return rows


def _source_revision() -> str | None:
    """The checked-out commit of the library (with ``+local`` when ``src/`` has uncommitted changes), if any."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=root, capture_output=True, text=True,
                               check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+local" if dirty else "")


def _cpu_name() -> str:
    from tailtune.training.precision import cpu_info

    name = cpu_info()[0]
    return name if name != "?" else platform.processor() or platform.machine()


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def profile_systems(
    systems: list[str], workloads: list[str], preset: dict[str, Any], job_base: dict[str, Any]
) -> dict[str, Any]:
    """Run each system once per workload under the profiler and print the breakdown."""
    out: dict[str, Any] = {}
    for workload in workloads:
        max_per_class, test_per_class = preset["sizes"][workload]
        for system in systems:
            job = {**job_base, "workload": workload, "system": system, "rep": 0, "profile": True,
                   "max_per_class": max_per_class, "test_per_class": test_per_class}  # fmt: skip
            result = run_in_subprocess(job)
            prof = result["profile"]
            phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in result["phases"].items())
            print(f"== {workload} / {system}: wall {result['wall_s']:.2f} s under the profiler ({phases})")
            print(
                f"   op self time {prof['total_self_s']:.2f} s: matmul+attention {prof['matmul_share']:.0%}, "
                f"dropout masks {prof['dropout_rng_share']:.0%}; optimizer steps {prof['optimizer_step_s']:.2f} s"
            )
            print(prof["table"], flush=True)
            out.setdefault(workload, {})[system] = result
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, 1 epoch per stage, 1 repetition")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default: 1 quick, 3 full)")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--precision", choices=["auto", "fp32", "bf16"], default="auto",
        help="precision of every system (default auto: tailtune's own rule, bf16 where the hardware has it natively)",
    )  # fmt: skip
    parser.add_argument(
        "--peers-fp32", action="store_true",
        help="run the peers in fp32 whatever --precision says (the Trainer as users run it on CPU)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default here)")
    parser.add_argument("--max-per-class", type=int, default=None, help="head-class training examples")
    parser.add_argument("--test-per-class", type=int, default=None, help="test examples per topic")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per stage")
    parser.add_argument(
        "--profile", nargs="+", choices=SYSTEMS, default=None,
        help="instead of the benchmark, run these systems once per workload under torch.profiler and print "
        "where the time goes (profiling slows the run down)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    for name, value in CHILD_ENV.items():
        os.environ.setdefault(name, value)
    import torch
    import transformers

    preset = dict(PRESETS["quick" if args.quick else "full"])
    for key in ("reps", "epochs"):
        if getattr(args, key) is not None:
            preset[key] = getattr(args, key)
    preset["sizes"] = {
        workload: (args.max_per_class or head, args.test_per_class or test)
        for workload, (head, test) in preset["sizes"].items()
        if workload in args.workloads
    }
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the subprocesses then see no GPU, whatever the machine
    from tailtune.training.precision import auto_precision

    bf16 = args.precision == "bf16" or (args.precision == "auto" and auto_precision(device) == "bf16")
    threads = args.threads or torch.get_num_threads()
    meta = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device == "cuda" else _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "precision": "bf16 autocast" if bf16 else "fp32",
        "peer_precision": "bf16 autocast" if bf16 and not args.peers_fp32 else "fp32",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "tailtune_revision": _source_revision(),
        "matmul": f"{'bf16' if bf16 else 'fp32'} {8192 if device == 'cuda' else 2048}^3",
        "load_average_start": _load_average(),
        "preset": "quick" if args.quick else "full",
        **preset,
    }
    job_base = {"epochs": preset["epochs"], "device": device, "bf16": bf16, "threads": threads,
                "matmul_size": 8192 if device == "cuda" else 2048}  # fmt: skip
    if args.profile:
        return profile_systems(args.profile, args.workloads, preset, job_base)
    runs: dict[str, dict[str, list]] = {w: {s: [] for s in SYSTEMS} for w in args.workloads}
    started = time.perf_counter()
    for rep, workload, system in schedule(preset["reps"], args.workloads):
        max_per_class, test_per_class = preset["sizes"][workload]
        job = {**job_base, "workload": workload, "system": system, "rep": rep,
               "max_per_class": max_per_class, "test_per_class": test_per_class}  # fmt: skip
        if args.peers_fp32 and system != "tailtune":
            job["bf16"] = False
        result = run_in_subprocess(job)
        runs[workload][system].append(result)
        phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in result["phases"].items())
        print(f"[{time.perf_counter() - started:6.0f}s] rep {rep + 1} {workload:<12} {system:<9} "
              f"wall {result['wall_s']:7.1f} s  macro-F1 {result['macro_f1']:.3f}  ({phases})", flush=True)  # fmt: skip
    meta["benchmark_wall_s"] = round(time.perf_counter() - started, 1)
    meta["load_average_end"] = _load_average()
    results = {workload: summarise(workload, runs[workload]) for workload in args.workloads}
    print()
    print(format_tables(results, meta))
    print(f"\nbenchmark wall time {meta['benchmark_wall_s']:.0f} s")
    output = {**results, "targets": target_results(results), "meta": meta, "precision": meta["precision"],
              "peer_precision": meta["peer_precision"], "cpu": _cpu_name()}  # fmt: skip
    if args.json:
        from tailtune.fileio import write_json

        write_json(args.json, output)
        print(f"results written to {args.json}")
    return output


if __name__ == "__main__":
    main()
