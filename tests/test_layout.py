"""The package's shape: layers that import only downwards, small modules, and the former module paths still
importing."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import tailtune

PACKAGE = Path(tailtune.__file__).parent
#: What each layer may import of the others (beside the top-level modules). A lower layer never reaches up.
ALLOWED = {
    "data": set(),
    "models": {"data"},
    "training": {"data", "models"},
    "runs": {"data", "models", "training"},
}
UPPER = {"data", "models", "training", "runs", "experiments", "report", "cli"}


def _imports(path: Path) -> set[str]:
    """The ``tailtune.*`` modules a file imports, at any depth (imports inside functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tailtune"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tailtune"))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_downwards(layer):
    """``models`` never imports ``runs``, ``data`` imports no other layer, and so on: a layer can be read and
    tested without the ones above it. A model family's loader may name the estimator (``tailtune.classifier``)."""
    wrong = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in _imports(path):
            parts = module.split(".")
            if len(parts) > 1 and parts[1] in UPPER - ALLOWED[layer] - {layer}:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong, "; ".join(wrong)


def test_no_module_over_500_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, long


@pytest.mark.parametrize("former", sorted(tailtune.MOVED_MODULES))
def test_former_module_paths_import_the_module_at_its_new_place(former):
    moved = importlib.import_module(f"tailtune.{former}")
    current = importlib.import_module(f"tailtune.{tailtune.MOVED_MODULES[former]}")
    assert moved is current
    assert current.__spec__.name == current.__name__  # the alias leaves the module's own spec alone


def test_former_names_through_packages_still_resolve():
    from tailtune.run import train_run

    from tailtune.data import LabelMap, read_dataset
    from tailtune.training import StageHooks, predict_logits

    assert read_dataset.__module__ == "tailtune.data.readers" and LabelMap.__module__ == "tailtune.data.types"
    assert train_run.__module__ == "tailtune.runs.train"
    assert StageHooks.__module__ == predict_logits.__module__ == "tailtune.training.loop"


def test_names_that_moved_between_modules_still_import_from_the_former_ones():
    from tailtune.imbalance import SPLIT_ROLES, write_imbalanced
    from tailtune.rundir import RunRecord, check_poolable, find_runs, load_run

    assert load_run.__module__ == RunRecord.__module__ == "tailtune.runs.records"
    assert find_runs is importlib.import_module("tailtune.runs.records").find_runs and callable(check_poolable)
    assert write_imbalanced.__module__ == "tailtune.data.split_folder" and "train" in SPLIT_ROLES
    with pytest.raises(AttributeError):
        importlib.import_module("tailtune.rundir").no_such_name  # noqa: B018
