"""Trainable scopes and the model layouts they need: the one home of "which part of the model trains".

A *scope* names what a stage trains: ``head`` (the classification head), ``top<k>`` (the head, the pooler
where the architecture has one, and the top k encoder layers) or ``all``. A *layout* says where an
architecture keeps its embeddings, encoder layers, pooler and head. Together they decide which parameters
train (:func:`set_trainable`) and whether a stage may train on cached features of the frozen bottom
(:func:`cacheable`).

This module imports torch only where a model is at hand, so that validating a scope (every stage config does)
stays cheap for the commands that only read runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    from torch import nn

_TOP_K = re.compile(r"^top([1-9][0-9]*)$")


def validate_scope(scope: str) -> None:
    """Raise unless ``scope`` is ``head``, ``all`` or ``top<k>`` with k >= 1."""
    if scope in ("head", "all") or _TOP_K.match(scope):
        return
    raise TailTuneError(f"unknown trainable scope {scope!r}; valid: head, top1, top2, ... (top<k>), all")


def scope_top_k(scope: str) -> int | None:
    """Number of top encoder layers a ``top<k>`` scope trains; 0 for ``head``; None for ``all``."""
    if scope == "all":
        return None
    if scope == "head":
        return 0
    match = _TOP_K.match(scope)
    assert match, scope
    return int(match.group(1))


@dataclass(frozen=True)
class Layout:
    """Where one architecture keeps its parts (dotted attribute paths from the classification model)."""

    embeddings: str
    layers: str
    pooler: str | None
    head: tuple[str, ...]
    final: str  # the last Linear(hidden -> K), which the ``mlp`` head replaces


def _layout(base: str, pooler: str | None, head: tuple[str, ...], final: str) -> Layout:
    return Layout(f"{base}.embeddings", f"{base}.encoder.layer", pooler, head, final)


LAYOUTS: dict[str, Layout] = {
    "bert": _layout("bert", "bert.pooler", ("classifier",), "classifier"),
    "roberta": _layout("roberta", None, ("classifier",), "classifier.out_proj"),
    "xlm-roberta": _layout("roberta", None, ("classifier",), "classifier.out_proj"),
    "electra": _layout("electra", None, ("classifier",), "classifier.out_proj"),
    "deberta-v2": _layout("deberta", "pooler", ("classifier",), "classifier"),
    "distilbert": Layout(
        "distilbert.embeddings",
        "distilbert.transformer.layer",
        None,
        ("pre_classifier", "classifier"),
        "classifier",
    ),
}


def get_layout(model: nn.Module) -> Layout:
    """The layout of a classification model.

    Raises:
        TailTuneError: The architecture has no known layout (the message lists the supported ones).
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in LAYOUTS:
        raise TailTuneError(
            f"model type {model_type!r} has no known layout for head/top-k scopes or the mlp head; "
            f"supported: {', '.join(sorted(LAYOUTS))} (scope 'all' with the linear head works with any model)"
        )
    return LAYOUTS[model_type]


def get_module(model: nn.Module, path: str) -> nn.Module:
    """Resolve a dotted attribute path (``bert.encoder.layer``)."""
    module = model
    for part in path.split("."):
        module = getattr(module, part)
    return module


def set_module(model: nn.Module, path: str, new: nn.Module) -> None:
    """Replace the module at a dotted attribute path."""
    parent, _, name = path.rpartition(".")
    setattr(get_module(model, parent) if parent else model, name, new)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's encoder layers, bottom first."""
    return get_module(model, get_layout(model).layers)


def trainable_modules(model: nn.Module, scope: str) -> list[nn.Module] | None:
    """The modules a scope trains; None means every parameter.

    ``head`` is the classification head; ``top<k>`` adds the pooler (where the architecture has one) and the
    top k encoder layers.
    """
    k = scope_top_k(scope)
    if k is None:
        return None
    layout = get_layout(model)
    modules = [get_module(model, path) for path in layout.head]
    if k > 0:
        layers = get_module(model, layout.layers)
        if k > len(layers):
            raise TailTuneError(f"scope {scope!r} asks for {k} layers but the model has {len(layers)}")
        if layout.pooler is not None:
            modules.append(get_module(model, layout.pooler))
        modules.extend(layers[len(layers) - k :])
    return modules


def set_trainable(model: nn.Module, scope: str) -> list[nn.Parameter]:
    """Set ``requires_grad`` for a scope and return the trainable parameters."""
    modules = trainable_modules(model, scope)
    for param in model.parameters():
        param.requires_grad_(modules is None)
    for module in modules or []:
        for param in module.parameters():
            param.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def cacheable(model: nn.Module, scope: str) -> bool:
    """Whether a stage with this scope can train on cached features."""
    k = scope_top_k(scope)
    if k is None:
        return False
    layout = get_layout(model)
    # DeBERTa's optional convolution mixes the embeddings into layer 0's output; replaying past it is unsafe.
    encoder = get_module(model, layout.layers.rpartition(".")[0])
    return getattr(encoder, "conv", None) is None


def final_linear(model: nn.Module) -> nn.Linear:
    """The layer that produces the logits (the last Linear of an mlp head).

    Architectures without a known layout are searched for their one biased Linear layer with one output per
    label.

    Raises:
        TailTuneError: No such layer is found (the decision rule cannot be folded into the model).
    """
    from torch import nn

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in LAYOUTS:
        final = get_module(model, LAYOUTS[model_type].final)
        return final[-1] if isinstance(final, nn.Sequential) else final
    n_labels = getattr(model.config, "num_labels", None)
    outputs = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == n_labels]
    if len(outputs) == 1 and outputs[0].bias is not None:
        return outputs[0]
    raise TailTuneError(
        f"calibrate: cannot find the output layer of model type {model_type!r} to fold the decision rule into; "
        "use calibrate 'none'",
        setting="calibrate",
    )
