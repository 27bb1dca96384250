"""Tests of the stage and run configs: validation, YAML coercion, round trips and stage resolution."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tailtune.config import CHOICES, RunConfig, StageConfig, load_yaml
from tailtune.errors import TailTuneError
from tailtune.models.scopes import scope_top_k, validate_scope
from tailtune.strategies import apply_stage_overrides, broadcast, build_run_config, get_strategy


def resolve(strategy: str, stages: list[dict] | None = None, **settings) -> list[StageConfig]:
    """The stages of a run config built the one way the library builds them."""
    return build_run_config("m", strategy, settings=settings, stages=stages).stages


def run_config(strategy: str = "two-stage", **settings) -> RunConfig:
    return build_run_config("m", strategy, settings=settings)


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"lr": 0}, "learning rate must be > 0, got 0"),
        ({"lr": -1e-5}, "learning rate must be > 0"),
        ({"beta": 1.0}, "beta must be in [0, 1), got 1.0"),
        ({"beta": -0.1}, "beta must be in [0, 1)"),
        ({"epochs": -1}, "epochs must be >= 0, got -1"),
        ({"epochs": 1.5}, "epochs must be a whole number, got 1.5"),
        ({"epochs": True}, "epochs must be a number, got True"),
        ({"lr": [1e-3]}, "lr must be a number, got [0.001]"),
        ({"loss": "hinge"}, "unknown loss 'hinge'"),
        ({"weights": "squared"}, "unknown weights 'squared'"),
        ({"trainable": "middle"}, "unknown trainable scope 'middle'"),
        ({"trainable": "top0"}, "unknown trainable scope 'top0'"),
        ({"sampler": "oversample"}, "unknown sampler 'oversample'"),
        ({"loss": "focal", "loss_params": {"tau": 0.25}}, "unknown parameter(s) tau for loss 'focal'"),
        ({"batch_size": 0}, "batch size must be >= 1"),
        ({"warmup_ratio": 1.0}, "warmup_ratio must be in [0, 1)"),
        ({"weight_decay": -0.01}, "weight_decay must be >= 0"),
        ({"max_grad_norm": 0}, "max_grad_norm must be > 0"),
        ({"lr": "fast"}, "lr must be a number, got 'fast'"),
    ],
)
def test_stage_validation_names_the_option(changes, fragment):
    """Each bad stage value raises TailTuneError naming the stage and the option at fault."""
    with pytest.raises(TailTuneError) as info:
        StageConfig(name="s1", **changes)
    assert fragment in str(info.value)
    if "scope" not in fragment:  # validate_scope's message names the scope value but not the stage
        assert "stage 's1'" in str(info.value)


def test_stage_error_lists_valid_choices():
    """Unknown loss/weights/sampler/param messages list what is valid."""
    with pytest.raises(TailTuneError, match=r"valid: .*balanced-softmax.*ce.*focal.*ldam.*logit-adjusted"):
        StageConfig(loss="hinge")
    with pytest.raises(TailTuneError, match=r"valid: effective, inverse, inverse-sqrt, none"):
        StageConfig(weights="squared")
    with pytest.raises(TailTuneError, match=r"valid: random, class-balanced, sqrt"):
        StageConfig(sampler="oversample")
    with pytest.raises(TailTuneError, match=r"valid: max_margin, scale"):
        StageConfig(loss="ldam", loss_params={"margin": 1.0})
    with pytest.raises(TailTuneError, match=r"valid: none"):
        StageConfig(loss="ce", loss_params={"gamma": 2.0})


def test_stage_accepts_edge_values():
    """beta 0, epochs 0, top<k> with large k and max_grad_norm None are valid."""
    stage = StageConfig(beta=0.0, epochs=0, trainable="top12", max_grad_norm=None, warmup_ratio=0.5)
    assert (stage.beta, stage.epochs, stage.trainable, stage.max_grad_norm) == (0.0, 0, "top12", None)


@pytest.mark.parametrize("setting", sorted(CHOICES))
def test_choices_are_the_values_the_config_takes(setting):
    """CHOICES, which the command line offers, lists exactly the values a config accepts for each setting."""
    stage_fields = {f.name for f in dataclasses.fields(StageConfig)}

    def build(value):
        if setting in stage_fields:
            return StageConfig(**{setting: value})
        return RunConfig(model="m", stages=[StageConfig()], **{setting: value})

    for value in CHOICES[setting]:
        assert getattr(build(value), setting) == value
    with pytest.raises(TailTuneError, match="unknown"):
        build("not-a-" + setting)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"head": "deep"}, "unknown head 'deep'; valid: linear, mlp"),
        ({"max_length": 1}, "max_length must be >= 2, got 1"),
        ({"max_length": 0}, "max_length must be >= 2, got 0"),
        ({"max_length": -3}, "max_length must be >= 2, got -3"),
        ({"max_length": 32.5}, "max_length must be a whole number, got 32.5"),
        ({"max_length": "32.5"}, "max_length must be a whole number, got '32.5'"),
        ({"max_length": True}, "max_length must be a number, got True"),
        ({"max_length": "long"}, "max_length must be a number, got 'long'"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"batch_size": 8.5}, "batch_size must be a whole number, got 8.5"),
        ({"eval_batch_size": 0}, "eval_batch_size must be >= 1"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be >= 1"),
        ({"mixed_precision": "fp8"}, "unknown mixed precision 'fp8'"),
        ({"logging_steps": 0}, "logging_steps must be >= 1"),
        ({"seed": "abc"}, "seed must be a number, got 'abc'"),
        ({"strategy": "nope"}, "unknown strategy 'nope'"),
    ],
)
def test_run_validation_names_the_option(changes, fragment):
    """Each bad run value raises TailTuneError naming the option."""
    with pytest.raises(TailTuneError) as info:
        run_config(**changes)
    assert fragment in str(info.value)


def test_max_length_left_out_is_none_until_the_model_is_known():
    """Not given, max_length stays None (fitted to the model when a run starts); a given value is kept."""
    assert run_config().max_length is None
    assert RunConfig.from_dict(run_config().to_dict()).max_length is None
    assert run_config(max_length=512).max_length == 512


@pytest.mark.parametrize("setting", ["max_length", "batch_size", "eval_batch_size", "gradient_accumulation_steps"])
def test_run_count_errors_name_their_setting(setting):
    """The command line turns the setting into its flag (--batch-size), so the error names what was given."""
    with pytest.raises(TailTuneError) as info:
        run_config(**{setting: 0})
    assert info.value.setting == setting and str(info.value).startswith(f"{setting} must be >= ")


def test_validate_scope_and_top_k():
    """Scopes parse to the number of top layers (0 for head, None for all)."""
    for scope in ("head", "all", "top1", "top24"):
        validate_scope(scope)
    assert [scope_top_k(s) for s in ("head", "top1", "top3", "all")] == [0, 1, 3, None]
    for bad in ("top", "top-1", "Top1", "top01", "top1 ", ""):
        with pytest.raises(TailTuneError, match="unknown trainable scope"):
            validate_scope(bad)


# ------------------------------------------------------------------------------------- YAML coercion


def test_numeric_strings_are_coerced():
    """YAML reads 1e-4 as a string; configs turn such strings into the field's number type."""
    stage = StageConfig(lr="1e-4", beta="0.999", epochs="3", batch_size="8", max_grad_norm="2", warmup_ratio="0.1")
    assert stage.lr == 1e-4 and isinstance(stage.lr, float)
    assert stage.beta == 0.999
    assert stage.epochs == 3 and isinstance(stage.epochs, int)
    assert stage.batch_size == 8 and isinstance(stage.batch_size, int)
    assert stage.max_grad_norm == 2.0 and isinstance(stage.max_grad_norm, float)
    run = run_config(max_length="64", seed="7", batch_size=8.0, eval_batch_size=np.int64(32), eval_fraction="1e-1")
    assert (run.max_length, run.seed, run.batch_size, run.eval_batch_size) == (64, 7, 8, 32)
    assert all(type(v) is int for v in (run.max_length, run.seed, run.batch_size, run.eval_batch_size))
    assert run.eval_fraction == 0.1 and run_config(max_length="1e2").max_length == 100


