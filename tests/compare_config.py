"""The experiment file the ``tailtune compare`` tests run, and helpers that write and run it.

:func:`config_dict` is 2 ratios x 2 strategies x 2 seeds of one epoch per stage on the tiny model; the
``compared`` fixture of ``conftest.py`` runs it once for the session.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tailtune.cli import main

VARIANTS = ("ratio-2", "ratio-4")
STRATEGIES = ("vanilla", "two-stage")
SEEDS = (1, 2)


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
    """Write ``config`` as the YAML file ``path``; return the path."""
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_dirs(output: Path) -> list[Path]:
    """The run directories of :func:`config_dict` under ``output``, in the order they run."""
    return [output / v / s / f"seed-{k}" for v in VARIANTS for s in STRATEGIES for k in SEEDS]


def compare(*argv: str | Path) -> int:
    """``tailtune compare ARGV -q``; the exit status."""
    return main(["compare", *(str(a) for a in argv), "-q"])
