"""Trainable scopes and the model layouts they need: the one home of "which part of the model trains".

A *scope* names what a stage trains: ``head`` (the classification head), ``top<k>`` (the head, the pooler
where the architecture has one, and the top k encoder layers) or ``all``. A *layout* says where an
architecture keeps its encoder layers, pooler and head. Together they decide which parameters train
(:func:`set_trainable`) and whether a stage may train on cached features of the frozen bottom
(:func:`cacheable`).

The architectures in :data:`LAYOUTS` were read one by one. Any other encoder is read from its structure
(:func:`discover_layout`): one stack of as many identical layers as its config states, a head made of the
classification model's other modules, ending in a biased Linear with one output per label. Models built
otherwise (layers that share weights, a head without a bias) keep scope ``all`` only.

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
    """Where one architecture keeps its parts (dotted attribute paths from the classification model).

    Attributes:
        layers: The stack of encoder layers, bottom first.
        pooler: The pooler a ``top<k>`` scope trains with the head, where the architecture has one.
        head: The modules a ``head`` scope trains.
        final: The last Linear(hidden -> K), which the ``mlp`` head replaces and the decision rule is folded into.
        first_token_head: Whether the head reads only the first token's final hidden state, so that a ``head``
            cache keeps that token alone (known for the listed architectures; not assumed for discovered ones).
    """

    layers: str
    pooler: str | None
    head: tuple[str, ...]
    final: str
    first_token_head: bool = True


def _layout(base: str, pooler: str | None, head: tuple[str, ...], final: str) -> Layout:
    return Layout(f"{base}.encoder.layer", pooler, head, final)


LAYOUTS: dict[str, Layout] = {
    "bert": _layout("bert", "bert.pooler", ("classifier",), "classifier"),
    "roberta": _layout("roberta", None, ("classifier",), "classifier.out_proj"),
    "xlm-roberta": _layout("roberta", None, ("classifier",), "classifier.out_proj"),
    "electra": _layout("electra", None, ("classifier",), "classifier.out_proj"),
    "deberta-v2": _layout("deberta", "pooler", ("classifier",), "classifier"),
    "distilbert": Layout("distilbert.transformer.layer", None, ("pre_classifier", "classifier"), "classifier"),
}

_DEPTH_KEYS = ("num_hidden_layers", "n_layer", "num_layers")


def discover_layout(model: nn.Module) -> Layout | None:
    """The layout of an architecture :data:`LAYOUTS` does not list, read from the model's structure.

    The encoder layers are the one ``ModuleList`` inside the base model holding as many modules of one class as
    the config's depth; the head is every other top-level module with parameters; the final layer is the head's
    last biased Linear with one output per label. None where any of them is not found unambiguously.
    """
    from torch import nn

    prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, prefix, None) if prefix else None
    config = getattr(model, "config", None)
    depth = next((getattr(config, key) for key in _DEPTH_KEYS if isinstance(getattr(config, key, None), int)), 0)
    if not isinstance(base, nn.Module) or depth < 1:
        return None
    stacks = [name for name, module in base.named_modules()
              if isinstance(module, nn.ModuleList) and len(module) == depth
              and len(set(map(type, module))) == 1]  # fmt: skip
    head = tuple(name for name, child in model.named_children()
                 if child is not base and next(child.parameters(), None) is not None)  # fmt: skip
    if len(stacks) != 1 or not head:
        return None
    finals = [f"{name}.{inner}" if inner else name
              for name in head for inner, module in get_module(model, name).named_modules()
              if isinstance(module, nn.Linear) and module.out_features == config.num_labels]  # fmt: skip
    if not finals or get_module(model, finals[-1]).bias is None:
        return None
    final = finals[-1]
    parent, _, position = final.rpartition(".")
    container = get_module(model, parent) if parent else None
    if isinstance(container, nn.Sequential) and position == str(len(container) - 1):
        final = parent  # the last Linear of an mlp head: the Sequential is what use_mlp_head swapped in
    pooler = getattr(base, "pooler", None)
    has_pooler = isinstance(pooler, nn.Module) and next(pooler.parameters(), None) is not None
    return Layout(f"{prefix}.{stacks[0]}", f"{prefix}.pooler" if has_pooler else None, head, final,
                  first_token_head=False)  # fmt: skip


def _model_type(model: nn.Module) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def find_layout(model: nn.Module) -> Layout | None:
    """The layout of a classification model: listed in :data:`LAYOUTS`, else :func:`discover_layout`; None where
    neither knows it."""
    return LAYOUTS.get(_model_type(model)) or discover_layout(model)


def get_layout(model: nn.Module) -> Layout:
    """The layout of a classification model (:func:`find_layout`).

    Raises:
        TailTuneError: Neither knows the architecture (the message lists the listed ones).
    """
    model_type = _model_type(model)
    layout = find_layout(model)
    if layout is None:
        raise TailTuneError(
            f"model type {model_type!r} has no known layout for head/top-k scopes or the mlp head; "
            f"supported: {', '.join(sorted(LAYOUTS))} and encoders with one stack of layers and a biased output "
            "layer; train all of it with the linear head (trainable 'all', on the command line --trainable all)"
        )
    return layout


def check_model_takes(model: nn.Module, scopes: list[str], calibrate: str) -> None:
    """Fail before any training where a model cannot take a plan, naming at once every setting it needs.

    Args:
        model: The classification model.
        scopes: The trainable scope of each stage.
        calibrate: The run's decision rule (anything but ``none`` is folded into the output layer's bias).

    Raises:
        TailTuneError: A stage trains less than the whole model of an architecture without a layout, or the
            decision rule has no biased output layer to go into.
    """
    model_type = _model_type(model)
    problems, fixes = [], []
    if any(scope != "all" for scope in scopes) and find_layout(model) is None:
        problems.append("no layout tailtune can read for training only its top")
        fixes.append(("trainable", "all"))
    if calibrate != "none":
        try:
            final_linear(model)
        except TailTuneError:
            problems.append("no biased output layer to fold the decision rule into")
            fixes.append(("calibrate", "none"))
    if problems:
        settings = " and ".join(f"{name} {value!r}" for name, value in fixes)
        flags = " ".join(f"--{name} {value}" for name, value in fixes)
        raise TailTuneError(f"model type {model_type!r} has {' and '.join(problems)}: train it with {settings} "
                            f"(on the command line {flags})")  # fmt: skip


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
    if getattr(encoder, "conv", None) is not None:
        return False
    # The listed architectures were read one by one (all batch first); a discovered one is observed.
    return layout in LAYOUTS.values() or _layers_read_batch_first(model)


def _layers_read_batch_first(model: nn.Module) -> bool:
    """Whether the layers take ``[batch, tokens, hidden]`` hidden states, the shape a cache stores (XLNet's are
    ``[tokens, batch, hidden]``)."""
    was_training = model.training
    model.eval()  # no dropout: the probe draws nothing from the random state a run is seeded with
    try:
        shape, _ = first_layer_call(model)
    finally:
        model.train(was_training)
    return shape[:2] == (1, 2)


def first_layer_call(model: nn.Module) -> tuple[tuple[int, ...], int]:
    """How the first encoder layer is called, observed on one forward pass of the whole model over one text of two
    tokens (so that the layer gets exactly the arguments its architecture passes): the shape of the hidden states
    it takes (``()`` where none is found), and 0 if it returns a tensor, else the length of the tuple it returns."""
    import torch

    seen: dict[str, object] = {}

    def take(module, args, kwargs):
        hidden = args[0] if args else kwargs.get("hidden_states")
        seen["shape"] = tuple(hidden.shape) if isinstance(hidden, torch.Tensor) else ()

    def give(module, args, output):
        seen["arity"] = len(output) if isinstance(output, tuple) else 0

    layer = encoder_layers(model)[0]
    hooks = [layer.register_forward_pre_hook(take, with_kwargs=True), layer.register_forward_hook(give)]
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            model(input_ids=torch.ones(1, 2, dtype=torch.long, device=device),
                  attention_mask=torch.ones(1, 2, device=device))  # fmt: skip
    finally:
        for hook in hooks:
            hook.remove()
    return seen["shape"], seen["arity"]  # type: ignore[return-value]


def final_linear(model: nn.Module) -> nn.Linear:
    """The layer that produces the logits (the last Linear of an mlp head).

    Architectures without a listed or discovered layout are searched for their one biased Linear layer with one
    output per label.

    Raises:
        TailTuneError: No such layer is found (the decision rule cannot be folded into the model).
    """
    from torch import nn

    model_type = _model_type(model)
    layout = find_layout(model)
    if layout is not None:
        final = get_module(model, layout.final)
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