def test_int_for_float_field_becomes_float():
    """An int given for a float field (lr: 1) is stored as a float; bools are left alone."""
    stage = StageConfig(lr=1, beta=0)
    assert isinstance(stage.lr, float) and isinstance(stage.beta, float)
    assert run_config(feature_cache=False).feature_cache is False


def test_yaml_file_values_are_coerced(tmp_path):
    """A YAML config with 1e-4 (no dot) yields float learning rates through build_run_config."""
    path = tmp_path / "run.yaml"
    path.write_text("strategy: two-stage\nlr: [1e-3, 5e-5]\nstages:\n  - {beta: 9e-1}\n", encoding="utf-8")
    data = load_yaml(path)
    assert data["lr"] == ["1e-3", "5e-5"]  # PyYAML's reading, which the configs must undo
    stages = resolve(data["strategy"], data["stages"], lr=data["lr"])
    assert [s.lr for s in stages] == [1e-3, 5e-5]
    assert stages[0].beta == 0.9


# ---------------------------------------------------------------------------------------- round trip


def test_round_trip_through_dict():
    """to_dict/from_dict restores an equal RunConfig, stages included."""
    run = RunConfig(
        model="some/model",
        strategy="custom",
        stages=[
            StageConfig(name="a", trainable="top2", loss="focal", loss_params={"gamma": 1.5}, lr=3e-4, epochs=2),
            StageConfig(name="b", sampler="sqrt", batch_size=4, max_grad_norm=None),
        ],
        head="mlp",
        max_length=32,
        seed=5,
        cache_dir="/tmp/x",
    )
    data = run.to_dict()
    assert data["stages"][0]["loss_params"] == {"gamma": 1.5}
    assert data["stages"][1]["max_grad_norm"] is None
    again = RunConfig.from_dict(data)
    assert again == run
    assert again.to_dict() == data
    assert StageConfig.from_dict(run.stages[0].to_dict()) == run.stages[0]


