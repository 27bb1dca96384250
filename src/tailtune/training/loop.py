"""The stage loop: one visible training loop for every strategy, on ``accelerate``.

Per stage: set ``requires_grad`` for the stage's scope, build a *fresh* AdamW over the trainable parameters
only and a fresh linear schedule, then forward -> loss -> backward -> clip -> step. A fresh optimiser per
stage matters: stage 2 must not inherit stage 1's moment estimates for parameters that were frozen, nor its
finished learning-rate schedule. ``accelerate`` handles devices, mixed precision, gradient accumulation and
DDP/FSDP under ``accelerate launch`` / ``torchrun``.

Whatever else happens during training (history files, model selection, evaluations) listens to the loop
through one interface, :class:`StageHooks`, as callbacks listen to ``transformers.Trainer``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from tailtune.config import PredictSettings, RunConfig, StageConfig
from tailtune.errors import TailTuneError, TrainingDiverged
from tailtune.models.scopes import set_trainable
from tailtune.task import Task, get_task
from tailtune.training.batching import BatchPlan, Encoded
from tailtune.training.features import build_cache, cache_key, pooling_of, replay, trains_on_cache
from tailtune.training.losses import build_loss
from tailtune.training.precision import auto_precision
from tailtune.training.weights import class_weights

logger = logging.getLogger(__name__)


class StageHooks:
    """What the stage loop tells its listeners; every event is a no-op here, and a hook overrides those it needs.

    A run's history, model selection and the evaluations between stages are hooks (as callbacks are to
    ``transformers.Trainer``). Events reach every process; the run directory's writer keeps to the main one.
    """

    def on_log(self, entry: dict[str, Any]) -> None:
        """A history entry: a logging step's loss and learning rate, or a score some hook measured."""

    def on_plan(self, plan: dict[str, Any]) -> None:
        """Before training: the plan and its estimated time (:func:`tailtune.training.cost.describe`), e.g. for the
        command line to print."""

    def on_step(self, stage_index: int, stage: StageConfig, step: int) -> bool:
        """Before a stage starts (``step`` 0) and after each of its optimiser steps (``step``: steps done).

        Returns:
            True to end training now, whatever the step budget: the stage stops at this step (model selection
            scores it first, and the stage keeps its best weights), and the stages after it do not run.
        """
        return False

    def on_epoch_end(self, stage_index: int, stage: StageConfig, epoch: float, planned: int) -> bool:
        """After every epoch (and every ``eval_steps`` steps), with the whole model in place, not the cache's
        stand-ins.

        Args:
            stage_index: The stage's position in the run.
            stage: The stage.
            epoch: Epochs done, a fraction within an epoch (``eval_steps``).
            planned: Epochs the stage plans to run.

        Returns:
            True to end the stage early (obeyed once the stage has made its step budget).
        """
        return False

    def on_stage_end(self, stage_index: int, stage: StageConfig, model: torch.nn.Module) -> None:
        """Once a stage ends, e.g. to restore its best weights or to evaluate the model."""


class HookList(StageHooks):
    """Several hooks as one: each event reaches them in order."""

    def __init__(self, hooks: Sequence[StageHooks] = ()) -> None:
        self.hooks = list(hooks)

    def on_log(self, entry: dict[str, Any]) -> None:
        for hook in self.hooks:
            hook.on_log(entry)

    def on_plan(self, plan: dict[str, Any]) -> None:
        for hook in self.hooks:
            hook.on_plan(plan)

    def on_step(self, stage_index: int, stage: StageConfig, step: int) -> bool:
        return any([hook.on_step(stage_index, stage, step) for hook in self.hooks])  # every hook hears it

    def on_epoch_end(self, stage_index: int, stage: StageConfig, epoch: float, planned: int) -> bool:
        # Every hook hears the event, whatever an earlier one answered.
        stops = [hook.on_epoch_end(stage_index, stage, epoch, planned) for hook in self.hooks]
        return any(stops)

    def on_stage_end(self, stage_index: int, stage: StageConfig, model: torch.nn.Module) -> None:
        for hook in self.hooks:
            hook.on_stage_end(stage_index, stage, model)


