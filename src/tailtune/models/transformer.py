"""Loading and saving classifiers, head types, and trainable scopes.

tailtune works with the stock Hugging Face ``*ForSequenceClassification`` classes, so that a saved model with
the stock pooling and the linear head is an ordinary checkpoint (others carry their own modeling file:
:mod:`tailtune.models.saved`). A *layout* says where an architecture keeps its encoder layers, pooler and head;
it is what the ``head`` / ``top<k>`` scopes and the feature cache need.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import torch
from torch import nn

from tailtune.data.builtin import resolve_model
from tailtune.data.types import placeholder_labels
from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import current_umask
from tailtune.models.pooling import mean_pooling_class, pooling_code, resolve_pooling
from tailtune.models.quiet import quiet_transformers
from tailtune.models.saved import (
    MODEL_DIR,
    FolderCode,
    base_config,
    mark_folder,
    needs_own_classes,
    own_config,
    read_config,
    read_record,
    write_record,
)
from tailtune.models.scopes import final_linear, get_layout, get_module, set_module

logger = logging.getLogger(__name__)

MLP_HIDDEN = 50  # width of the two-stage authors' head: hidden -> 50 -> ReLU -> K
# Config keys for the dropout on attention probabilities: BERT, RoBERTa, ELECTRA, DeBERTa, XLM-R use the
# first; DistilBERT and ModernBERT the second.
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")
# Model types whose position ids start after the padding token's (transformers' create_position_ids_from_input_ids):
# a text's first token takes position pad_token_id + 1, so the table holds pad_token_id + 1 fewer tokens.
PADDING_OFFSET_TYPES = frozenset({
    "camembert", "data2vec-text", "esm", "ibert", "layoutlmv3", "lilt", "longformer", "luke", "markuplm", "mpnet",
    "roberta", "roberta-prelayernorm", "xlm-roberta", "xlm-roberta-xl", "xmod",
})  # fmt: skip
UNSTATED_LIMIT = 1_000_000  # a tokenizer that states no limit reads as a huge sentinel (VERY_LARGE_INTEGER)


def use_mlp_head(model: nn.Module, num_labels: int) -> None:
    """Replace the final Linear(hidden -> K) by Linear(hidden -> 50) -> ReLU -> Linear(50 -> K)."""
    layout = get_layout(model)
    final = get_module(model, layout.final)
    mlp = nn.Sequential(nn.Linear(final.in_features, MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, num_labels))
    set_module(model, layout.final, mlp.to(device=final.weight.device, dtype=final.weight.dtype))
    write_record(model.config, head="mlp")


def position_limit(model_config, tokenizer) -> int | None:
    """The most tokens per text a model can take: the smaller of its tokenizer's limit and its usable positions.

    Args:
        model_config: The model's config, or its ``config.json`` as a dict.
        tokenizer: The tokenizer loaded from the same folder.

    Returns:
        The limit, or None where neither the tokenizer nor the config states one.
    """
    limits = (tokenizer_limit(model_config, tokenizer), usable_positions(model_config))
    return min((limit for limit in limits if limit is not None), default=None)


def tokenizer_limit(model_config, tokenizer) -> int | None:
    """The limit a model's tokenizer states of its own (None: none).

    A tokenizer tailtune saved states the length the model was trained at, which is no limit of the model's:
    its own is in the record (``tokenizer_max_length``).
    """
    own = read_record(model_config).tokenizer_max_length
    stated = own if own is not None else getattr(tokenizer, "model_max_length", None)
    return stated if isinstance(stated, int) and 0 < stated < UNSTATED_LIMIT else None


def usable_positions(model_config) -> int | None:
    """How many tokens a text can have for the model's position table (None: the config gives no table size)."""
    get = model_config.get if isinstance(model_config, dict) else lambda key: getattr(model_config, key, None)
    positions = get("max_position_embeddings")
    if not isinstance(positions, int) or positions <= 0:
        return None
    if (read_record(model_config).base_model_type or get("model_type")) in PADDING_OFFSET_TYPES:
        pad = get("pad_token_id")
        positions -= (pad if isinstance(pad, int) else 1) + 1  # 1: the family's usual padding id
    return positions if positions > 0 else None


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
    """Raise a clear error unless a local folder holds a safetensors model and its tokenizer."""
    if not (path / "config.json").is_file():
        raise TailTuneError(f"{path}: no model here (expected config.json and model.safetensors)")
    if not any(path.glob("*.safetensors")) and not (path / "model.safetensors.index.json").is_file():
        if (path / MODEL_DIR).is_dir():  # a run directory (of any family): its config.json is the run's
            raise TailTuneError(f"{path}: this is a run directory; its model is {path / MODEL_DIR}")
        hint = " (found a pickle checkpoint: re-save it with safetensors)" if any(path.glob("*.bin")) else ""
        raise TailTuneError(f"{path}: no *.safetensors weights{hint}; tailtune loads safetensors only")
    if not any((path / name).is_file() for name in _VOCABULARY_FILES) and not any(path.glob("*.model")):
        # transformers would make a tokenizer of a handful of special tokens: every word unknown, nothing learned.
        raise TailTuneError(f"{path}: no tokenizer (tokenizer.json, vocab.txt, vocab.json or a SentencePiece "
                            "*.model); save the tokenizer into the folder (tokenizer.save_pretrained)")  # fmt: skip


