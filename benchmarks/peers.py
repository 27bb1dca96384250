"""The two peer implementations of two-stage fine-tuning that ``speed.py`` times against tailtune.

Both train the same model (``tailtune.models.transformer.load_classifier``, seeded the same way, so the head starts
from the same weights), through the same stages (``tailtune.strategies``' two-stage list with the
benchmark's epochs), with the same losses and class weights (``tailtune.training.loop.stage_loss``), learning
rates, AdamW settings, linear schedule without warm-up, gradient clipping and batch size. They differ from
tailtune only in the data and training pipeline:

- **peer a**, the Hugging Face ``Trainer`` as people use it today: a ``datasets.Dataset`` tokenised with
  ``.map(batched=True)``, ``DataCollatorWithPadding`` (dynamic padding of randomly drawn batches), one
  ``Trainer`` per stage (stage 1 with everything but head, pooler and top layer frozen through
  ``requires_grad``, the loss passed as ``compute_loss_func``), evaluation by ``trainer.predict``.
- **peer b**, the two-stage authors' pipeline settings: a torch ``Dataset`` that tokenises one example per
  ``__getitem__`` with ``padding="max_length"``, random batches, a plain PyTorch loop per stage with a fresh
  AdamW and linear schedule; stage 1 freezes the bottom through ``requires_grad`` but still runs the full
  forward pass at every step; evaluation is padded to the max length as well.

Each function returns a :class:`SystemRun`: phase timings, the real (non-pad) training tokens it processed,
and its test-set predictions. Metrics are computed by the caller, the same way for every system.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tailtune.config import StageConfig
from tailtune.models.scopes import set_trainable
from tailtune.models.transformer import load_classifier
from tailtune.training.loop import stage_loss

# Modules each peer imports on use; the benchmark imports them before the timed run, since library import
# time is no part of a training run.
PEER_A_IMPORTS = ("datasets", "transformers.trainer", "transformers.data.data_collator")
PEER_B_IMPORTS = ("transformers.optimization",)


@dataclass
class BenchSetup:
    """One workload as every system sees it: model, data, stages and shared settings.

    Attributes:
        model: Local model folder.
        labels: Label names in id order.
        train_texts / train_ids: Training texts and their label ids.
        test_texts / test_ids: Test texts and their label ids.
        stages: The two-stage strategy's stages (the benchmark's epochs applied).
        max_length: Token budget per text.
        batch_size: Training batch size.
        eval_batch_size: Prediction batch size.
        seed: Seeds the head initialisation, shuffling and dropout.
        device: ``cpu`` or ``cuda``.
        bf16: bf16 autocast on ``device`` (weights stay fp32); fp32 otherwise.
    """

    model: str
    labels: list[str]
    train_texts: list[str]
    train_ids: np.ndarray
    test_texts: list[str]
    test_ids: np.ndarray
    stages: list[StageConfig]
    max_length: int
    batch_size: int
    eval_batch_size: int
    seed: int
    device: str
    bf16: bool

    @property
    def class_counts(self) -> list[int]:
        return np.bincount(self.train_ids, minlength=len(self.labels)).tolist()


@dataclass
class SystemRun:
    """What one system's timed run produced.

    Attributes:
        phases: Seconds per phase (``load``, ``tokenise``, ``stage1``, ``stage2``, ``evaluate``, ...).
        train_tokens: Real (non-pad) tokens of the training batches, summed over all stages and epochs.
        train_seconds: Seconds spent training (both stages, set-up of each stage included).
        predicted: Predicted label id of every test example, in test order.
        extra: System-specific details (e.g. tailtune's per-stage reports).
    """

    phases: dict[str, float]
    train_tokens: int
    train_seconds: float
    predicted: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


def load_model(setup: BenchSetup):
    """Seeded model and tokenizer load, so that every system starts from the same head weights."""
    from accelerate.utils import set_seed

    set_seed(setup.seed)
    return load_classifier(setup.model, setup.labels, head="linear")


# --------------------------------------------------------------------------------------------------------
# peer a: transformers.Trainer, run once per stage
# --------------------------------------------------------------------------------------------------------


def run_trainer(setup: BenchSetup) -> SystemRun:
    """Two-stage fine-tuning with one Hugging Face ``Trainer`` per stage."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    phases: dict[str, float] = {}
    start = time.perf_counter()
    model, tokenizer = load_model(setup)
    phases["load"] = time.perf_counter() - start

    start = time.perf_counter()

    def tokenise(batch):
        return tokenizer(batch["text"], truncation=True, max_length=setup.max_length)

    def dataset(texts, ids):
        data = Dataset.from_dict({"text": list(texts), "label": [int(i) for i in ids]})
        return data.map(tokenise, batched=True, remove_columns=["text"])

    train_set = dataset(setup.train_texts, setup.train_ids)
    test_set = dataset(setup.test_texts, setup.test_ids)
    collator = DataCollatorWithPadding(tokenizer)
    phases["tokenise"] = time.perf_counter() - start

    trainer = None
    with tempfile.TemporaryDirectory(prefix="speed-trainer-") as output_dir:
        for index, stage in enumerate(setup.stages, start=1):
            start = time.perf_counter()
            set_trainable(model, stage.trainable)
            loss_fn = stage_loss(stage, setup.class_counts).to("cuda" if setup.device == "cuda" else "cpu")

            def compute_loss(outputs, labels, num_items_in_batch=None, loss_fn=loss_fn):
                # Batches are per-step means (no accumulation), so num_items_in_batch is not needed.
                return loss_fn(outputs.logits, labels)

            args = TrainingArguments(
                output_dir=output_dir,
                per_device_train_batch_size=setup.batch_size,
                per_device_eval_batch_size=setup.eval_batch_size,
                num_train_epochs=stage.epochs,
                learning_rate=stage.lr,
                lr_scheduler_type="linear",
                warmup_steps=0,
                weight_decay=stage.weight_decay,
                adam_epsilon=stage.adam_epsilon,
                max_grad_norm=stage.max_grad_norm or 0.0,
                bf16=setup.bf16,
                use_cpu=setup.device == "cpu",
                seed=setup.seed,
                eval_strategy="no",
                save_strategy="no",
                report_to=[],
                disable_tqdm=True,
            )
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=train_set,
                processing_class=tokenizer,
                data_collator=collator,
                compute_loss_func=compute_loss,
            )
            trainer.train()
            phases[f"stage{index}"] = time.perf_counter() - start
        for param in model.parameters():
            param.requires_grad_(True)

        start = time.perf_counter()
        output = trainer.predict(test_set)
        predicted = np.asarray(output.predictions).argmax(axis=1)
        phases["evaluate"] = time.perf_counter() - start
    # Every epoch sees every example once, with its real tokens.
    train_tokens = sum(len(ids) for ids in train_set["input_ids"]) * sum(s.epochs for s in setup.stages)
    train_seconds = sum(v for k, v in phases.items() if k.startswith("stage"))
    return SystemRun(phases, train_tokens, train_seconds, predicted)