def make_accelerator(config: RunConfig | PredictSettings) -> Accelerator:
    """An ``Accelerator`` for the precision and accumulation settings of a run (or of prediction).

    ``auto`` picks bf16 where the hardware has it natively (see :func:`tailtune.training.precision.auto_precision`).

    Raises:
        TailTuneError: When this process already runs at another precision (accelerate keeps one per process).
    """
    # Under torchrun without GPUs, accelerate joins the processes (gloo) only when told to use the CPU.
    several_cpu_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    precision = config.mixed_precision
    if precision == "auto":
        precision = auto_precision("cuda" if torch.cuda.is_available() else "cpu")
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, precision):
        raise TailTuneError(
            f"mixed_precision {config.mixed_precision!r} ({precision}) differs from the "
            f"{state['_mixed_precision']!r} this process already trains or predicts at; accelerate keeps one "
            "precision per process: use the same mixed_precision, or a new process",
            setting="mixed_precision",
        )
    return Accelerator(
        cpu=several_cpu_processes,
        mixed_precision=precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        step_scheduler_with_optimizer=True,
    )


@dataclass
class StageReport:
    """What one stage did: its timing and whether it ran on cached features.

    ``seconds`` is the stage's training (set-up, steps and the validation passes between epochs), without the
    feature-cache build (``cache_seconds``) and without the clean-up between stages. ``phase`` is ``train``,
    or ``refit`` for the retraining on all the data after selection.
    """

    name: str
    seconds: float
    steps: int
    cached: bool
    cache_seconds: float = 0.0
    tokens: int = 0
    phase: str = "train"


def train_stages(
    model: torch.nn.Module,
    data: Encoded,
    class_counts: list[int],
    config: RunConfig,
    accelerator: Accelerator,
    *,
    hooks: Sequence[StageHooks] = (),
    show_progress: bool = True,
    task: Task | None = None,
) -> list[StageReport]:
    """Train ``model`` through ``config.stages`` in order.

    Args:
        model: A sequence-classification model (not yet prepared by ``accelerate``).
        data: Encoded training data with labels.
        class_counts: Training examples per class, in label-id order (for weights and losses).
        config: Run settings, including the stages; ``config.model`` names the pretrained weights, to key
            feature caches shared on disk.
        accelerator: From :func:`make_accelerator`.
        hooks: Hear the loop's events (:class:`StageHooks`), in this order.
        show_progress: Show a tqdm bar per stage (main process only).
        task: The labels' task, which builds each stage's loss (default: single-label).

    Returns:
        What each stage that ran did.
    """
    loop = _Loop(config, accelerator, class_counts, HookList(hooks), show_progress, task or get_task(None))
    reports: list[StageReport] = []
    trained: set[str] = set()  # names of parameters some earlier stage has changed
    for index, stage in enumerate(config.stages):
        if stage.epochs == 0:
            logger.info("stage %d (%s): 0 epochs, skipped", index + 1, stage.name)
            continue
        if loop.hooks.on_step(index, stage, 0):
            logger.info("stage %d (%s): not started, a hook ended training", index + 1, stage.name)
            break
        params = set_trainable(model, stage.trainable)
        names = {n for n, p in model.named_parameters() if p.requires_grad}
        # The frozen bottom is still the pretrained one only if no earlier stage trained any of it; only
        # then may a cache be shared with other runs.
        pristine = trained <= names
        trained |= names
        shared_key = (
            cache_key(config.model, data, stage.trainable, config.max_length, pooling=pooling_of(model))
            if pristine else None
        )  # fmt: skip
        reports.append(_run_stage(loop, model, params, data, stage, index, shared_key))
        loop.hooks.on_stage_end(index, stage, model)
    for param in model.parameters():
        param.requires_grad_(True)
    return reports


