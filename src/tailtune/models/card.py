"""The model card (``README.md``) every saved model folder carries, in the Hugging Face convention.

YAML metadata (``library_name``, ``pipeline_tag``, ``base_model``, tags and a ``model-index`` with the scores)
comes from ``huggingface_hub``'s :class:`~huggingface_hub.ModelCardData`; the body says what the model was
trained on (class counts and imbalance ratio), how (every stage's settings and what validation chose), how it
scores per class from head to tail, how to load it, and where it is weak. Label names and data sources are
escaped as in the report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tailtune.classtable import (
    class_rows,
    group_spans,
    lowest_line,
    metrics_confusions,
    ordered_classes,
    rarest,
    rarest_line,
)
from tailtune.config import RunConfig
from tailtune.markdown import escape_label_md, escape_md
from tailtune.metrics import GROUPS
from tailtune.models.lengths import MAX_WINDOWS
from tailtune.models.saved import SavedRecord, code_file, read_record

CARD_FILE = "README.md"
# A class with fewer training examples than this is named under "Limits".
FEW_EXAMPLES = 20
# Past this many classes the per-class tables are folded (a collapsed block that lists every class), and the text
# above them names the rarest and the weakest classes. The folder travels without the run's metrics.json, so the
# card keeps every row.
FOLD_CLASSES = 30
# Classes named as rarest and as weakest above a folded table; confusions listed.
NAMED_CLASSES = 5
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
_METRICS = (("macro_f1", "macro-F1"), ("micro_f1", "micro-F1"), ("balanced_accuracy", "balanced accuracy"),
            ("tail_f1", "tail F1"))  # fmt: skip
# The headline scores of a multi-label model (several labels per text): no accuracy over classes there.
_MULTILABEL_METRICS = (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("samples_f1", "samples-F1"),
                       ("subset_accuracy", "subset accuracy"), ("tail_f1", "tail F1"))  # fmt: skip


def _metrics_of(saved: SavedRecord) -> tuple[tuple[str, str], ...]:
    return _MULTILABEL_METRICS if _multi_label(saved) else _METRICS


def _multi_label(saved: SavedRecord) -> bool:
    return saved.task == "multi-label"


def base_model_id(model: str) -> str | None:
    """The hub id of the model a run started from, when it has one (the embedded MiniLM has)."""
    from tailtune.data.builtin import BUILTIN_MODELS, model_spec

    if model_spec(model) == BUILTIN_MODELS[0]:
        return MINILM_HUB_ID
    looks_like_hub_id = model.count("/") <= 1 and not model.startswith((".", "/", "~")) and not Path(model).exists()
    return model if looks_like_hub_id else None


def model_card(
    config: RunConfig,
    labels: list[str],
    train_counts: list[int],
    metrics: dict[str, Any] | None = None,
    *,
    saved_config: dict[str, Any],
    data_source: str | None = None,
    scored_on: str | None = None,
) -> str:
    """The card's text: YAML front matter, then Markdown.

    Args:
        config: The run's resolved config.
        saved_config: The saved model's ``config.json``: what it records (the pooling used, the head) and what
            loads it.
        labels: Class names in id order.
        train_counts: Training examples per class, in id order.
        metrics: The run's ``metrics.json`` content (scores, selection, calibration), if it was evaluated.
        data_source: Where the training data came from (a path or a name).
        scored_on: Where the data the metrics come from came from, for the metadata's ``model-index``.
    """
    from huggingface_hub import EvalResult, ModelCardData

    base = base_model_id(config.model)
    saved = read_record(saved_config)
    evaluated = bool(metrics and metrics.get("split"))
    results = []
    if evaluated:
        dataset = scored_on or f"{metrics['split']} data"
        results = [
            EvalResult(
                task_type="text-classification",
                dataset_type="custom",
                dataset_name=str(dataset),
                dataset_split=str(metrics["split"]),
                metric_type=key,
                metric_name=name,
                metric_value=round(float(metrics[key]), 4),
            )  # fmt: skip
            for key, name in _metrics_of(saved)
            if metrics.get(key) is not None
        ]
    data = ModelCardData(
        library_name="transformers", pipeline_tag="text-classification", base_model=base,
        tags=["tailtune", "long-tailed", "imbalanced-classification", config.strategy],
        model_name="tailtune-" + config.strategy if results else None, eval_results=results or None,
    )  # fmt: skip
    body = [f"# {escape_md(config.strategy)} text classifier trained with tailtune", ""]
    body += _data_section(labels, train_counts, data_source, multi_label=_multi_label(saved))
    body += _training_section(config, metrics, saved)
    body += _results_section(metrics, _metrics_of(saved)) if evaluated else []
    body += _usage_section(saved, code_file(saved_config), saved_config.get("architectures"))
    body += _limits_section(labels, train_counts, config.max_length, config.long_texts)
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"


def write_model_card(path: str | Path, *args: Any, **kwargs: Any) -> Path:
    """Write :func:`model_card` to ``path/README.md``, for the model saved in ``path``."""
    saved_config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    target = Path(path) / CARD_FILE
    target.write_text(model_card(*args, saved_config=saved_config, **kwargs), encoding="utf-8")
    return target


def _ordered(labels: list[str], train_counts: list[int]) -> list[tuple[str, str, int]]:
    """(name, group, training examples) from head to tail, the order and groups of the report and the CLI."""
    counts = dict(zip(labels, train_counts, strict=True))
    return [(name, group, counts[name]) for name, group in ordered_classes(counts)]


def _table(header: str, rule: str, rows: list[str], folded: str | None) -> list[str]:
    """A Markdown table, inside a collapsed ``<details>`` block titled ``folded`` unless that is None."""
    table = [header, rule, *rows]
    # Markdown inside an HTML block needs blank lines around it to be read as Markdown.
    return table if folded is None else [f"<details><summary>{folded}</summary>", "", *table, "", "</details>"]


def _data_section(labels: list[str], counts: list[int], source: str | None, *, multi_label: bool) -> list[str]:
    ratio = max(counts) / max(1, min(counts))
    ordered = _ordered(labels, counts)
    lines = ["## Training data", ""]
    if source:
        lines += [f"Source: {escape_md(source)}.", ""]
    if multi_label:
        lines += [f"{len(labels)} labels, several a text (each counts the texts that carry it: {sum(counts)} in "
                  f"all); imbalance ratio {ratio:.0f} (the most frequent label over the rarest).", ""]  # fmt: skip
    else:
        lines += [f"{sum(counts)} examples in {len(labels)} classes; imbalance ratio {ratio:.0f} (the largest class "
                  "over the smallest).", ""]  # fmt: skip
    folded = None
    if len(labels) > FOLD_CLASSES:
        spans = group_spans((group, n) for _, group, n in ordered)
        lines += ["; ".join(f"{group}: {span}" for group, span in spans.items()) + ".", ""]
        folded = f"Training examples of all {len(labels)} classes, from the most frequent to the rarest"
    rows = [f"| {escape_label_md(name)} | {group} | {n} |" for name, group, n in ordered]
    return lines + _table("| class | group | training examples |", "| --- | --- | ---: |", rows, folded) + [""]


def _training_section(config: RunConfig, metrics: dict[str, Any] | None, saved: SavedRecord) -> list[str]:
    pooling = saved.pooling or config.pooling
    if config.pooling != pooling:
        pooling += f" (chosen by {config.pooling})"
    # The hub id where the model has one: a local path (the embedded MiniLM's inside a virtualenv) says nothing
    # to a reader of a shared folder.
    lines = ["## Training", "", f"Base model: `{base_model_id(config.model) or config.model}`; strategy "
             f"`{config.strategy}`; max length "
             f"{config.max_length}, batch size {config.batch_size}, seed {config.seed}, pooling {pooling}, head "
             f"{saved.head}.",
             "", "| stage | trains | loss | class weights | learning rate | epochs | min steps | sampler |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | --- |"]  # fmt: skip
    chosen = {c["stage"]: c for c in (metrics or {}).get("selection") or []}
    for i, stage in enumerate(config.stages):
        epochs = f"{chosen[i]['best_epoch']} (kept) of {chosen[i]['epochs_run']}" if i in chosen else stage.epochs
        loss = stage.loss + (f" {stage.loss_params}" if stage.loss_params else "")
        lines.append(f"| {escape_md(stage.name)} | {stage.trainable} | {escape_md(loss)} | {stage.weights} | "
                     f"{stage.lr:g} | {epochs} | {stage.min_steps or '-'} | {stage.sampler} |")  # fmt: skip
    lines.append("")
    split = (metrics or {}).get("validation_split") or {}
    if split.get("source"):
        lines.append(f"Validation: a {split['source']} split of {split.get('size')} examples chose each stage's "
                     f"best epoch by {config.select_metric}.")  # fmt: skip
    if (metrics or {}).get("refit_epochs"):
        epochs = ", ".join(f"{e:g}" for e in metrics["refit_epochs"])
        lines.append(f"The final model was then retrained on all the training data for {epochs} epochs per stage.")
    calibration = (metrics or {}).get("calibration")
    if calibration and calibration["method"] == "label-thresholds":
        lines.append("Decision rule: thresholds chosen on validation (one per label where they beat one threshold "
                     "for all and 0.5 there; a label with too few validation texts leans on the one for all), folded "
                     "into the classifier's bias so that a label is predicted where sigmoid(logit) > 0.5.")  # fmt: skip
        one = calibration.get("one_threshold")
        if one and calibration.get("validation_macro_f1_after") is not None:
            lines.append(f"Validation macro-F1 with the rule kept ({one.get('kept', 'per-label thresholds')}): "
                         f"{_fmt(calibration['validation_macro_f1_after'])}; with one threshold "
                         f"({one['threshold']:.3g}) for every label: {_fmt(one['validation_macro_f1'])}; at 0.5: "
                         f"{_fmt(calibration.get('validation_macro_f1_before'))}.")  # fmt: skip
    elif calibration:
        lines.append(f"Decision rule: {calibration['method']} (tau {calibration.get('tau')}), chosen on "
                     "validation and folded into the classifier's bias.")  # fmt: skip
    return lines + [""]


def _results_section(metrics: dict[str, Any], headline: tuple[tuple[str, str], ...] = _METRICS) -> list[str]:
    lines = [f"## Results on {escape_md(metrics['split'])} data ({metrics['n_examples']} examples)", ""]
    overall = ", ".join(f"{name} {_fmt(metrics.get(key))}" for key, name in headline if key != "tail_f1")
    # A group none of whose classes is in the data or the predictions has no score: "not measured".
    groups = ", ".join(f"{group} F1 {_fmt(metrics.get(f'{group}_f1'))}" for group in GROUPS)
    lines += [f"{overall}; {groups}.", ""]
    absent = metrics.get("absent_classes") or []
    if absent:
        lines += [f"Classes with no example in these data and no prediction are not scored and not in the averages: "
                  f"{', '.join(escape_label_md(name) for name in absent)}.", ""]  # fmt: skip
    rows = class_rows(metrics)
    folded = None
    if len(rows) > FOLD_CLASSES:
        lines += [f"{_sentence(rarest_line(rows, NAMED_CLASSES, escape_label_md))}.",
                  "", f"{_sentence(lowest_line(rows, NAMED_CLASSES, escape_label_md))}.", ""]  # fmt: skip
        folded = f"Per class: all {len(rows)} classes, from the most frequent in training to the rarest"
    confusions = metrics_confusions(metrics, NAMED_CLASSES)
    if confusions:
        lines += ["Most frequent confusions (true -> predicted: count of the true class's examples):", ""]
        lines += [f"- {confusion.text(escape_label_md)}" for confusion in confusions] + [""]
    if folded is None:
        lines += ["Per class, from the most frequent in training to the rarest:", ""]
    table = []
    for row in rows:
        scores = " | ".join(_fmt(value, missing="-") for value in (row.precision, row.recall, row.f1))
        table.append(f"| {escape_label_md(row.name)} | {row.group} | {row.train_count} | {scores} | {row.support} |")
    header = "| class | group | training examples | precision | recall | F1 | support |"
    return lines + _table(header, "| --- | --- | ---: | ---: | ---: | ---: | ---: |", table, folded) + [""]


def _sentence(text: str) -> str:
    """``text`` with a capital first letter."""
    return text[:1].upper() + text[1:]


def _usage_section(saved: SavedRecord, code: str | None, architectures: list[str] | None) -> list[str]:
    lines = ["## How to use", ""]
    if code:
        what = ("its head reads the mean of the token states (mean pooling)" if saved.pooling == "mean"
                else "its head is tailtune's mlp (hidden -> 50 -> ReLU -> classes)")  # fmt: skip
        classes = f"`{code}`" + (f" (`{architectures[0]}`)" if architectures else "")
        lines += [f"The stock `transformers` classes cannot run this model: {what}. So the folder declares a model "
                  f"type of its own and carries its classes in {classes}. `transformers` refuses the folder unless "
                  "given `trust_remote_code=True`, which runs that file and nothing else: it imports only `torch` "
                  "and `transformers` and fetches no code from the network.", ""]  # fmt: skip
    lines += ["With `transformers`:", ""]
    call = 'pipeline("text-classification", model="PATH"' + (", trust_remote_code=True)" if code else ")")
    # The pipeline reads whole texts unless told to cut them, and then cuts them at the tokenizer's limit: the
    # saved tokenizer states the trained length (save_classifier), where tailtune cuts them too.
    read = ", truncation=True" if saved.max_length else ""
    if _multi_label(saved):
        lines += ["```python", "from transformers import pipeline", "", f"classifier = {call}",
                  f'scores = classifier("a new text", top_k=None, function_to_apply="sigmoid"{read})',
                  'labels = [s["label"] for s in scores if s["score"] > 0.5]', "```", "",
                  "Each label is scored on its own (a sigmoid); its threshold is in the bias, so 0.5 gives the "
                  "label set tailtune predicts (possibly empty).", ""]  # fmt: skip
    else:
        lines += ["```python", "from transformers import pipeline", "", f"classifier = {call}",
                  f'classifier("a new text"{read})', "```", ""]  # fmt: skip
    if saved.max_length:
        tailtune_reads = ("and as tailtune reads it with `--long-texts truncate` (otherwise tailtune reads this "
                          f"model's longer texts whole, in windows of {saved.max_length} tokens whose logits it "
                          "averages)" if saved.long_texts == "chunks"
                          else "and as tailtune reads it")  # fmt: skip
        lines += [f"`truncation=True` reads the first {saved.max_length} tokens of a longer text, as the model was "
                  f"trained {tailtune_reads}: the folder's tokenizer states {saved.max_length} as its limit. "
                  "Without it, the pipeline reads long texts whole and can predict otherwise.", ""]  # fmt: skip
    lines += ["Or with tailtune" + (", which needs no `trust_remote_code`" if code else "")
              + ': `TailTuner.load("PATH").predict([...])`, or `tailtune predict --model PATH`.', ""]  # fmt: skip
    if code:
        lines += ["A model that plain `transformers` loads as an ordinary checkpoint is trained with the `[CLS]` "
                  "pooler and the linear head: `--pooling cls --head linear` (`pooling=\"cls\", head=\"linear\"` in "
                  "Python).", ""]  # fmt: skip
    return lines


def _limits_section(labels: list[str], counts: list[int], max_length: int, long_texts: str) -> list[str]:
    few = [(name, n) for name, _, n in _ordered(labels, counts) if n < FEW_EXAMPLES]
    lines = ["## Limits", ""]
    if len(few) > 2 * NAMED_CLASSES:
        named = ", ".join(f"{escape_label_md(name)} ({n})" for name, n in rarest(few, 2 * NAMED_CLASSES))
        lines.append(f"{len(few)} classes have fewer than {FEW_EXAMPLES} training examples (all in the table above); "
                     f"the rarest: {named}. Their scores rest on few examples and will vary with new data more than "
                     "the others'.")  # fmt: skip
    elif few:
        named = ", ".join(f"{escape_label_md(name)} ({n})" for name, n in few)
        lines.append(f"Classes with fewer than {FEW_EXAMPLES} training examples: {named}. Their scores rest on "
                     "few examples and will vary with new data more than the others'.")  # fmt: skip
    else:
        lines.append(f"Every class had at least {FEW_EXAMPLES} training examples.")
    if long_texts == "truncate":
        lines.append(f"It knows only the classes above, and reads only the first {max_length} tokens of a text.")
    else:
        lines.append(f"It knows only the classes above. It was trained on the first {max_length} tokens of each text; "
                     f"tailtune's prediction reads a longer text whole, in up to {MAX_WINDOWS} windows of "
                     f"{max_length} tokens, and no further.")  # fmt: skip
    return lines


def _fmt(value: float | None, missing: str = "not measured") -> str:
    return missing if value is None else f"{value:.4f}"