# --------------------------------------------------------------------------------------------------------
# peer b: the two-stage authors' pipeline settings
# --------------------------------------------------------------------------------------------------------


class PaddedTextDataset(torch.utils.data.Dataset):
    """Tokenises one text per ``__getitem__``, padded to ``max_length`` (the authors' data pipeline)."""

    def __init__(self, texts: Sequence[str], labels: Sequence[int], tokenizer, max_length: int) -> None:
        self.texts = list(texts)
        self.labels = [int(y) for y in labels]
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            self.texts[index],
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return {
            "input_ids": encoded["input_ids"].squeeze(0),
            "attention_mask": encoded["attention_mask"].squeeze(0),
            "labels": torch.tensor(self.labels[index], dtype=torch.long),
        }


def _autocast(setup: BenchSetup):
    if setup.bf16:
        return torch.autocast(device_type=setup.device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def run_plain_loop(setup: BenchSetup) -> SystemRun:
    """Two-stage fine-tuning with a plain PyTorch loop on max-length-padded, per-example-tokenised data."""
    from transformers import get_linear_schedule_with_warmup

    device = torch.device("cuda" if setup.device == "cuda" else "cpu")
    phases: dict[str, float] = {}
    start = time.perf_counter()
    model, tokenizer = load_model(setup)
    model.to(device)
    phases["load"] = time.perf_counter() - start

    train_set = PaddedTextDataset(setup.train_texts, setup.train_ids, tokenizer, setup.max_length)
    generator = torch.Generator().manual_seed(setup.seed)
    train_tokens = 0
    for index, stage in enumerate(setup.stages, start=1):
        start = time.perf_counter()
        params = set_trainable(model, stage.trainable)
        loss_fn = stage_loss(stage, setup.class_counts).to(device)
        loader = torch.utils.data.DataLoader(
            train_set,
            batch_size=setup.batch_size,
            sampler=torch.utils.data.RandomSampler(train_set, generator=generator),
        )
        optimizer = torch.optim.AdamW(params, lr=stage.lr, eps=stage.adam_epsilon, weight_decay=stage.weight_decay)
        total_steps = len(loader) * stage.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=total_steps)
        model.train()
        running = 0.0
        for _ in range(stage.epochs):
            for batch in loader:
                train_tokens += int(batch["attention_mask"].sum())  # counted on the host: no device sync
                input_ids = batch["input_ids"].to(device)
                attention_mask = batch["attention_mask"].to(device)
                labels = batch["labels"].to(device)
                with _autocast(setup):
                    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
                loss = loss_fn(logits, labels)
                loss.backward()
                if stage.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, stage.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                running += loss.item()  # the per-epoch average loss such loops print
        phases[f"stage{index}"] = time.perf_counter() - start
    for param in model.parameters():
        param.requires_grad_(True)

    start = time.perf_counter()
    test_set = PaddedTextDataset(setup.test_texts, setup.test_ids, tokenizer, setup.max_length)
    loader = torch.utils.data.DataLoader(test_set, batch_size=setup.eval_batch_size, shuffle=False)
    model.eval()
    outputs = []
    with torch.no_grad():
        for batch in loader:
            with _autocast(setup):
                logits = model(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                ).logits
            outputs.append(logits.float().cpu())
    predicted = torch.cat(outputs).numpy().argmax(axis=1)
    phases["evaluate"] = time.perf_counter() - start
    train_seconds = sum(v for k, v in phases.items() if k.startswith("stage"))
    return SystemRun(phases, train_tokens, train_seconds, predicted)
