"""tailtune: fine-tune transformer text classifiers on class-imbalanced (long-tailed) data."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Re-exports resolve on first use, so that `tailtune --help` does not wait for torch and transformers.
_EXPORTS = {
    "TailTuner": "tailtune.classifier",
    "RunConfig": "tailtune.config",
    "StageConfig": "tailtune.config",
    "TailTuneError": "tailtune.errors",
    "STRATEGIES": "tailtune.strategies",
    "get_strategy": "tailtune.strategies",
    "build_run_config": "tailtune.strategies",
}
__all__ = ["STRATEGIES", "RunConfig", "StageConfig", "TailTuneError", "TailTuner", "__version__", "build_run_config",
           "get_strategy"]  # fmt: skip

if TYPE_CHECKING:
    from tailtune.classifier import TailTuner
    from tailtune.config import RunConfig, StageConfig
    from tailtune.errors import TailTuneError
    from tailtune.strategies import STRATEGIES, build_run_config, get_strategy


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tailtune' has no attribute {name!r}")


#: Modules that moved into the layer packages, by their former name: ``import tailtune.fitting`` and
#: ``from tailtune.run import train_run`` keep working and give the module at its new place (the same object).
MOVED_MODULES = {
    "imbalance": "data.imbalance", "builtin": "data.builtin",
    "modeling": "models.transformer", "pooling": "models.pooling", "saved": "models.saved",
    "scopes": "models.scopes", "classic": "models.tfidf",
    "selection": "training.selection", "features": "training.features", "batching": "training.batching",
    "losses": "training.losses", "weights": "training.weights", "calibration": "training.calibration",
    "precision": "training.precision", "lengths": "models.lengths", "fitting": "training.fitting",
    "rundir": "runs.rundir", "run": "runs.train", "tracking": "runs.tracking", "modelcard": "models.card",
    "tune": "experiments.tune", "demo": "experiments.demo",
}  # fmt: skip


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``tailtune.<former name>`` and hands back the module at its new place."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        prefix, _, name = fullname.partition(".")
        if prefix != __name__ or name not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        module = importlib.import_module(f"{__name__}.{MOVED_MODULES[spec.name.partition('.')[2]]}")
        spec.loader_state = module.__spec__  # the import system sets the alias's spec on it: restored below
        return module

    def exec_module(self, module: Any) -> None:
        """The module ran when it was imported at its new place; it keeps its own spec."""
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
