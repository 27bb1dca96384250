"""README.md's examples run as written: its commands parse, its Python imports resolve, and the first run works."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def _tailtune_commands() -> list[list[str]]:
    """Every ``tailtune ...`` command of the README's bash blocks, as the shell would split it."""
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[-1:] == ["&"]:
                words = words[:-1]
            if words[:1] == ["tailtune"] and "--help" not in words:
                commands.append(words[1:])
    return commands


def test_readme_commands_parse():
    """Each tailtune command the README shows names a command and options that exist, with values they take."""
    from tailtune.cli import build_parser

    commands = _tailtune_commands()
    assert ["train", "--train", "my.csv", "--test", "my_test.csv", "--model", "builtin:minilm", "--output",
            "runs/first"] in commands  # fmt: skip
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README: 'tailtune {' '.join(argv)}' does not parse")


def test_readme_python_imports_resolve():
    """The README's Python examples compile, and what they import exists (no hub, no undefined data source)."""
    blocks = _blocks("python")
    assert blocks and 'TailTuner(model="builtin:minilm"' in blocks[0]
    for block in blocks:
        for node in ast.parse(block).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                exec(compile(ast.Module([node], type_ignores=[]), "README.md", "exec"), {})


@pytest.mark.slow
def test_readme_first_python_example_runs(capsys):
    """The first screen's Python example trains on the embedded data and scores its test articles (about a minute
    on 2 CPU cores)."""
    exec(compile(_blocks("python")[0], "README.md", "exec"), {})
    score, predicted = capsys.readouterr().out.splitlines()[-2:]
    assert 0.8 < float(score) <= 1.0 and predicted.startswith("[")
