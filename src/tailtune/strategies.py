"""Strategies: a name for a list of stages.

Every method tailtune offers, the baselines included, is data: an ordered list of
:class:`~tailtune.config.StageConfig`. The trainer has one code path for all of them.
"""

from __future__ import annotations

from collections.abc import Callable

from tailtune.config import StageConfig
from tailtune.errors import TailTuneError

# The two-stage authors' stage-1 loss: LDAM with a 0.5 maximum margin, scale 1, effective-number weights.
_LDAM = {
    "loss": "ldam",
    "loss_params": {"max_margin": 0.5, "scale": 1.0},
    "weights": "effective",
    "beta": 0.9999,
}


def _finetune(**kw) -> StageConfig:
    return StageConfig(**{"name": "finetune", "trainable": "all", "loss": "ce", "lr": 1e-5, **kw})


STRATEGIES: dict[str, tuple[str, Callable[[], list[StageConfig]]]] = {
    "vanilla": (
        "standard fine-tuning of all parameters with cross-entropy",
        lambda: [_finetune()],
    ),
    "reweight": (
        "fine-tuning of all parameters with LDAM + effective-number weights throughout (the authors' baseline)",
        lambda: [_finetune(name="reweight", **_LDAM)],
    ),
    "two-stage": (
        "stage 1: head + pooler + top layer with LDAM + effective-number weights (lr 1e-4); "
        "stage 2: everything with cross-entropy (lr 1e-5) -- ValizadehAslani et al. 2022",
        lambda: [
            StageConfig(name="stage1", trainable="top1", lr=1e-4, **_LDAM),
            _finetune(name="stage2"),
        ],
    ),
    "lp-ft": (
        "linear probe (head only, cross-entropy, lr 1e-4), then full fine-tuning with cross-entropy",
        lambda: [StageConfig(name="probe", trainable="head", loss="ce", lr=1e-4), _finetune()],
    ),
    "drw": (
        "deferred re-weighting: cross-entropy first, then LDAM + effective-number weights for the last epoch",
        lambda: [_finetune(name="ce"), _finetune(name="reweighted", **_LDAM)],
    ),
    "focal": (
        "fine-tuning of all parameters with focal loss (gamma 2)",
        lambda: [_finetune(name="focal", loss="focal", loss_params={"gamma": 2.0})],
    ),
    "cb-ce": (
        "fine-tuning of all parameters with class-balanced cross-entropy (effective-number weights)",
        lambda: [_finetune(name="cb-ce", weights="effective")],
    ),
    "logit-adjusted": (
        "fine-tuning of all parameters with the logit-adjusted loss (tau 1)",
        lambda: [_finetune(name="logit-adjusted", loss="logit-adjusted", loss_params={"tau": 1.0})],
    ),
    "balanced-softmax": (
        "fine-tuning of all parameters with balanced softmax",
        lambda: [_finetune(name="balanced-softmax", loss="balanced-softmax")],
    ),
    "resample": (
        "fine-tuning of all parameters with class-balanced re-sampling and cross-entropy",
        lambda: [_finetune(name="resample", sampler="class-balanced")],
    ),
    "sqrt-resample": (
        "fine-tuning of all parameters with square-root re-sampling and cross-entropy",
        lambda: [_finetune(name="sqrt-resample", sampler="sqrt")],
    ),
    "crt": (
        "classifier re-training: full fine-tuning with cross-entropy, then the head alone re-trained on "
        "class-balanced samples (lr 1e-4)",
        lambda: [
            _finetune(),
            StageConfig(name="retrain-head", trainable="head", loss="ce", lr=1e-4, sampler="class-balanced"),
        ],
    ),
}


def get_strategy(name: str) -> list[StageConfig]:
    """Fresh stage list of a strategy.

    Raises:
        TailTuneError: Unknown name (the message lists the valid ones).
    """
    if name not in STRATEGIES:
        raise TailTuneError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name][1]()


def describe_strategies() -> str:
    """Human-readable listing of every strategy and its stages (``tailtune strategies``)."""
    lines = []
    for name, (summary, build) in STRATEGIES.items():
        lines.append(f"{name}: {summary}")
        for i, stage in enumerate(build(), start=1):
            params = ", ".join(f"{k}={v}" for k, v in stage.loss_params.items())
            loss = f"{stage.loss}({params})" if params else stage.loss
            extra = f", weights={stage.weights}" if stage.weights != "none" else ""
            extra += f", sampler={stage.sampler}" if stage.sampler != "random" else ""
            lines.append(
                f"  {i}. {stage.name}: trainable={stage.trainable}, loss={loss}{extra}, "
                f"lr={stage.lr:g}, epochs={stage.epochs}"
            )
    return "\n".join(lines)
