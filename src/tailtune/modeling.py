"""Loading and saving classifiers, head types, and trainable scopes.

tailtune works with the stock Hugging Face ``*ForSequenceClassification`` classes so that a saved model is
an ordinary checkpoint. A *layout* says where an architecture keeps its encoder layers, pooler and head;
it is what the ``head`` / ``top<k>`` scopes and the feature cache need.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import current_umask
from tailtune.pooling import mean_pooling_class, resolve_pooling, write_pooling_code
from tailtune.scopes import get_layout, get_module, set_module

logger = logging.getLogger(__name__)

MLP_HIDDEN = 50  # width of the two-stage authors' head: hidden -> 50 -> ReLU -> K
# Config keys for the dropout on attention probabilities: BERT, RoBERTa, ELECTRA, DeBERTa, XLM-R use the
# first; DistilBERT and ModernBERT the second.
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def use_mlp_head(model: nn.Module, num_labels: int) -> None:
    """Replace the final Linear(hidden -> K) by Linear(hidden -> 50) -> ReLU -> Linear(50 -> K)."""
    layout = get_layout(model)
    final = get_module(model, layout.final)
    mlp = nn.Sequential(nn.Linear(final.in_features, MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, num_labels))
    set_module(model, layout.final, mlp.to(device=final.weight.device, dtype=final.weight.dtype))
    model.config.tailtune_head = "mlp"


def position_limit(model_config, tokenizer) -> int | None:
    """The most tokens per text a model can take: the tokenizer's stated limit, else the position table's."""
    stated = getattr(tokenizer, "model_max_length", None)
    if isinstance(stated, int) and 0 < stated < 1_000_000:  # unset limits read as a huge sentinel
        return stated
    positions = getattr(model_config, "max_position_embeddings", None)
    return positions if isinstance(positions, int) and positions > 0 else None


def check_max_length(max_length: int, model_config, tokenizer) -> None:
    """Refuse a token budget the model has no positions for (it would fail deep inside a run), or one that leaves
    no room for text after the tokenizer's special tokens (every text would read the same)."""
    limit = position_limit(model_config, tokenizer)
    if limit is not None and max_length > limit:
        raise TailTuneError(f"max_length {max_length} is above this model's limit of {limit} tokens; "
                            f"give at most {limit}", setting="max_length")  # fmt: skip
    special = tokenizer.num_special_tokens_to_add()
    if max_length <= special:
        raise TailTuneError(f"max_length {max_length} leaves no room for text: this model's tokenizer adds {special} "
                            f"special tokens to each; give at least {special + 1}", setting="max_length")  # fmt: skip


def check_model_folder(path: Path) -> None:
    """Raise a clear error unless a local folder holds a safetensors model."""
    if not (path / "config.json").is_file():
        raise TailTuneError(f"{path}: no model here (expected config.json and model.safetensors)")
    if not any(path.glob("*.safetensors")) and not (path / "model.safetensors.index.json").is_file():
        hint = " (found a pickle checkpoint: re-save it with safetensors)" if any(path.glob("*.bin")) else ""
        raise TailTuneError(f"{path}: no *.safetensors weights{hint}; tailtune loads safetensors only")