#: Files of which a checkpoint's tokenizer holds at least one (a SentencePiece ``*.model`` besides).
_VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json")


def names_local_folder(name: str) -> bool:
    """Whether ``--model`` names a folder on this machine rather than a hub id: it exists, starts with ``.``, ``/``
    or ``~``, or its first folder is here (``models/bert-tiny`` beside a ``models`` folder), so that a mistyped
    path is reported missing at once instead of being tried, and retried, on the hub."""
    path = Path(name).expanduser()
    return path.exists() or name.startswith((".", "/", "~")) or (len(path.parts) > 1 and Path(path.parts[0]).is_dir())


def model_at_hand(name: str) -> bool:
    """Whether ``--model`` can be read before it is loaded: False for a local folder that is missing (loading it
    says so), True for a hub id; a local folder without weights or tokenizer is refused here
    (:func:`check_model_folder`), before its tokenizer is asked for anything."""
    path = Path(name).expanduser()
    if names_local_folder(name):
        if not path.is_dir():
            return False
        check_model_folder(path)
    return True


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

    A checkpoint whose trained head has the same label names keeps it, its rows put in the order of
    ``labels``; any other checkpoint gets a fresh head, and the log says so. A model saved by tailtune is
    restored with its head and pooling, without running the folder's modeling file.

    Args:
        name_or_path: Local folder or hub id.
        labels: Label names in id order.
        head: ``linear`` or ``mlp``.
        pooling: ``cls`` (the stock head on the ``[CLS]`` pooler), ``mean`` (the head reads the token mean) or
            ``auto`` (``mean`` for sentence-transformers checkpoints trained for it; see
            :mod:`~tailtune.models.pooling`).
        trust_remote_code: Allow code shipped with a checkpoint tailtune did not save.
        attention_dropout: Dropout on attention probabilities while training (None: the checkpoint's). The
            saved config keeps the checkpoint's value, so later fine-tuning elsewhere starts as it would have.

    Returns:
        ``(model, tokenizer)``.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    local = Path(name_or_path).expanduser()
    if not model_at_hand(name_or_path):
        raise TailTuneError(f"{name_or_path}: model folder not found")
    if local.is_dir():
        name_or_path = str(local)
    try:
        config_dict = read_config(name_or_path)
        if needs_own_classes(config_dict):  # its base architecture's config, for tailtune's own classes
            source_config = base_config(config_dict, name_or_path)
        else:
            source_config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except TailTuneError:
        raise
    except (OSError, ValueError) as exc:
        where = "" if local.is_dir() else "no such local folder, and "
        raise TailTuneError(f"{name_or_path}: {where}cannot load a model config ({first_line(exc)})") from None
    saved = read_record(source_config)
    if pooling == "auto" and saved.pooling:
        pooling = saved.pooling  # a tailtune checkpoint keeps the pooling it was trained with
    if pooling == "auto" and head == "mlp":
        pooling = "cls"  # the authors' mlp head reads the [CLS] pooler
    pooling = resolve_pooling(pooling, name_or_path, getattr(source_config, "model_type", None))
    if pooling == "mean" and head == "mlp":
        raise TailTuneError("head 'mlp' reads the [CLS] pooler; use it with pooling 'cls'", setting="head")
    trained_labels = _trained_labels(source_config)
    keep_head = saved.head == head and trained_labels is not None and sorted(trained_labels) == sorted(labels)
    if not keep_head:
        _log_fresh_head(head, labels, saved.head, trained_labels)
    config = copy.deepcopy(source_config)
    config.id2label = dict(enumerate(labels))
    config.label2id = {name: i for i, name in enumerate(labels)}
    dropout_keys = [key for key in ATTENTION_DROPOUT_KEYS if hasattr(source_config, key)]
    for key in dropout_keys if attention_dropout is not None else ():
        setattr(config, key, attention_dropout)
    kwargs = {
        "config": config,
        "ignore_mismatched_sizes": True,
        "use_safetensors": True,
        # Master weights in float32 whatever the checkpoint's dtype: AdamW updates are lost in bf16/fp16
        # weights; mixed precision autocasts the compute instead.
        "dtype": torch.float32,
    }
    with quiet_transformers(bars=local.is_dir()):
        try:
            if pooling == "mean":
                from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

                base = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(source_config)]
                model = mean_pooling_class(base).from_pretrained(name_or_path, **kwargs)
            elif saved.head == "mlp" and keep_head:
                model = _load_mlp_classifier(name_or_path, **kwargs)
            else:
                model = AutoModelForSequenceClassification.from_pretrained(
                    name_or_path, trust_remote_code=trust_remote_code, **kwargs
                )  # a saved mlp head has other parameter names: a linear head or a new mlp starts fresh
                if head == "mlp":
                    use_mlp_head(model, len(labels))
            if keep_head:
                _reorder_head(model, trained_labels, labels, name_or_path)
            elif trained_labels is not None and len(trained_labels) == len(labels) and saved.head == head == "linear":
                _fresh_output_layer(model, name_or_path)  # same shape, so transformers kept the checkpoint's rows
            write_record(model.config, pooling=pooling, head=head)
            for key in dropout_keys:  # the layers were built with the override; the config keeps the checkpoint's
                setattr(model.config, key, getattr(source_config, key))
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, config=source_config, use_fast=True,
                                                      trust_remote_code=trust_remote_code)  # fmt: skip
        except TailTuneError:
            raise  # already one line naming what to do (TailTuneError is a ValueError too)
        except (OSError, ValueError) as exc:
            raise TailTuneError(f"{name_or_path}: cannot load the model ({first_line(exc)})") from None
    return model, tokenizer