def test_default_run_uses_two_stage():
    """build_run_config without a strategy gives two-stage; a RunConfig without stages is an error."""
    run = build_run_config("m")
    assert [s.name for s in run.stages] == ["stage1", "stage2"]
    assert build_run_config("m", "vanilla").stages == get_strategy("vanilla")
    with pytest.raises(TailTuneError, match="a run needs at least one stage"):
        RunConfig(model="m")


def test_unknown_keys_in_from_dict():
    """Unknown keys in run or stage dicts raise errors naming the key and listing valid keys."""
    with pytest.raises(TailTuneError, match=r"run config: unknown key\(s\) learning_rate; valid: .*max_length"):
        RunConfig.from_dict({"model": "m", "learning_rate": 1e-3})
    with pytest.raises(TailTuneError, match=r"stage 2: unknown key\(s\) lrate, steps; valid: .*lr"):
        RunConfig.from_dict({"model": "m", "stages": [{"lr": 1e-3}, {"lrate": 1, "steps": 3}]})
    with pytest.raises(TailTuneError, match=r"stage: expected a mapping, got list"):
        StageConfig.from_dict([1, 2])


def test_replace_validates_again():
    """StageConfig.replace re-runs validation."""
    stage = StageConfig()
    assert stage.replace(lr=5e-4).lr == 5e-4
    with pytest.raises(TailTuneError, match="learning rate must be > 0"):
        stage.replace(lr=0.0)


# ------------------------------------------------------------------------------------- stage overrides


def test_per_stage_overrides():
    """Overrides by position change only the named fields of that stage."""
    stages = resolve("two-stage", [{"lr": 2e-4}, {"epochs": 3, "sampler": "sqrt"}])
    assert (stages[0].lr, stages[0].epochs, stages[0].loss, stages[0].trainable) == (2e-4, 1, "ldam", "top1")
    assert stages[0].loss_params == {"max_margin": 0.5, "scale": 1.0}
    assert (stages[1].lr, stages[1].epochs, stages[1].sampler) == (1e-4, 3, "sqrt")


def test_shorter_override_list_leaves_later_stages():
    """An override list shorter than the strategy changes only the first stages."""
    stages = resolve("two-stage", [{"epochs": 4}])
    assert [s.epochs for s in stages] == [4, 1]
    assert stages[1] == get_strategy("two-stage")[1]


def test_loss_override_drops_old_params_and_params_merge():
    """Changing the loss drops the old loss's params; a loss_params override merges into the stage's."""
    changed = resolve("two-stage", [{"loss": "focal"}])[0]
    assert (changed.loss, changed.loss_params) == ("focal", {})
    merged = resolve("two-stage", [{"loss_params": {"scale": 30.0}}])[0]
    assert merged.loss_params == {"max_margin": 0.5, "scale": 30.0}
    explicit = resolve("two-stage", [{"loss": "focal", "loss_params": {"gamma": 1.0}}])[0]
    assert explicit.loss_params == {"gamma": 1.0}


def test_too_many_overrides_and_unknown_field():
    """More overrides than stages, or an unknown field, raise clear errors."""
    with pytest.raises(TailTuneError, match=r"3 stage override\(s\) given but the strategy has 2 stage\(s\)"):
        resolve("two-stage", [{}, {}, {}])
    with pytest.raises(TailTuneError, match=r"stage 2 override: unknown key\(s\) learning_rate"):
        apply_stage_overrides(get_strategy("two-stage"), [{}, {"learning_rate": 1.0}])
    with pytest.raises(TailTuneError, match="stage 'stage1': learning rate must be > 0"):
        resolve("two-stage", [{"lr": -1}])


