"""tailtune: fine-tune transformer text classifiers on class-imbalanced (long-tailed) data."""

from __future__ import annotations

import importlib
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
