"""Settings declared as data (:mod:`tailtune.settings`): one declaration per setting, one validator for every config,
and no number that is not finite."""

from __future__ import annotations

import dataclasses
import math

import pytest
from conftest import run_cli

from tailtune.config import RunConfig, StageConfig, TfidfStage, number_type
from tailtune.errors import TailTuneError
from tailtune.strategies import NULLABLE_SETTINGS, build_run_config

CONFIGS = (RunConfig, StageConfig, TfidfStage)
NON_FINITE = [math.nan, math.inf, -math.inf, "inf", "-Infinity", "nan"]


def build(cls: type | str, **values):
    """A config of ``cls`` (``"PredictSettings"``: the prediction settings) with the given values, defaults else."""
    if cls == "PredictSettings":
        from tailtune.config import PredictSettings

        return PredictSettings(**values)
    if cls is RunConfig:
        return RunConfig(model="m", stages=[StageConfig()], **values)
    return cls(**values)


def numeric_settings(*configs: type, kind: type | None = None) -> list[tuple[type, str]]:
    """Each (config, field) pair of the configs' number fields (of the one ``kind`` where given)."""
    return [(cls, f.name) for cls in configs for f in dataclasses.fields(cls)
            if number_type(f) is not None and kind in (None, number_type(f))]  # fmt: skip


@pytest.mark.parametrize(("cls", "name"), numeric_settings(*CONFIGS), ids=lambda x: getattr(x, "__name__", x))
@pytest.mark.parametrize("value", NON_FINITE, ids=repr)
def test_every_number_must_be_finite(cls, name, value):
    """nan, inf and -inf (YAML .inf, 'inf' on the command line) are refused for every numeric setting, in one line
    naming it, whatever its range (C > 0 held for inf)."""
    with pytest.raises(TailTuneError) as info:
        build(cls, **{name: value})
    message = str(info.value)
    assert f"{name} must be a " in message and "finite" in message and message.endswith(f"got {value!r}"), message
    assert "\n" not in message


def test_float_settings_are_all_covered():
    """The rule above reaches every float setting, those that took inf or nan before among them."""
    floats = {name for _, name in numeric_settings(*CONFIGS, kind=float)}
    assert {"C", "lr", "weight_decay", "adam_epsilon", "max_grad_norm", "stop_after", "beta", "warmup_ratio",
            "eval_fraction", "attention_dropout"} <= floats  # fmt: skip


@pytest.mark.parametrize("name", ["max_length", "eval_batch_size"])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_prediction_settings_must_be_finite(name, value):
    """The prediction settings are their own type, checked by the same validator."""
    with pytest.raises(TailTuneError, match=rf"^{name} must be a finite number, got {value!r}$") as info:
        build("PredictSettings", **{name: value})
    assert info.value.setting == name  # the command line names --max-length


def test_loss_parameters_must_be_finite():
    """A loss parameter of .inf is refused with the config, not when the loss is built."""
    with pytest.raises(TailTuneError, match=r"^stage 's': loss_params.gamma must be a finite number, got inf$"):
        StageConfig(name="s", loss="focal", loss_params={"gamma": math.inf})
    assert StageConfig(loss="focal", loss_params={"gamma": 2.0}).loss_params == {"gamma": 2.0}


@pytest.mark.parametrize(
    ("config", "values", "message"),
    [
        (StageConfig, {"beta": 1.0}, "stage 's': beta must be in [0, 1), got 1.0"),
        (StageConfig, {"lr": 0}, "stage 's': learning rate must be > 0, got 0.0"),
        (StageConfig, {"batch_size": 0}, "stage 's': batch size must be >= 1 (or null to use the run's), got 0"),
        (StageConfig, {"sampler": "x"}, "stage 's': unknown sampler 'x'; valid: random, class-balanced, sqrt"),
        (TfidfStage, {"C": 0}, "stage 's': C must be > 0, got 0.0"),
        (TfidfStage, {"sublinear_tf": "yes"}, "stage 's': sublinear_tf must be true or false, got 'yes'"),
        (RunConfig, {"patience": 0}, "patience must be >= 1 (or null to never stop early), got 0"),
        (RunConfig, {"pooling": "max"}, "pooling: unknown value 'max'; valid: auto, cls, mean"),
        (RunConfig, {"head": "deep"}, "unknown head 'deep'; valid: linear, mlp"),
        (RunConfig, {"refit": "yes"}, "refit must be true, false or auto, got 'yes'"),
        (RunConfig, {"logging_steps": 0}, "logging_steps must be >= 1, got 0"),
        ("PredictSettings", {"long_texts": "all"}, "long_texts: unknown value 'all'; valid: auto, chunks, truncate"),
    ],
)
def test_messages_are_worded_from_the_declaration(config, values, message):
    """One line: the setting, the value, what is allowed."""
    if config in (StageConfig, TfidfStage):
        values = {"name": "s", **values}
    with pytest.raises(TailTuneError) as info:
        build(config, **values)
    assert str(info.value) == message