def load_saved_classifier(path: str | Path, *, trust_remote_code: bool = False):
    """Load a classifier saved by tailtune (or any fine-tuned sequence classifier) with its own labels.

    Args:
        path: The model's folder, or a ``builtin:`` name as training takes it (which names no classifier).
        trust_remote_code: Allow code shipped with a checkpoint tailtune did not save.

    Raises:
        TailTuneError: The folder holds no trained classification head (a base encoder, or a classifier
            config whose weights lack the head), whose predictions would be random.

    Returns:
        ``(model, tokenizer, labels)``.
    """
    builtin = str(path).startswith("builtin:")
    name = str(path) if builtin else str(Path(path).expanduser())  # what messages call it
    path = Path(resolve_model(name) if builtin else name)
    if not path.is_dir():
        raise TailTuneError(f"{path}: model folder not found")
    check_model_folder(path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=int)]
    untrained = f"train a classifier from it first (tailtune train --model {name} ...) and use that one"
    if not labels or (not _is_classifier(config) and labels == placeholder_labels(len(labels))):
        named = f"the default labels {', '.join(labels)}" if labels else "no labels (id2label)"
        raise TailTuneError(f"{name}: a {_architecture(config)} with {named}, not a trained classifier; {untrained}")
    saved = read_record(config)
    model, tokenizer = load_classifier(
        str(path), labels, head=saved.head, pooling=saved.pooling or "cls", trust_remote_code=trust_remote_code
    )
    missing = sorted(set(_output_layer_keys(model)) - _stored_keys(path))
    if missing:
        raise TailTuneError(f"{name}: config.json says {_architecture(config)} but the weights hold no trained "
                            f"classification head ({', '.join(missing)} missing); {untrained}")  # fmt: skip
    try:
        bias = final_linear(model).bias
    except TailTuneError:
        bias = None  # no biased output layer (GPT-2's has no bias): nothing tells a head saved as initialised
    if bias is not None and not bias.detach().any():
        # transformers initialises a new head's bias to exactly zero, and no optimiser step leaves it there: a
        # head saved as initialised (e.g. from_pretrained(encoder, num_labels=K).save_pretrained) is random.
        raise TailTuneError(f"{name}: the classification head was never trained (its bias is all zeros, as "
                            f"initialised), so its predictions would be random; {untrained}")  # fmt: skip
    return model, tokenizer, labels