def load_classifier(
    name_or_path: str,
    labels: list[str],
    *,
    head: str = "linear",
    pooling: str = "cls",
    trust_remote_code: bool = False,
    attention_dropout: float | None = None,
):
    """Load a pretrained encoder with a classification head for ``labels``, and its tokenizer.

    A checkpoint whose head has another number of labels (or none) gets a fresh head; the log says so.
    A model saved by tailtune with the mlp head is restored with it.

    Args:
        name_or_path: Local folder or hub id.
        labels: Label names in id order.
        head: ``linear`` or ``mlp``.
        pooling: ``cls`` (the stock head on the ``[CLS]`` pooler), ``mean`` (the head reads the token mean) or
            ``auto`` (``mean`` for sentence-transformers checkpoints trained for it; see :mod:`tailtune.pooling`).
        trust_remote_code: Allow code shipped with the checkpoint.
        attention_dropout: Dropout on attention probabilities while training (None: the checkpoint's). The
            saved config keeps the checkpoint's value, so later fine-tuning elsewhere starts as it would have.

    Returns:
        ``(model, tokenizer)``.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    local = Path(name_or_path).expanduser()
    if local.exists() or name_or_path.startswith((".", "/", "~")):
        if not local.is_dir():
            raise TailTuneError(f"{name_or_path}: model folder not found")
        check_model_folder(local)
        name_or_path = str(local)
    try:
        source_config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise TailTuneError(f"{name_or_path}: cannot load a model config ({first_line(exc)})") from None
    saved_head = getattr(source_config, "tailtune_head", "linear")
    if pooling == "auto" and hasattr(source_config, "tailtune_pooling"):
        pooling = source_config.tailtune_pooling  # a tailtune checkpoint keeps the pooling it was trained with
    if pooling == "auto" and head == "mlp":
        pooling = "cls"  # the authors' mlp head reads the [CLS] pooler
    pooling = resolve_pooling(pooling, name_or_path, getattr(source_config, "model_type", None))
    if pooling == "mean" and head == "mlp":
        raise TailTuneError("head 'mlp' reads the [CLS] pooler; use it with pooling 'cls'", setting="head")
    id2label = dict(enumerate(labels))
    same_head = source_config.num_labels == len(labels) and saved_head == head and _is_classifier(source_config)
    if not same_head:
        logger.info("initialising a fresh %s classification head with %d labels", head, len(labels))
    kwargs = {
        "num_labels": len(labels),
        "id2label": id2label,
        "label2id": {name: i for i, name in id2label.items()},
        "trust_remote_code": trust_remote_code,
        "use_safetensors": True,
        # Master weights in float32 whatever the checkpoint's dtype: AdamW updates are lost in bf16/fp16
        # weights; mixed precision autocasts the compute instead.
        "dtype": torch.float32,
    }
    dropout_keys = [key for key in ATTENTION_DROPOUT_KEYS if hasattr(source_config, key)]
    if attention_dropout is not None:
        kwargs.update(dict.fromkeys(dropout_keys, attention_dropout))
    try:
        if pooling == "mean":
            from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

            base = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(source_config)]
            model = mean_pooling_class(base).from_pretrained(name_or_path, ignore_mismatched_sizes=True, **kwargs)
            model.config.tailtune_head = "linear"
        elif saved_head == "mlp" and head == "mlp" and same_head:
            model = _load_mlp_classifier(name_or_path, **kwargs)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                name_or_path, ignore_mismatched_sizes=True, **kwargs
            )
            if saved_head == "mlp":
                # Drop the saved mlp head: a new label set or head type starts from a fresh head.
                model.config.tailtune_head = "linear"
            if head == "mlp":
                use_mlp_head(model, len(labels))
        model.config.tailtune_pooling = pooling
        for key in dropout_keys:  # the layers were built with the override; the config keeps the checkpoint's
            setattr(model.config, key, getattr(source_config, key))
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True, trust_remote_code=trust_remote_code)
    except TailTuneError:
        raise  # already one line naming what to do (TailTuneError is a ValueError too)
    except (OSError, ValueError) as exc:
        raise TailTuneError(f"{name_or_path}: cannot load the model ({first_line(exc)})") from None
    return model, tokenizer


def load_saved_classifier(path: str | Path, *, trust_remote_code: bool = False):
    """Load a classifier saved by tailtune (or any fine-tuned sequence classifier) with its own labels.

    Returns:
        ``(model, tokenizer, labels)``.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise TailTuneError(f"{path}: model folder not found")
    check_model_folder(path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=int)]
    if not labels:
        raise TailTuneError(f"{path}: config.json has no id2label; is this a fine-tuned classifier?")
    model, tokenizer = load_classifier(
        str(path), labels, head=config.get("tailtune_head", "linear"), pooling=config.get("tailtune_pooling", "cls"),
        trust_remote_code=trust_remote_code,
    )  # fmt: skip
    return model, tokenizer, labels


def _load_mlp_classifier(path: str, **kwargs) -> nn.Module:
    """Build the stock class, swap in the mlp head, then load every saved weight into it."""
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path, ignore_mismatched_sizes=True, **kwargs)
    use_mlp_head(model, kwargs["num_labels"])
    state = {}
    for file in sorted(Path(path).glob("*.safetensors")):
        state.update(load_file(str(file)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    head_missing = [k for k in missing if k.startswith(get_layout(model).final)]
    if head_missing or unexpected:
        raise TailTuneError(f"{path}: saved mlp head does not match the model ({(head_missing + unexpected)[:3]})")
    return model


_MLP_CODE = '''"""{base} with tailtune's MLP head (hidden -> {width} -> ReLU -> K in place of the last linear layer)."""

from torch import nn
from transformers import {base}


class {name}({base}):
    def __init__(self, config):
        super().__init__(config)
        parent = self{parent}
        final = parent.{attr}
        parent.{attr} = nn.Sequential(
            nn.Linear(final.in_features, {width}), nn.ReLU(), nn.Linear({width}, config.num_labels)
        )
        self.post_init()
'''


def save_classifier(model: nn.Module, tokenizer, path: str | Path) -> None:
    """``save_pretrained`` model (safetensors) and tokenizer into ``path``.

    A model with the mlp head has no stock class, so its folder also gets a small modeling file and an
    ``auto_map``: ``pipeline(..., trust_remote_code=True)`` loads it; tailtune loads it either way.
    """
    path = Path(path)
    if getattr(model.config, "tailtune_pooling", "cls") == "mean":
        write_pooling_code(model, path)
    if getattr(model.config, "tailtune_head", "linear") == "mlp":
        base = type(model).__name__
        name = f"TailTuneMLP{base}"
        parent, _, attr = get_layout(model).final.rpartition(".")
        code = _MLP_CODE.format(base=base, name=name, parent=f".{parent}" if parent else "", attr=attr,
                                width=MLP_HIDDEN)  # fmt: skip
        path.mkdir(parents=True, exist_ok=True)
        (path / "tailtune_mlp_head.py").write_text(code, encoding="utf-8")
        model.config.auto_map = {"AutoModelForSequenceClassification": f"tailtune_mlp_head.{name}"}
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    # Weights come out private (0600) whatever the umask; give every file the mode a plain open() would.
    mode = 0o666 & ~current_umask()
    for file in path.iterdir():
        if file.is_file():
            file.chmod(mode)


def _is_classifier(config) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in (getattr(config, "architectures", None) or []))
