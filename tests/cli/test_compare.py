"""``tailtune compare``: the command's error line and the summary it prints."""

from __future__ import annotations

import shutil

from compare_config import compare, config_dict, write_config

from tailtune.cli import main


def test_cli_reports_config_error(tmp_path, tiny_model, source_csv, no_training, capsys):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["data"]["make"]["ratios"] = [0.5]
    path = write_config(tmp_path / "exp.yaml", config)
    assert main(["compare", "--config", str(path), "-q"]) == 2
    assert f"{path}: data.make.ratios[0] must be >= 1" in capsys.readouterr().err


def test_cli_prints_the_summary(compared, tmp_path, no_training, capsys):
    out = tmp_path / "out"
    shutil.copytree(compared["output"], out)
    assert compare("--config", compared["config"], "--output", out) == 0
    text = capsys.readouterr().out
    assert "Δ macro-F1 vs vanilla" in text
    assert f"summary: {out / 'summary.csv'}, {out / 'summary.json'} ('tailtune report {out}' makes" in text
