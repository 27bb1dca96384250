"""Tests of durations as written (``--time-budget 10m``) and of the ``time_budget`` setting that reads them."""

from __future__ import annotations

import pytest
from conftest import run_cli

from tailtune.config import RunConfig
from tailtune.durations import format_duration, parse_duration
from tailtune.errors import TailTuneError
from tailtune.strategies import build_run_config


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2m30s", 150), ("1.5h", 5400), ("600", 600),
     ("45.5", 45.5), (" 10M ", 600), (120, 120), (2.5, 2.5)],
)  # fmt: skip
def test_parse_duration(written, seconds):
    assert parse_duration(written) == seconds


@pytest.mark.parametrize("written", ["10x", "m", "", "1m1h", "10 minutes", "-5", "0", "0s", "inf", "nan", True, None])
def test_parse_duration_refuses(written):
    with pytest.raises(TailTuneError, match=r"^must be .*(90s|seconds)"):
        parse_duration(written)


def test_format_duration():
    assert [format_duration(s) for s in (4.26, 42, 185, 4320)] == ["4.3 s", "42 s", "3 min 05 s", "1 h 12 min"]


@pytest.mark.parametrize(("given", "seconds"), [("1h30m", 5400.0), (90, 90.0), ("600", 600.0), (None, None)])
def test_time_budget_setting_reads_durations(given, seconds):
    """The API, a YAML config and the command line all give the setting as written; the config holds seconds."""
    assert build_run_config("m", settings={"time_budget": given}).time_budget == seconds
    assert RunConfig(model="m", stages=build_run_config("m").stages, time_budget=given).time_budget == seconds


def test_time_budget_setting_refuses_with_its_name():
    with pytest.raises(TailTuneError, match=r"^time_budget must be a duration such as 90s") as caught:
        build_run_config("m", settings={"time_budget": "soon"})
    assert caught.value.setting == "time_budget"


@pytest.mark.parametrize("command", ["train", "tune", "compare"])
def test_cli_refuses_a_bad_time_budget_in_one_line(capsys, tmp_path, tiny_data, tiny_model, command):
    """Each command refuses a duration it cannot read in one line naming --time-budget, before any training."""
    (tmp_path / "exp.yaml").write_text(
        f"output: {tmp_path / 'out'}\nmodel: {tiny_model}\nseeds: [1]\nstrategies: [vanilla]\n"
        f"data:\n  variants:\n    - {{name: v, train: {tiny_data['train']}, test: {tiny_data['test']}}}\n"
    )
    argv = {
        "train": ["train", "--model", tiny_model, "--train", tiny_data["train"], "--output", tmp_path / "run"],
        "tune": ["tune", "--model", tiny_model, "--train", tiny_data["train"], "--output", tmp_path / "tune"],
        "compare": ["compare", "--config", tmp_path / "exp.yaml"],
    }[command]
    code, out, err = run_cli(capsys, *argv, "--time-budget", "10 parsecs")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "tailtune: error: --time-budget must be a duration such as 90s, 10m, 1h or 1h30m, or plain seconds, got "
        "'10 parsecs'"
    ]
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()
