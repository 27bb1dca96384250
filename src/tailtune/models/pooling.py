"""How the classifier reads the encoder: the stock ``[CLS]`` pooler, or the mean over tokens.

Sentence-transformers checkpoints (such as the embedded all-MiniLM-L6-v2) were trained to be read by mean
pooling; their ``[CLS]`` pooler is untrained for the task, so a stock head on it starts far behind. With
``pooling="mean"`` the head reads the mask-weighted mean of the last hidden states instead.

The mean-pooling classifier subclasses the checkpoint's own ``*ForSequenceClassification`` class and keeps
its parameter names. Its folder gets a small modeling file (``tailtune_pooling.py``) and tailtune's own model
type (see :mod:`tailtune.models.saved`): ``transformers.pipeline(..., trust_remote_code=True)`` loads it as trained,
and without ``trust_remote_code`` transformers refuses it rather than read the ``[CLS]`` pooler instead.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from torch import nn

from tailtune.config import POOLINGS
from tailtune.errors import TailTuneError
from tailtune.models.saved import FolderCode, own_config

logger = logging.getLogger(__name__)

# Architectures whose classification model puts ``classifier`` on top of ``base_model``: BERT's is a linear layer
# after ``dropout``; the others' is a head module that reads the first token of ``[batch, tokens, hidden]``, which
# is handed the mean there. The sentence-transformers checkpoints people fine-tune are of these types.
MEAN_POOLING_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "mpnet")
CODE_FILE = "tailtune_pooling.py"


def detect_pooling(name_or_path: str) -> str:
    """``mean`` for a local sentence-transformers folder that pools by the mean of tokens, else ``cls``.

    The folder says so in ``modules.json`` and its pooling module's ``config.json``
    (``pooling_mode_mean_tokens``). Hub ids are not downloaded to find out: they read ``cls``.
    """
    folder = Path(name_or_path).expanduser()
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return "cls"
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        for module in modules:
            if str(module.get("type", "")).endswith("Pooling"):
                config = json.loads((folder / module["path"] / "config.json").read_text(encoding="utf-8"))
                return "mean" if config.get("pooling_mode_mean_tokens") else "cls"
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        logger.warning("%s: could not read the sentence-transformers pooling settings; using [CLS]", folder)
    return "cls"


def resolve_pooling(pooling: str, name_or_path: str, model_type: str | None) -> str:
    """The pooling a run uses: ``auto`` becomes ``mean`` where the checkpoint was trained for it.

    Raises:
        TailTuneError: ``mean`` asked for an architecture without mean-pooling support.
    """
    if pooling not in POOLINGS:
        raise TailTuneError(f"pooling: unknown {pooling!r}; valid: {', '.join(POOLINGS)}", setting="pooling")
    if pooling == "auto":
        if detect_pooling(name_or_path) != "mean":
            return "cls"
        if model_type in MEAN_POOLING_TYPES:
            return "mean"
        logger.info("%s was trained to be read by the mean of its tokens, which tailtune offers for model types %s, "
                    "not %r: its head reads the stock pooled output", name_or_path, ", ".join(MEAN_POOLING_TYPES),
                    model_type)  # fmt: skip
        return "cls"
    if pooling == "mean" and model_type not in MEAN_POOLING_TYPES:
        raise TailTuneError(
            f"pooling: 'mean' supports model types {', '.join(MEAN_POOLING_TYPES)}, not {model_type!r}; "
            "use pooling 'cls'",
            setting="pooling",
        )
    return pooling


# The mean-pooling classifier's source is written into every saved model folder (for
# ``pipeline(..., trust_remote_code=True)``) and executed here for tailtune's own use: one source for both.
# Here its config class is the architecture's own; in the folder, the file's config class.
_POOL_SOURCE = '''
def mean_pool(hidden, attention_mask):
    """Mean of the hidden states over the tokens the mask keeps: [B, T, H] -> [B, H]."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
'''
_CLASS_SOURCE = '''
class {name}({base}):
    """{base} whose head reads the mean of the last hidden states over the attention mask."""

    config_class = {config}

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        kwargs.pop("return_dict", None)
        if token_type_ids is not None:  # not every architecture takes them (MPNet does not)
            kwargs["token_type_ids"] = token_type_ids
        outputs = self.base_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        pooled = mean_pool(outputs.last_hidden_state, attention_mask)
        if isinstance(self.classifier, nn.Linear):  # BERT: dropout, then the output layer
            logits = self.classifier(self.dropout(pooled))
        else:  # a head that reads the first token of [batch, tokens, hidden] (RoBERTa, MPNet) reads the mean
            logits = self.classifier(pooled.unsqueeze(1))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
'''
_IMPORTS = """\"\"\"{base} whose head reads the token mean, as tailtune trained it. Loaded by
``transformers`` with ``trust_remote_code=True``; it imports only torch and transformers.\"\"\"

from torch import nn
from transformers import {config}, {base}
from transformers.modeling_outputs import SequenceClassifierOutput
"""

_pool_namespace: dict = {}
exec(_POOL_SOURCE, _pool_namespace)  # mean_pool here comes from the very text the saved folders get
mean_pool = _pool_namespace["mean_pool"]


_CLASS_PREFIX = "TailTuneMeanPooling"
_classes: dict[str, type] = {}  # one mean-pooling class per base class name (mean_pooling_class)


def _class_name(base: str) -> str:
    return f"{_CLASS_PREFIX}{base}"


def mean_pooling_class(base: type) -> type:
    """A subclass of ``base`` (e.g. ``BertForSequenceClassification``) whose head reads the token mean.

    One class per base, an attribute of this module by its name, so that a model of it pickles (a fitted
    :class:`~tailtune.TailTuner` holds one) and unpickles in a new process (see :func:`__getattr__`).
    """
    from transformers.modeling_outputs import SequenceClassifierOutput

    name = _class_name(base.__name__)
    if name not in _classes:
        config = base.config_class
        namespace = {"__name__": __name__, base.__name__: base, config.__name__: config, "nn": nn,
                     "mean_pool": mean_pool, "SequenceClassifierOutput": SequenceClassifierOutput}  # fmt: skip
        exec(_CLASS_SOURCE.format(base=base.__name__, name=name, config=config.__name__), namespace)
        _classes[name] = namespace[name]
    return _classes[name]


def __getattr__(name: str) -> type:
    """The mean-pooling class ``TailTuneMeanPooling<Base>`` of a transformers class ``<Base>``, made on first use
    (as unpickling a model asks for it by name)."""
    import transformers

    base = getattr(transformers, name[len(_CLASS_PREFIX) :], None) if name.startswith(_CLASS_PREFIX) else None
    if not isinstance(base, type):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return mean_pooling_class(base)


def pooling_code(model: nn.Module) -> FolderCode:
    """The modeling file of a saved mean-pooling model: its config class, ``mean_pool`` and the model class."""
    base = type(model).__mro__[1].__name__
    name = _class_name(base)
    config = own_config(model, "mean-pooling", name)
    text = (_IMPORTS.format(base=base, config=config.base) + config.source + _POOL_SOURCE + "\n"
            + _CLASS_SOURCE.format(base=base, name=name, config=config.name))  # fmt: skip
    return FolderCode(file=CODE_FILE, config=config, model_class=name, text=text)
