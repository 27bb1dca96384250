"""What one full fine-tuning step costs with each lever on or off (embedded MiniLM, CPU or GPU).

A step is forward, backward and an AdamW update on one batch of 16 x 128 random token ids; the first step of
each variant warms up and is not timed. The levers: dropout (PyTorch's fused attention kernels have no dropout
path on CPU, so the checkpoint's attention dropout of 0.1 falls back to a slower one: the measurement behind
``attention_dropout: 0`` as tailtune's default), bf16 autocast (weights stay fp32), and frozen word embeddings
(no gradient and no AdamW update for the largest matrix of a small model).

    python benchmarks/step_cost.py --steps 5 --json benchmarks/results/step_cost.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import AutoModelForSequenceClassification

from tailtune.data.builtin import minilm_path
from tailtune.training.precision import cpu_info

NO_ATTENTION_DROPOUT = {"attention_probs_dropout_prob": 0.0}
# name: (config overrides, bf16 autocast, frozen word embeddings[, torch.compile])
VARIANTS = {
    "checkpoint dropout (attention 0.1, hidden 0.1)": ({}, False, False),
    "attention dropout 0": (NO_ATTENTION_DROPOUT, False, False),
    "hidden dropout 0": ({"hidden_dropout_prob": 0.0}, False, False),
    "no dropout": ({**NO_ATTENTION_DROPOUT, "hidden_dropout_prob": 0.0}, False, False),
    "eager attention, checkpoint dropout": ({"attn_implementation": "eager"}, False, False),
    "attention dropout 0, bf16 autocast": (NO_ATTENTION_DROPOUT, True, False),
    "attention dropout 0, frozen word embeddings": (NO_ATTENTION_DROPOUT, False, True),
    "attention dropout 0, bf16, frozen word embeddings": (NO_ATTENTION_DROPOUT, True, True),
    "attention dropout 0, torch.compile (dynamic shapes)": (NO_ATTENTION_DROPOUT, False, False, True),
}


def step_seconds(
    overrides: dict, steps: int, device: str, *, bf16: bool, freeze_embeddings: bool, compiled: bool = False
) -> float:
    """Seconds per timed step; the warm-up step (compilation included) is not timed."""
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=5, **overrides).to(device)
    model.train()
    if freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    forward = torch.compile(model, dynamic=True) if compiled else model
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (16, 128), generator=generator).to(device)
    labels = torch.randint(0, 5, (16,), generator=generator).to(device)
    for step in range(steps + 1):
        if step == 1:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = forward(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results = {"cpu": cpu_info()[0], "device": args.device, "threads": torch.get_num_threads(), "rows": []}
    for name, (overrides, bf16, freeze_embeddings, *compiled) in VARIANTS.items():
        seconds = step_seconds(overrides, args.steps, args.device, bf16=bf16, freeze_embeddings=freeze_embeddings,
                               compiled=bool(compiled and compiled[0]))  # fmt: skip
        results["rows"].append({"variant": name, "seconds_per_step": round(seconds, 3)})
        print(f"{name:<45} {seconds:.3f} s/step", flush=True)
    print(f"({results['cpu']}, {args.device}, {results['threads']} threads)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
            handle.write("\n")


if __name__ == "__main__":
    main()
