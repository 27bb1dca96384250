"""The plan (:mod:`tailtune.experiments.plan`): the dry-run text, and the complete runs already under the output
checked against the experiment's settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from compare_config import compare, config_dict, run_dirs, write_config

from tailtune.errors import TailTuneError
from tailtune.experiments.runner import prepare_compare, run_compare


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


def test_complete_run_counts_at_the_length_its_training_texts_give(tmp_path, tiny_data, monkeypatch):
    """Without max_length, a complete run counts when it recorded the length the variant's training texts give, read
    once per variant; a run recorded at another length does not."""
    from run_factory import MODEL, RUN_SETTINGS, write_run

    from tailtune.training import fitting

    runs = [write_run(tmp_path / "out" / "mine" / "vanilla" / f"seed-{seed}", seed=seed, variant="mine")
            for seed in (0, 1)]  # fmt: skip
    for run in runs:
        recorded = json.loads((run / "config.json").read_text(encoding="utf-8"))
        recorded["run"]["max_length"] = 192
        (run / "config.json").write_text(json.dumps(recorded), encoding="utf-8")
    config = {"output": str(tmp_path / "out"), "model": MODEL, "seeds": [0, 1], "strategies": ["vanilla"],
              "run": {k: v for k, v in RUN_SETTINGS.items() if k != "max_length"},
              "data": {"variants": [{"name": "mine", "train": str(tiny_data["train"]),
                                     "test": str(tiny_data["test"])}]}}  # fmt: skip
    path = write_config(tmp_path / "exp.yaml", config)
    read: list[int] = []

    def resolve(config, texts=None):
        read.append(len(texts))
        return config.replace(max_length=192)

    monkeypatch.setattr(fitting, "resolve_max_length", resolve)
    assert [item.directory for item in prepare_compare(path, write_data=False).plan] == runs
    assert read == [56]  # the variant's training texts, once
    monkeypatch.setattr(fitting, "resolve_max_length", lambda config, texts=None: config.replace(max_length=256))
    with pytest.raises(TailTuneError, match=r"seed-0 is a complete run with other settings \(max_length 192 -> 256\)"):
        prepare_compare(path, write_data=False)


def test_dry_run_after_compare_shows_done(compared, no_training, capsys):
    assert compare("--config", compared["config"], "--dry-run") == 0
    text = capsys.readouterr().out
    assert "(8 done, 0 to do)" in text
    assert text.count("  done  ") == 8
