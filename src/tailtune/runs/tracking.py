"""Experiment trackers: a run's losses, learning rates, validation scores, final metrics and config.

accelerate's tracker classes do the talking to TensorBoard, MLflow and Weights & Biases; this module decides
what goes there. Every ``history.jsonl`` entry becomes scalars at a step that keeps counting across stages
(and across the refit, under ``refit/``), the final metrics are logged once at the end, and the resolved config
is stored as the run's hyper-parameters. TensorBoard writes into the run directory (``RUN/tensorboard``);
MLflow and W&B go wherever their own settings (``MLFLOW_TRACKING_URI``, ``WANDB_*``) send them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from tailtune.config import REPORT_TO
from tailtune.errors import TailTuneError

TRACKING_EXTRA = "pip install 'tailtune[tracking]'"
# The package each tracker imports, and how to get it.
_PACKAGES = {"tensorboard": ("tensorboard", TRACKING_EXTRA), "mlflow": ("mlflow", TRACKING_EXTRA),
             "wandb": ("wandb", "pip install wandb")}  # fmt: skip
TENSORBOARD_DIR = "tensorboard"
PROJECT = "tailtune"
_FINAL_KEYS = ("accuracy", "micro_f1", "macro_f1", "weighted_f1", "balanced_accuracy", "head_f1", "medium_f1",
               "tail_f1")  # fmt: skip


def check_tracker(report_to: str) -> None:
    """Fail before training when the tracker's package is missing, saying what to install."""
    package = _PACKAGES.get(report_to)
    if package is not None and importlib.util.find_spec(package[0]) is None:
        raise TailTuneError(f"report_to {report_to}: the {package[0]} package is missing; {package[1]}",
                            setting="report_to")  # fmt: skip


class RunTracker:
    """One run's connection to a tracker.

    Args:
        report_to: ``tensorboard``, ``mlflow`` or ``wandb``.
        run_dir: Where the run is being written (TensorBoard logs go into its ``tensorboard/``).
        run_name: The run's name in the tracker.
        hparams: The resolved config, stored as hyper-parameters (nested values are flattened to JSON text).
    """

    def __init__(self, report_to: str, run_dir: Path, run_name: str, hparams: dict[str, Any]) -> None:
        from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

        check_tracker(report_to)
        if report_to == "tensorboard":
            self.tracker = TensorBoardTracker(run_name, Path(run_dir) / TENSORBOARD_DIR)
        elif report_to == "mlflow":
            self.tracker = MLflowTracker(experiment_name=PROJECT, run_name=run_name)
        elif report_to == "wandb":
            self.tracker = WandBTracker(PROJECT, name=run_name)
        else:
            raise TailTuneError(f"report_to: unknown tracker {report_to!r}; valid: {', '.join(REPORT_TO)}",
                                setting="report_to")  # fmt: skip
        self.tracker.start()
        self.tracker.store_init_configuration(_flat(hparams))
        self._offsets: dict[tuple[str, int], int] = {}  # (phase, stage) -> steps taken before that stage
        self._current = (0, 0)  # (offset of the stage in progress, its latest step)

    def log_history(self, entry: dict[str, Any]) -> None:
        """Forward one ``history.jsonl`` entry: loss and learning rate, or a validation score."""
        phase = entry.get("phase", "train")
        prefix = "" if phase == "train" else f"{phase}/"
        key = (phase, int(entry["stage"]))
        if key not in self._offsets:
            # A new stage continues the count where the latest stage left it.
            self._offsets[key] = sum(self._current) if self._offsets else 0
        offset = self._offsets[key]
        if "step" in entry:
            self._current = (offset, int(entry["step"]))
            values = {"train/loss": entry["loss"], "train/learning_rate": entry["lr"]}
        else:
            values = {name.replace("_", "/", 1): value for name, value in entry.items()
                      if name.startswith(("validation_", "eval_")) and isinstance(value, (int, float))}  # fmt: skip
        values = {f"{prefix}{name}": float(value) for name, value in values.items()}
        if values:
            self.tracker.log(values, step=sum(self._current))

    def log_final(self, metrics: dict[str, Any]) -> None:
        """Log the final scores (on test data, else eval data) once."""
        split = metrics.get("split")
        if split:
            values = {f"{split}/{key}": float(metrics[key]) for key in _FINAL_KEYS if metrics.get(key) is not None}
            self.tracker.log(values, step=sum(self._current))

    def close(self) -> None:
        """Flush and end the tracker's run."""
        self.tracker.finish()

    def __enter__(self) -> RunTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_tracker(report_to: str, run_dir: Path, run_name: str, hparams: dict[str, Any]) -> RunTracker | None:
    """A started :class:`RunTracker`, or None for ``report_to: none``."""
    return None if report_to == "none" else RunTracker(report_to, run_dir, run_name, hparams)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as trackers take them: scalars as they are, anything nested as JSON text."""
    flat = {}
    for name, value in config.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, sort_keys=True)
    return flat