@dataclass(frozen=True)
class _Loop:
    """What every stage of one :func:`train_stages` call shares."""

    config: RunConfig
    accelerator: Accelerator
    class_counts: list[int]
    hooks: HookList
    show_progress: bool
    task: Task


def stage_epochs(stage: StageConfig, batches_per_epoch: int, accumulation: int) -> int:
    """Epochs a stage runs: its ``epochs``, raised until it makes at least ``min_steps`` optimiser steps.

    Budgets in steps suit small and large data alike: a few hundred examples need several passes to move the
    weights at all, while one pass over a large set already makes thousands of steps.
    """
    if not stage.min_steps or stage.epochs == 0:
        return stage.epochs
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / accumulation))
    return max(stage.epochs, min(math.ceil(stage.min_steps / steps_per_epoch), stage.max_epochs))


def stage_loss(stage: StageConfig, class_counts: Sequence[int]) -> torch.nn.Module:
    """The loss of a stage: its loss function with its class weights (if any) from the training counts."""
    weight = None if stage.weights == "none" else class_weights(class_counts, stage.weights, beta=stage.beta)
    return build_loss(stage.loss, class_counts=class_counts, weight=weight, **stage.loss_params)


def _run_stage(loop: _Loop, model, params, data: Encoded, stage: StageConfig, index: int,
               shared_key: str | None) -> StageReport:  # fmt: skip
    config, accelerator, hooks = loop.config, loop.accelerator, loop.hooks
    device = accelerator.device
    loss_fn = loop.task.loss(stage, loop.class_counts, data.n_texts).to(device)
    batch_size = stage.batch_size or config.batch_size
    plan = BatchPlan(
        data.lengths, batch_size, seed=config.seed * 1000 + index * 100, shuffle=True,
        group_by_length=config.group_by_length, labels=data.labels, sampler=stage.sampler,
    )  # fmt: skip
    loader = DataLoader(range(len(data)), batch_sampler=plan, collate_fn=data.collate)
    optimizer = _adamw(params, stage, device)
    epochs = stage_epochs(stage, len(plan), config.gradient_accumulation_steps)
    budget_epochs = stage_epochs(stage.replace(epochs=1), len(plan), config.gradient_accumulation_steps)
    total_steps = math.ceil(len(plan) / config.gradient_accumulation_steps) * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, round(stage.warmup_ratio * total_steps), total_steps)

    cache, cache_seconds = None, 0.0
    if trains_on_cache(config.feature_cache, model, data, stage.trainable):
        start = time.perf_counter()
        cache = _build_stage_cache(loop, model, data, stage, shared_key)
        cache_seconds = time.perf_counter() - start

    start = time.perf_counter()
    # Running sums stay on the device: reading a GPU scalar every step would stall the pipeline.
    tokens = torch.zeros((), dtype=torch.long, device=device)
    with replay(model, cache) as feed:
        # Prepared inside the replay: a DDP wrapper must be built around the module tree it will run.
        prepared, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
        # Under several processes each sees its shard of the batches; the scheduler counts global steps.
        steps_per_epoch = math.ceil(len(loader) / config.gradient_accumulation_steps)
        local_steps = steps_per_epoch * epochs
        last_step = local_steps
        if stage.stop_after is not None:  # a refit stops where selection chose, perhaps within an epoch
            last_step = min(local_steps, max(1, round(stage.stop_after * steps_per_epoch)))
        bar = tqdm(
            total=local_steps, desc=f"stage {index + 1}/{len(config.stages)} {stage.name}", unit="step",
            disable=not (loop.show_progress and accelerator.is_local_main_process),
        )  # fmt: skip
        step, seen = 0, 0
        running = torch.zeros((), device=device)

        def end_of_epoch() -> bool:
            """Tell the hooks where training stands; True ends the stage."""
            done = step / steps_per_epoch
            done = int(done) if done.is_integer() else round(done, 4)
            with feed.suspended():  # the hooks see the whole model, not the cache's stand-ins
                stop = hooks.on_epoch_end(index, stage, done, epochs)
            prepared.train()
            # Never before the step budget is spent: a validation split that lacks the rarest classes (too
            # small to hold out) stops improving before the tail is learned.
            if stop and done >= budget_epochs:
                logger.info("stage %d (%s): stopped early after epoch %s of %d", index + 1, stage.name, done, epochs)
                return True
            return False

        stopped = False
        while step < last_step and not stopped:
            prepared.train()
            for batch in loader:
                with accelerator.accumulate(prepared):
                    input_ids, mask = feed.inputs(batch, device)
                    logits = prepared(input_ids=input_ids, attention_mask=mask).logits
                    loss = loss_fn(logits, batch["labels"])
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and stage.max_grad_norm is not None:
                        accelerator.clip_grad_norm_(params, stage.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                tokens += mask.sum()
                running += loss.detach().float()
                seen += 1
                if not accelerator.sync_gradients:
                    continue
                step += 1
                bar.update(1)
                if step % config.logging_steps == 0 or step == last_step:
                    # Checked where the running sum is read anyway: a non-finite loss stays in the sum.
                    _check_finite(running, stage, index, step)
                    entry = {
                        "stage": index, "stage_name": stage.name, "step": step,
                        "epoch": round(step / steps_per_epoch, 4),
                        "loss": float(running) / max(seen, 1), "lr": scheduler.get_last_lr()[0],
                    }  # fmt: skip
                    bar.set_postfix(loss=f"{entry['loss']:.4f}")
                    hooks.on_log(entry)
                    running.zero_()
                    seen = 0
                epoch_end = step % steps_per_epoch == 0
                if epoch_end:
                    _check_finite(running, stage, index, step)
                evaluated = epoch_end or step == last_step or bool(config.eval_steps and step % config.eval_steps == 0)
                if evaluated:
                    stopped = end_of_epoch()
                if not stopped and step < last_step and hooks.on_step(index, stage, step):
                    if not evaluated:
                        end_of_epoch()  # selection scores the steps since its last evaluation before the stage ends
                    logger.info("stage %d (%s): ended at step %d of %d, a hook ended training", index + 1, stage.name,
                                step, last_step)  # fmt: skip
                    stopped = True
                if stopped or step == last_step:
                    break
        bar.close()
    _check_finite(running, stage, index, step)
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise TrainingDiverged(_diverged(stage, index, step, "the weights"), setting="lr")
    accelerator.wait_for_everyone()
    # The stage's own time; the clean-up below (a full gc.collect, ~0.2 s) is between stages.
    seconds = time.perf_counter() - start
    # Drop accelerate's wrappers and references so the next stage prepares a fresh optimiser and DDP wrapper
    # around the parameters that are trainable then.
    accelerator.free_memory()
    logger.info(
        "stage %d (%s): %d steps in %.1fs%s", index + 1, stage.name, step, seconds,
        f" on cached features (cache built in {cache_seconds:.1f}s)" if cache is not None else "",
    )  # fmt: skip
    return StageReport(stage.name, seconds, step, cache is not None, cache_seconds, int(tokens))


def _build_stage_cache(loop: _Loop, model, data: Encoded, stage: StageConfig, shared_key: str | None):
    """The stage's frozen features: shared on disk under ``shared_key`` when the run has a ``cache_dir``."""
    config, accelerator = loop.config, loop.accelerator
    model.to(accelerator.device)
    cache_dir = config.cache_dir if shared_key else None
    # Under several processes the first builds a shared on-disk cache; the others then read it.
    with accelerator.main_process_first() if cache_dir else contextlib.nullcontext():
        return build_cache(
            model, data, stage.trainable, batch_size=config.eval_batch_size, device=accelerator.device,
            autocast=accelerator.autocast(), cache_dir=cache_dir, key=shared_key,
            show_progress=loop.show_progress and accelerator.is_local_main_process,
        )  # fmt: skip


def _check_finite(running_loss: torch.Tensor, stage: StageConfig, index: int, step: int) -> None:
    """Stop the run when the loss summed since the last check is NaN or infinite."""
    if not bool(torch.isfinite(running_loss)):
        raise TrainingDiverged(_diverged(stage, index, step, f"the loss ({float(running_loss)})"), setting="lr")


def _diverged(stage: StageConfig, index: int, step: int, what: str) -> str:
    return (
        f"stage {index + 1} ({stage.name}): training diverged, {what} became non-finite by step {step} "
        f"at a peak learning rate of {stage.lr:g}; nothing was saved: retry with a lower lr"
    )


def _adamw(params: list[torch.nn.Parameter], stage: StageConfig, device: torch.device) -> torch.optim.AdamW:
    """A fresh AdamW over the stage's trainable parameters.

    The fused kernel updates all parameters in one pass; PyTorch's default on CPU is a Python loop over
    tensors, which costs more than the forward pass for a small model with a large embedding matrix.
    """
    kwargs = {"lr": stage.lr, "eps": stage.adam_epsilon, "weight_decay": stage.weight_decay}
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.AdamW(params, fused=True, **kwargs)
        except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
            pass
    return torch.optim.AdamW(params, foreach=True, **kwargs)


def predict_logits(
    model: torch.nn.Module,
    data: Encoded,
    accelerator: Accelerator,
    *,
    batch_size: int,
    show_progress: bool = False,
    inference_only: bool = False,
) -> np.ndarray:
    """Logits ``[n, K]`` for every text, in data order, over all processes.

    Batches are sorted by length (little padding); under several processes each row is computed once
    by one process and the results are gathered, without duplicates, in data order. A text read in windows
    (:attr:`Encoded.owners <~tailtune.training.batching.Encoded>`) gets the mean of its windows' logits.
    ``inference_only`` runs
    under ``inference_mode`` (no autograd bookkeeping at all) for a model that will not train again; the
    evaluations between epochs use ``no_grad``, because under DDP tensors made in inference mode would reach
    the next training step's autograd.
    """
    plan = BatchPlan(data.lengths, batch_size, shuffle=False, group_by_length=True)
    loader = accelerator.prepare_data_loader(DataLoader(range(len(data)), batch_sampler=plan, collate_fn=data.collate))
    model = model.to(accelerator.device)
    was_training = model.training
    model.eval()
    indices, outputs = [], []
    progress = tqdm(loader, desc="predicting", disable=not (show_progress and accelerator.is_local_main_process))
    with torch.inference_mode() if inference_only else torch.no_grad():
        for batch in progress:
            with accelerator.autocast():
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            index = accelerator.pad_across_processes(batch["index"], dim=0, pad_index=-1)
            logits = accelerator.pad_across_processes(logits.float(), dim=0)
            indices.append(accelerator.gather(index).cpu())
            outputs.append(accelerator.gather(logits).cpu())
    model.train(was_training)
    index = torch.cat(indices).numpy()
    logits = torch.cat(outputs).numpy()
    keep = index >= 0
    index, logits = index[keep], logits[keep]
    # Uneven shards are padded by repeating examples; keep the first copy of each.
    unique, first = np.unique(index, return_index=True)
    if len(unique) != len(data):
        raise RuntimeError(f"prediction covered {len(unique)} of {len(data)} examples")
    logits = logits[first]
    return logits if data.owners is None else mean_over_windows(logits, data.owners)


def mean_over_windows(logits: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Each text's mean of its rows' logits: ``owners[r]`` is row ``r``'s text (non-decreasing, none left out).

    Summed in float64, so a text of one window keeps its logits exactly.
    """
    if not len(owners):
        return logits
    starts = np.flatnonzero(np.r_[True, np.diff(owners) != 0])
    if len(starts) != owners[-1] + 1:  # a text without a row would shift every later text's logits
        raise RuntimeError(f"windows of {len(starts)} texts where {owners[-1] + 1} were encoded")
    sums = np.add.reduceat(logits.astype(np.float64), starts, axis=0)
    counts = np.diff(np.r_[starts, len(owners)])
    return (sums / counts[:, None]).astype(logits.dtype)