def test_shortcut_one_value_or_one_per_stage():
    """A scalar or one-item list applies to every stage; a list gives one value per stage."""
    assert broadcast("lr", 1e-3, 2) == [{"lr": 1e-3}, {"lr": 1e-3}]
    assert broadcast("epochs", [3], 2) == [{"epochs": 3}, {"epochs": 3}]
    assert broadcast("stage_batch_size", [4, 8], 2) == [{"batch_size": 4}, {"batch_size": 8}]
    assert resolve("two-stage", lr=[1e-3, 5e-5], beta=None)[1].lr == 5e-5
    stages = resolve("two-stage", lr=[1e-3, 5e-5], epochs=2, trainable=["head"])
    assert [s.lr for s in stages] == [1e-3, 5e-5]
    assert [s.epochs for s in stages] == [2, 2]
    assert [s.trainable for s in stages] == ["head", "head"]


def test_shortcut_wrong_length():
    """A list whose length is neither 1 nor the number of stages names the setting and both counts."""
    with pytest.raises(
        TailTuneError, match=r"^lr: give one value for every stage or one per stage \(2\), got 3"
    ) as exc:
        resolve("two-stage", lr=[1e-3, 1e-4, 1e-5])
    assert exc.value.setting == "lr"
    with pytest.raises(TailTuneError, match=r"^stage_batch_size: .* \(1\), got 2"):
        broadcast("stage_batch_size", [4, 8], 1)


def test_unknown_setting():
    """An unknown setting is reported with the valid ones."""
    with pytest.raises(TailTuneError, match=r"unknown setting\(s\) learning_rate; valid: .*lr"):
        resolve("two-stage", learning_rate=1e-3)


def test_shortcuts_win_over_stage_overrides():
    """Shortcuts are applied after per-stage overrides."""
    stages = resolve("two-stage", [{"lr": 1e-2}], lr=3e-4)
    assert [s.lr for s in stages] == [3e-4, 3e-4]


def test_custom_strategy():
    """custom builds exactly the given stages and needs a stages list."""
    stages = resolve(
        "custom",
        [{"name": "probe", "trainable": "head", "lr": "1e-3"}, {"name": "ft", "loss": "focal"}],
        epochs=[2, 1],
    )
    assert [(s.name, s.trainable, s.loss, s.lr, s.epochs) for s in stages] == [
        ("probe", "head", "ce", 1e-3, 2),
        ("ft", "all", "focal", 1e-5, 1),
    ]
    with pytest.raises(TailTuneError, match="strategy 'custom' needs a 'stages' list"):
        resolve("custom")
    with pytest.raises(TailTuneError, match=r"stage 1: unknown key\(s\) rate"):
        resolve("custom", [{"rate": 1}])


def test_resolve_unknown_strategy():
    """An unknown strategy name is reported with the valid names."""
    with pytest.raises(TailTuneError, match=r"unknown strategy 'three-stage'; valid: vanilla, .*two-stage"):
        resolve("three-stage")


# ------------------------------------------------------------------------------------------ load_yaml


def test_load_yaml_errors(tmp_path):
    """Missing, malformed or non-mapping YAML files raise one-line errors naming the file."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(TailTuneError, match=r"nope.yaml: config file not found"):
        load_yaml(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1e-3, 5e-5\nepochs: 2\n", encoding="utf-8")
    with pytest.raises(TailTuneError, match=r"bad.yaml: not valid YAML \(") as info:
        load_yaml(bad)
    assert "\n" not in str(info.value)
    listing = tmp_path / "list.yaml"
    listing.write_text("- lr: 1\n- lr: 2\n", encoding="utf-8")
    with pytest.raises(TailTuneError, match=r"list.yaml: expected a mapping"):
        load_yaml(listing)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"lr: \xff\xfe\n")
    with pytest.raises(TailTuneError, match=r"binary.yaml: not valid YAML"):
        load_yaml(binary)


def test_load_yaml_empty_and_valid(tmp_path):
    """An empty file is an empty mapping; a valid one is read as is."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_yaml(empty) == {}
    good = tmp_path / "good.yaml"
    good.write_text("model: m\nepochs: 2\nfeature_cache: false\n", encoding="utf-8")
    assert load_yaml(str(good)) == {"model": "m", "epochs": 2, "feature_cache": False}