def _trained_labels(config) -> list[str] | None:
    """The label names of a checkpoint's trained head in row order, or None when it is no classifier."""
    if not _is_classifier(config) or not config.id2label:
        return None
    return [config.id2label[i] for i in sorted(config.id2label)]


def _log_fresh_head(head: str, labels: list[str], trained_head: str, trained_labels: list[str] | None) -> None:
    """Log a fresh head, and why the checkpoint's trained one is not kept: its type, its labels or both."""
    if not trained_labels:
        logger.info("initialising a fresh %s classification head with %d labels", head, len(labels))
        return
    shown = ", ".join(trained_labels[:5]) + (", ..." if len(trained_labels) > 5 else "")
    other_labels = sorted(trained_labels) != sorted(labels)
    if trained_head == head:
        logger.info("initialising a fresh %s classification head with %d labels (the checkpoint's head is for the "
                    "labels %s)", head, len(labels), shown)  # fmt: skip
    elif other_labels:
        logger.info("initialising a fresh %s classification head with %d labels (the checkpoint's head is %s and "
                    "for the labels %s)", head, len(labels), trained_head, shown)  # fmt: skip
    else:  # the same labels: most likely continued training that meant to keep the head
        logger.warning("initialising a fresh %s classification head: the checkpoint's trained head for these labels "
                       "is %s, not %s; give head %r to keep it", head, trained_head, head, trained_head)  # fmt: skip


def _output_layer(model: nn.Module, source: str) -> nn.Linear:
    """The layer whose rows are the labels, or a clear error when it cannot be found."""
    try:
        return final_linear(model)
    except TailTuneError:
        raise TailTuneError(
            f"{source}: cannot find the output layer of model type {model.config.model_type!r} to "
            "fit the checkpoint's head to these labels; start from the base encoder instead"
        ) from None


def _reorder_head(model: nn.Module, trained: list[str], labels: list[str], source: str) -> None:
    """Put the rows of a checkpoint's trained output layer in the order of ``labels`` (the same names)."""
    if trained == labels:
        return
    final = _output_layer(model, source)
    order = torch.tensor([trained.index(name) for name in labels], device=final.weight.device)
    with torch.no_grad():
        final.weight.copy_(final.weight[order])
        if final.bias is not None:
            final.bias.copy_(final.bias[order])
    logger.info("the checkpoint's head rows are reordered from %s to %s", trained, labels)


def _fresh_output_layer(model: nn.Module, source: str) -> None:
    """Initialise the output layer as transformers initialises a new one (normal weights, zero bias)."""
    final = _output_layer(model, source)
    with torch.no_grad():
        final.weight.normal_(mean=0.0, std=getattr(model.config, "initializer_range", 0.02))
        if final.bias is not None:
            final.bias.zero_()


def _output_layer_keys(model: nn.Module) -> list[str]:
    """The state-dict names of the output layer's parameters (none when it cannot be told)."""
    try:
        final = final_linear(model)
    except TailTuneError:
        return []
    name = next(name for name, module in model.named_modules() if module is final)
    return [f"{name}.{param}" for param, _ in final.named_parameters()]


def _stored_keys(path: Path) -> set[str]:
    """The tensor names in a folder's safetensors files (read from their headers)."""
    from safetensors import safe_open

    keys: set[str] = set()
    for file in path.glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as weights:
            keys.update(weights.keys())
    return keys


