"""The options of run settings (:mod:`tailtune.cli.options`) follow the config's declarations."""

from __future__ import annotations


def test_options_of_settings_follow_the_config():
    """An option of a run setting or stage shortcut has the config's number type and valid values, and the default
    its help names is the config's."""
    import argparse

    from tailtune.cli import build_parser
    from tailtune.cli.options import setting_field
    from tailtune.config import CHOICES, number_type
    from tailtune.settings import declaration
    from tailtune.strategies import SETTINGS

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    checked = set()
    for command in ("train", "tune"):
        for action in commands[command]._actions:
            if action.dest not in SETTINGS or action.nargs == 0:  # --no-refit and the like store a boolean
                continue
            field = setting_field(action.dest)
            # A setting read from how it is written (--time-budget 10m) reaches the config as given, which reads it.
            assert action.type is (None if declaration(field).parse else number_type(field)), action.dest
            assert action.choices == (CHOICES.get(field.name) if action.nargs is None else None), action.dest
            if "default" in action.help and field.default not in (None, "none") and isinstance(field.default, str):
                assert field.default in action.help, action.dest
            elif "default" in action.help and isinstance(field.default, (int, float)):
                assert f"{field.default:g}" in action.help, action.dest
            checked.add(action.dest)
    assert {"head", "seed", "mixed_precision", "pooling", "calibrate", "patience", "lr", "loss"} <= checked
    assert "time_budget" in checked


def test_help_of_settings_is_their_declaration():
    """train's options of settings, and predict's, say what the settings' declarations say (once, in the config)."""
    import argparse

    from tailtune.cli import build_parser
    from tailtune.cli.options import HELP_NUMBERS, declaring_field
    from tailtune.config import PredictSettings
    from tailtune.settings import declaration
    from tailtune.strategies import SETTINGS

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command, config, names in (("train", None, SETTINGS), ("predict", PredictSettings, ("max_length",
                                   "long_texts", "mixed_precision"))):  # fmt: skip
        actions = [a for a in commands[command]._actions if a.dest in names and a.nargs != 0]
        assert actions, command
        for action in actions:
            field = declaring_field(action.dest, config)
            declared = declaration(field).help
            assert "{" not in action.help and declared.split("{")[0] in action.help, action.dest
            if "{" not in declared:
                assert action.help == declared.format(**HELP_NUMBERS), action.dest
    batch = next(a for a in commands["predict"]._actions if a.dest == "batch_size")
    assert batch.help == "batch size (default 64)" and batch.type is int


def test_train_help_marks_the_options_it_needs_and_names_the_embedded_model():
    """--train, --output and --model are needed unless --config gives them, which argparse cannot require (the
    file is read later): their help says so, and --model's names builtin:minilm, the model a first run needs."""
    import argparse

    from tailtune.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    helps = {action.dest: " ".join(action.help.split()) for action in commands["train"]._actions if action.help}
    for option in ("train", "output", "model"):
        assert "required unless given in --config" in helps[option], option
    assert "builtin:minilm" in helps["model"]
    assert not any(action.required for action in commands["train"]._actions)  # --config may still give them
