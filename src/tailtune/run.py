"""One training run: data -> validation split -> stages with model selection -> refit -> decision rule ->
evaluation -> a run directory.

What the run directory holds, and how each file is written, is :mod:`tailtune.rundir`'s business;
:mod:`tailtune.selection` and :mod:`tailtune.calibration` own the choices made on validation data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch
from accelerate.utils import set_seed

from tailtune import __version__, rundir
from tailtune.batching import Encoded, encode
from tailtune.calibration import Calibration, choose_calibration, fold_into_bias, prior_tau_for
from tailtune.config import DEFAULT_MAX_LENGTH, RunConfig
from tailtune.data import LabelMap, Splits, TextDataset, check_labels
from tailtune.errors import TailTuneError
from tailtune.imbalance import class_counts
from tailtune.metrics import compute_metrics, score_predictions, softmax
from tailtune.modelcard import write_model_card
from tailtune.modeling import check_max_length, load_classifier, position_limit, save_classifier
from tailtune.precision import auto_decision
from tailtune.saved import read_record, write_record
from tailtune.scopes import final_linear
from tailtune.selection import EpochSelector, carve_validation, refit_config
from tailtune.tracking import check_tracker, open_tracker
from tailtune.training import make_accelerator, predict_logits, train_stages

logger = logging.getLogger(__name__)

_LIBRARIES = ("torch", "transformers", "accelerate", "scikit-learn", "numpy", "pandas", "tokenizers")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape results."""
    versions = {"python": platform.python_version(), "tailtune": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def resolve_max_length(config: RunConfig) -> RunConfig:
    """``config`` with a ``max_length`` its model can take, decided before anything loads weights or is written.

    Not given (None): :data:`~tailtune.config.DEFAULT_MAX_LENGTH`, or the model's limit where that is lower (the
    log says so). Given: kept as it is, and refused with one line when the model cannot take it. The limits come
    from the checkpoint's config and tokenizer; where those cannot be read, loading the model says why.

    Raises:
        TailTuneError: A given ``max_length`` above the model's limit, or too short for any text.
    """
    from transformers import AutoTokenizer, PretrainedConfig

    source = os.path.expanduser(config.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, trust_remote_code=config.trust_remote_code)
        config_dict, _ = PretrainedConfig.get_config_dict(source)  # the file as it is, whatever its model type
    except (OSError, ValueError):
        return config if config.max_length is not None else config.replace(max_length=DEFAULT_MAX_LENGTH)
    positions = SimpleNamespace(max_position_embeddings=config_dict.get("max_position_embeddings"))
    return fit_max_length(config, positions, tokenizer)


def fit_max_length(config: RunConfig, model_config, tokenizer) -> RunConfig:
    """:func:`resolve_max_length` for a model whose config and tokenizer are at hand."""
    if config.max_length is None:
        limit = position_limit(model_config, tokenizer)
        max_length = DEFAULT_MAX_LENGTH if limit is None else min(DEFAULT_MAX_LENGTH, limit)
        if max_length < DEFAULT_MAX_LENGTH:
            logger.info("max_length %d, this model's limit (the default %d is above it)", max_length,
                        DEFAULT_MAX_LENGTH)  # fmt: skip
        config = config.replace(max_length=max_length)
    check_max_length(config.max_length, model_config, tokenizer)
    return config


def evaluate_split(model, tokenizer, dataset, label_map, train_counts, config, accelerator, *, show_progress):
    """Predict a labelled split; returns (metrics, predictions DataFrame)."""
    encoded = encode(tokenizer, dataset.texts, label_map.encode(dataset.labels, source=dataset.source),
                     max_length=config.max_length)  # fmt: skip
    logits = predict_logits(model, encoded, accelerator, batch_size=config.eval_batch_size,
                            show_progress=show_progress)  # fmt: skip
    probs = softmax(logits)
    predicted = probs.argmax(axis=1)
    metrics = compute_metrics(encoded.labels, predicted, label_names=label_map.labels, train_counts=train_counts)
    frame = pd.DataFrame({
        "text": dataset.texts,
        "label": dataset.labels,
        "predicted": [label_map.labels[i] for i in predicted],
        "score": probs[np.arange(len(predicted)), predicted].round(6),
    })  # fmt: skip
    return metrics, frame


def fit(
    config: RunConfig,
    train: TextDataset,
    label_map: LabelMap,
    accelerator,
    *,
    validation: TextDataset | None = None,
    on_history: Callable[[dict], None] | None = None,
    after_stage: Callable[[int, Any, Any, Any], None] | None = None,
    show_progress: bool = True,
):
    """Load the pretrained model, train it through the stages, and return ``(model, tokenizer, report)``.

    With ``validation`` (and a ``select_metric``), every epoch is scored on it, each stage ends with its best
    epoch's weights, and a stage stops after ``patience`` epochs without improvement; ``report.choices``
    records what was chosen. The model's config records the training class counts
    (``tailtune_train_counts``) so that later evaluations can group classes by training frequency.
    """
    train_ids = label_map.encode(train.labels, source=train.source)
    train_counts = np.bincount(train_ids, minlength=len(label_map)).tolist()
    set_seed(config.seed)  # before the head is initialised
    model, tokenizer = load_classifier(
        config.model, label_map.labels, head=config.head, pooling=config.pooling,
        trust_remote_code=config.trust_remote_code, attention_dropout=config.attention_dropout,
    )  # fmt: skip
    config = fit_max_length(config, model.config, tokenizer)
    if config.calibrate != "none":
        final_linear(model)  # fail now, not after training, where the rule cannot be folded in
    encoded: Encoded = encode(tokenizer, train.texts, train_ids, max_length=config.max_length)
    selector = None
    if validation is not None and config.select_metric != "none":
        selector = _epoch_selector(config, model, tokenizer, validation, label_map, accelerator, on_history)

    def end_of_stage(index: int, stage) -> None:
        if selector is not None:
            selector.restore_best(index, stage)
        if after_stage is not None:
            after_stage(index, stage, model, tokenizer)

    report = train_stages(
        model, encoded, train_counts, config, accelerator, on_history=on_history,
        on_epoch_end=None if selector is None else selector.on_epoch_end,
        after_stage=end_of_stage, show_progress=show_progress,
    )  # fmt: skip
    if selector is not None:
        report.choices, report.validation_logits = selector.choices, selector.best_logits
    model = accelerator.unwrap_model(model)
    write_record(
        model.config,
        train_counts=dict(zip(label_map.labels, train_counts, strict=True)),
        # A loaded model predicts at the length it was trained at, unless told otherwise.
        max_length=config.max_length,
        # Labels read from a file are strings; a column of whole numbers comes back as integers when loaded.
        label_kind="integer" if all(name.lstrip("-").isdigit() and str(int(name)) == name
                                    for name in label_map.labels) else "string",
        calibration=None,  # a rule recorded by the checkpoint it started from is not this model's
    )
    return model, tokenizer, report


def _epoch_selector(config, model, tokenizer, validation, label_map, accelerator, on_history) -> EpochSelector:
    encoded = encode(tokenizer, validation.texts, label_map.encode(validation.labels, source=validation.source),
                     max_length=config.max_length)  # fmt: skip

    def score() -> tuple[float, np.ndarray]:
        logits = predict_logits(model, encoded, accelerator, batch_size=config.eval_batch_size)
        return score_predictions(config.select_metric, encoded.labels, logits.argmax(axis=1)), logits

    def record(stage: int, epoch: int, value: float) -> None:
        if on_history is not None and accelerator.is_main_process:
            on_history({"stage": stage, "stage_name": config.stages[stage].name, "epoch": epoch,
                        f"validation_{config.select_metric}": value})  # fmt: skip

    # One example's worth of score (at least 0.01) is a tie: see EpochSelector.
    tolerance = max(0.01, 1.0 / len(validation))
    return EpochSelector(model, score, patience=config.patience, on_score=record, tolerance=tolerance)


@dataclass
class Fitted:
    """A trained model with what selection, refit and calibration decided."""

    model: Any
    tokenizer: Any
    report: Any
    validation_split: dict[str, Any]
    calibration: Calibration | None = None
    refit_epochs: list[float] | None = None

    def summary(self) -> dict[str, Any]:
        """The decisions, for ``metrics.json``."""
        return {
            "validation_split": self.validation_split,
            "selection": [vars(c) for c in self.report.choices],
            "refit_epochs": self.refit_epochs,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }


def _trained_counts(model, label_map: LabelMap) -> list[int]:
    """The class counts :func:`fit` recorded for the data the model trained on, in label-id order."""
    return [read_record(model.config).train_counts[name] for name in label_map.labels]


def validation_split(config: RunConfig, splits: Splits) -> tuple[TextDataset, TextDataset | None, dict[str, Any]]:
    """``(training part, validation, description)``: the given eval data, or a split carved from training.

    Carved only when no eval data is given and ``eval_fraction`` > 0 (stratified and seeded by the run's seed:
    see :func:`tailtune.selection.carve_validation`).
    """
    if splits.eval is not None:
        return splits.train, splits.eval, {"source": "given", "size": len(splits.eval)}
    if config.eval_fraction <= 0 or (config.select_metric == "none" and config.calibrate == "none"):
        return splits.train, None, {"source": None}  # nothing would use a held-out split
    train_idx, val_idx = carve_validation(splits.train.labels, fraction=config.eval_fraction,
                                          min_class_count=config.eval_min_class_count, seed=config.seed)  # fmt: skip
    if len(val_idx) == 0:
        return splits.train, None, {"source": None}
    validation = splits.train.subset(val_idx)
    validation.source = f"{splits.train.source} (held out)"
    info = {"source": "carved", "fraction": config.eval_fraction, "min_class_count": config.eval_min_class_count,
            "seed": config.seed, "size": len(val_idx), "counts": class_counts(validation.labels)}  # fmt: skip
    return splits.train.subset(train_idx), validation, info


def fit_selected(
    config: RunConfig,
    splits: Splits,
    label_map: LabelMap,
    accelerator,
    *,
    on_history: Callable[[dict], None] | None = None,
    after_stage: Callable[[int, Any, Any, Any], None] | None = None,
    show_progress: bool = True,
) -> Fitted:
    """Train with model selection on validation data, refit on all the data, then calibrate.

    1. Validation: the eval split, else one carved from the training data (``eval_fraction``).
    2. Each stage keeps its best epoch on validation and may stop early (``select_metric``, ``patience``).
    3. With a carved split and ``refit``, a fresh model trains on all the training data for the chosen epochs.
    4. The decision rule (``calibrate``) is chosen on the selection model's validation logits and folded into
       the final model's bias.
    """
    if config.max_length is None:
        config = resolve_max_length(config)
    fit_train, validation, split_info = validation_split(config, splits)
    model, tokenizer, report = fit(
        config, fit_train, label_map, accelerator, validation=validation, on_history=on_history,
        after_stage=after_stage, show_progress=show_progress,
    )  # fmt: skip
    fitted = Fitted(model, tokenizer, report, split_info)
    counts = _trained_counts(model, label_map)
    if validation is not None and config.calibrate != "none" and any(stage.epochs for stage in config.stages):
        y_val = label_map.encode(validation.labels, source=validation.source)
        logits = report.validation_logits  # the selected epoch's, when selection ran
        if logits is None:
            encoded = encode(tokenizer, validation.texts, y_val, max_length=config.max_length)
            logits = predict_logits(model, encoded, accelerator, batch_size=config.eval_batch_size)
        last = [stage for stage in config.stages if stage.epochs][-1]
        prior_tau = prior_tau_for(last.loss, last.weights, last.sampler)
        fitted.calibration = choose_calibration(config.calibrate, logits, y_val, counts, prior_tau=prior_tau)
    if split_info["source"] == "carved" and config.refit:
        refit = refit_config(config, report.choices) if report.choices else config
        fitted.refit_epochs = [stage.stop_after or stage.epochs for stage in refit.stages]
        logger.info("refit on all %d training examples, epochs per stage %s", len(splits.train), fitted.refit_epochs)

        def tag(entry: dict) -> None:
            if on_history is not None:
                on_history({**entry, "phase": "refit"})

        fitted.model, fitted.tokenizer, refit_report = fit(
            refit, splits.train, label_map, accelerator, on_history=tag, show_progress=show_progress
        )
        report.stages.extend(dataclasses.replace(stage, phase="refit") for stage in refit_report.stages)
        counts = _trained_counts(fitted.model, label_map)
    if fitted.calibration is not None:
        fold_into_bias(fitted.model, fitted.calibration.offsets(counts))
        write_record(fitted.model.config, calibration=fitted.calibration.to_dict())
    return fitted


def train_run(
    config: RunConfig,
    splits: Splits,
    output_dir: str | Path,
    *,
    variant: str | None = None,
    variant_info: dict[str, Any] | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    observer: Callable[[dict], None] | None = None,
    save_model: bool = True,
) -> dict[str, Any]:
    """Train one model and write a complete run directory.

    Args:
        config: Model, stages and shared settings.
        splits: Training data, and optional eval and test data. The final metrics come from the test split
            (else the eval split); eval scores are also logged to ``history.jsonl`` after every stage.
        output_dir: The run directory.
        variant: Name of the data variant (experiments); ``variant_info`` its parameters (e.g. the ratio).
        overwrite: Replace a complete run already in ``output_dir``.
        show_progress: Progress bars.
        observer: Receives every ``history.jsonl`` entry as it is written (e.g. to prune a tuning trial).
        save_model: Write ``model/`` (tuning trials only need their scores).

    Returns:
        The content of ``metrics.json``.
    """
    started = time.perf_counter()
    final = Path(output_dir)
    if rundir.is_complete(final) and not overwrite:
        raise TailTuneError(f"{final}: already holds a complete run; choose another --output or pass --overwrite")
    label_map = check_labels(splits)
    check_tracker(config.report_to)
    config = resolve_max_length(config)  # what config.json, the model and every encoding use
    accelerator = make_accelerator(config)
    # Only the main process writes; it builds the run in a staging folder and moves it into place once complete.
    with rundir.claim(final) if accelerator.is_main_process else contextlib.nullcontext(final) as out:
        if rundir.is_complete(final) and not overwrite:  # finished by another process since the check above
            raise rundir.RunBusy(f"{final}: another process has just completed this run")
        main = accelerator.is_main_process
        name = "/".join(str(part) for part in (variant, config.strategy, f"seed-{config.seed}") if part)
        tracker = open_tracker(config.report_to, Path(out), name, config.to_dict()) if main else None
        with tracker or contextlib.nullcontext():
            observers = [c for c in (tracker and tracker.log_history, observer) if c is not None]
            metrics = _train_into(
                config, splits, label_map, accelerator, Path(out), variant=variant, variant_info=variant_info,
                show_progress=show_progress, observer=lambda entry: [c(entry) for c in observers],
                save_model=save_model,
            )  # fmt: skip
            if tracker is not None:
                tracker.log_final(metrics)
        metrics["wall_time_s"] = round(time.perf_counter() - started, 2)
        if main:
            rundir.write_metrics(out, metrics)  # last: marks the run complete
            rundir.publish(out, final)
    accelerator.wait_for_everyone()
    return metrics


def _train_into(config, splits, label_map, accelerator, out, *, variant, variant_info, show_progress, observer,
                save_model) -> dict[str, Any]:  # fmt: skip
    """Train and write every file of the run but ``metrics.json`` into ``out``; return the metrics."""
    train_counts = np.bincount(
        label_map.encode(splits.train.labels, source=splits.train.source), minlength=len(label_map)
    ).tolist()
    main = accelerator.is_main_process
    if main:
        rundir.write_config(out, {
            "tailtune_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": library_versions(),
            "run": config.to_dict(),
            "stages": [s.to_dict() for s in config.stages],
            "labels": label_map.labels,
            "train_counts": dict(zip(label_map.labels, train_counts, strict=True)),
            "data": {name: (part.source if part is not None else None)
                     for name, part in (("train", splits.train), ("eval", splits.eval), ("test", splits.test))},
            "variant": variant,
            "variant_info": variant_info or {},
            "accelerate": {"num_processes": accelerator.num_processes,
                           "mixed_precision": accelerator.mixed_precision, "device": str(accelerator.device),
                           "mixed_precision_reason": _precision_reason(config)},
        })  # fmt: skip
        rundir.reset_history(out)
    accelerator.wait_for_everyone()

    def log_history(entry: dict) -> None:
        if main:
            rundir.append_history(out, entry)
        if observer is not None:
            observer(entry)

    def evaluate(model, tokenizer, dataset, *, show_progress=False):
        return evaluate_split(model, tokenizer, dataset, label_map, train_counts, config, accelerator,
                              show_progress=show_progress)  # fmt: skip

    def evaluate_after_stage(index: int, stage, model, tokenizer) -> None:
        if splits.eval is None or config.select_metric != "none":
            return  # selection already scored every epoch on it
        metrics, _ = evaluate(model, tokenizer, splits.eval)
        logger.info("after stage %d: eval macro-F1 %.4f", index + 1, metrics["macro_f1"])
        log_history({"stage": index, "stage_name": stage.name, "eval_macro_f1": metrics["macro_f1"],
                     "eval_accuracy": metrics["accuracy"], "eval_tail_f1": metrics["tail_f1"]})  # fmt: skip

    fitted = fit_selected(config, splits, label_map, accelerator, on_history=log_history,
                          after_stage=evaluate_after_stage, show_progress=show_progress)  # fmt: skip
    model, tokenizer, report = fitted.model, fitted.tokenizer, fitted.report
    metrics: dict[str, Any] = {"split": None}
    target = splits.test if splits.test is not None else splits.eval
    if target is not None:
        metrics, predictions = evaluate(model, tokenizer, target, show_progress=show_progress)
        metrics["split"] = "test" if splits.test is not None else "eval"
        if main:
            rundir.write_predictions(out, predictions)
    if splits.test is not None and splits.eval is not None:
        metrics["eval"], _ = evaluate(model, tokenizer, splits.eval)
    metrics["stages"] = [vars(s) for s in report.stages]
    metrics.update(fitted.summary())
    if main and save_model:
        with rundir.writing_model(out) as tmp:
            save_classifier(model, tokenizer, tmp)
            write_model_card(tmp, config, label_map.labels, train_counts, metrics, data_source=splits.train.source,
                             scored_on=None if target is None else target.source)  # fmt: skip
    return metrics


def _precision_reason(config: RunConfig) -> str:
    """Why the run trains at its precision, for ``config.json``."""
    if config.mixed_precision != "auto":
        return f"mixed_precision {config.mixed_precision} given"
    return "auto: " + auto_decision("cuda" if torch.cuda.is_available() else "cpu")[1]  # as make_accelerator