def test_errors_name_a_setting_the_command_line_offers():
    """A run setting's error carries its name (the command line then names its flag) unless no option sets it."""
    for values, setting in [({"eval_fraction": 1}, "eval_fraction"), ({"pooling": "x"}, "pooling"),
                            ({"logging_steps": 0}, None), ({"head": "x"}, None)]:  # fmt: skip
        with pytest.raises(TailTuneError) as info:
            build(RunConfig, **values)
        assert info.value.setting == setting, values


def test_every_setting_is_declared_with_help():
    """Each field users set declares itself (so it is validated and has a help line)."""
    from tailtune.config import PredictSettings
    from tailtune.settings import declaration, declared_fields

    for cls in (*CONFIGS, PredictSettings):
        undeclared = {f.name for f in dataclasses.fields(cls)} - {f.name for f in declared_fields(cls)}
        assert undeclared <= {"model", "stages", "name"}, cls
        assert all(declaration(f).help for f in declared_fields(cls)), cls


def test_null_means_a_choice_where_declared():
    """The settings whose None is a value (not "not given") are those that declare what None means."""
    assert {"patience", "cache_dir", "min_steps", "stage_batch_size", "attention_dropout"} <= NULLABLE_SETTINGS
    assert not {"max_length", "eval_steps", "seed", "lr"} & NULLABLE_SETTINGS  # None: not given, the default
    assert build_run_config("m", "vanilla", settings={"patience": None}).patience is None
    assert build_run_config("m", "vanilla", settings={"max_length": None}).max_length is None


def test_prediction_settings_default_as_training_does():
    """Not given, a prediction setting has the run's default; given, it is coerced as for training."""
    from tailtune.config import PredictSettings

    assert PredictSettings() == PredictSettings(max_length=None, long_texts="auto", eval_batch_size=64,
                                                mixed_precision="auto")  # fmt: skip
    assert PredictSettings(max_length="16", eval_batch_size=8.0).max_length == 16


def test_tfidf_infinite_c_from_a_config_file_is_one_line(tiny_data, tmp_path, capsys):
    """train --config with a TF-IDF stage of C: .inf stops before fitting, in one line; nothing is written."""
    config = tmp_path / "cfg.yaml"
    config.write_text(f"strategy: tfidf\ntrain: {tiny_data['train']}\noutput: {tmp_path / 'run'}\n"
                      "stages:\n  - {C: .inf}\n", encoding="utf-8")  # fmt: skip
    code, stdout, err = run_cli(capsys, "train", "--config", config, "-q")
    assert (code, stdout, err) == (2, "", "tailtune: error: stage 'tfidf': C must be a finite number, got inf\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--lr", "inf"], "stage 'stage1': lr must be a finite number, got inf"),
        (["--beta", "nan"], "stage 'stage1': beta must be a finite number, got nan"),
        (["--eval-fraction=-inf"], "--eval-fraction must be a finite number, got -inf"),
        (["--attention-dropout", "nan"], "--attention-dropout must be a finite number, got nan"),
    ],
)
def test_non_finite_options_are_one_line(tiny_model, tiny_data, tmp_path, capsys, option, message):
    """A float option of inf or nan on the command line is refused naming the setting, before any model loads."""
    code, stdout, err = run_cli(capsys, "train", "--model", tiny_model, "--train", tiny_data["train"],
                                "--output", tmp_path / "run", "-q", *option)  # fmt: skip
    assert (code, stdout, err) == (2, "", f"tailtune: error: {message}\n")
    assert not (tmp_path / "run").exists()