def _load_mlp_classifier(path: str, **kwargs) -> nn.Module:
    """Build the stock class, swap in the mlp head, then load every saved weight into it."""
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    use_mlp_head(model, kwargs["config"].num_labels)
    state = {}
    for file in sorted(Path(path).glob("*.safetensors")):
        state.update(load_file(str(file)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    head_missing = [k for k in missing if k.startswith(get_layout(model).final)]
    if head_missing or unexpected:
        raise TailTuneError(f"{path}: saved mlp head does not match the model ({(head_missing + unexpected)[:3]})")
    return model


_MLP_CODE = '''
class {name}({base}):
    """{base} with tailtune's mlp head: hidden -> {width} -> ReLU -> K in place of the last linear layer."""

    config_class = {config}

    def __init__(self, config):
        super().__init__(config)
        parent = self{parent}
        final = parent.{attr}
        parent.{attr} = nn.Sequential(
            nn.Linear(final.in_features, {width}), nn.ReLU(), nn.Linear({width}, config.num_labels)
        )
        self.post_init()
'''
_MLP_IMPORTS = '''"""{base} with tailtune's mlp head, as tailtune trained it. Loaded by ``transformers`` with
``trust_remote_code=True``; it imports only torch and transformers."""

from torch import nn
from transformers import {config}, {base}
'''
MLP_CODE_FILE = "tailtune_mlp_head.py"


def mlp_code(model: nn.Module) -> FolderCode:
    """The modeling file of a saved model with the mlp head: its config class and the model class."""
    base = type(model).__name__
    name = f"TailTuneMLP{base}"
    config = own_config(model, "mlp-head", name)
    parent, _, attr = get_layout(model).final.rpartition(".")
    text = (_MLP_IMPORTS.format(base=base, config=config.base) + config.source
            + _MLP_CODE.format(base=base, name=name, config=config.name, parent=f".{parent}" if parent else "",
                               attr=attr, width=MLP_HIDDEN))  # fmt: skip
    return FolderCode(file=MLP_CODE_FILE, config=config, model_class=name, text=text)


def save_classifier(model: nn.Module, tokenizer, path: str | Path) -> None:
    """``save_pretrained`` model (safetensors) and tokenizer into ``path``.

    The saved tokenizer states the length the model was trained at (``tailtune_max_length``) as its
    ``model_max_length``, so that ``pipeline(...)(texts, truncation=True)`` reads each text as tailtune does; the
    config records the tokenizer's own limit (``tailtune_tokenizer_max_length``), which limits later runs.

    A model with mean pooling or the mlp head has no stock class: its folder gets a small modeling file and
    tailtune's own model type (see :mod:`tailtune.models.saved`), so ``pipeline(..., trust_remote_code=True)`` loads it
    as trained and plain transformers without it refuses. tailtune loads it either way.
    """
    path = Path(path)
    saved = read_record(model.config)
    code = pooling_code(model) if saved.pooling == "mean" else mlp_code(model) if saved.head == "mlp" else None
    write_record(model.config, base_model_type=model.config.model_type)
    own_limit = tokenizer.model_max_length
    if saved.max_length:
        # The saved tokenizer states the trained length, so that plain transformers with truncation=True reads
        # texts as tailtune does; the record keeps the tokenizer's own limit (0: none), which later runs may use.
        write_record(model.config, tokenizer_max_length=tokenizer_limit(model.config, tokenizer) or 0)
        tokenizer.model_max_length = saved.max_length
    with quiet_transformers():
        model.save_pretrained(str(path), safe_serialization=True)
    try:
        tokenizer.save_pretrained(str(path))
    finally:
        tokenizer.model_max_length = own_limit
    mark_folder(path, code)
    if code is not None:
        # The folder is often a temporary one that is renamed once complete, so the message does not name it.
        logger.info("the saved model carries %s: transformers loads it with trust_remote_code=True", code.file)
    # Weights come out private (0600) whatever the umask; give every file the mode a plain open() would.
    mode = 0o666 & ~current_umask()
    for file in path.iterdir():
        if file.is_file():
            file.chmod(mode)


def _is_classifier(config) -> bool:
    architectures = config.get("architectures") if isinstance(config, dict) else getattr(config, "architectures", None)
    return any(a.endswith("ForSequenceClassification") for a in (architectures or []))


def _architecture(config: dict) -> str:
    architectures = config.get("architectures") or []
    return architectures[0] if architectures else f"{config.get('model_type', 'model')} model"
