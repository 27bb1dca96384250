"""Stage training on cached frozen features.

When a stage trains only the top of the model, the frozen bottom computes the same hidden states for an
example in every epoch (and every seed and strategy that starts from the same pretrained weights). The
cache runs the frozen bottom once under ``inference_mode`` and keeps what enters the first trainable module:

- ``top<k>``: the hidden states entering encoder layer L-k (all tokens of each text);
- ``head``: the final hidden state of the first token, which is all a ``[CLS]`` pooler or head reads (all
  tokens' final hidden states where the head reads their mean: see :mod:`tailtune.models.pooling`).

While a stage trains on the cache, :func:`replay` swaps the frozen layers for pass-throughs and hands the
cached batch to the first trainable layer in place of its input (to the layers' output for ``head``), so the
model's own forward (embeddings, masks, remaining layers, pooler, head) runs unchanged for every supported
architecture, whatever sits between its embeddings and its first layer; the stand-in turns each batch into the
model's inputs.
Caches shared on disk between runs are named by :func:`cache_key`.

Frozen layers run in eval mode here (no dropout), whereas the uncached path runs them in train mode as
plain fine-tuning does; with dropout off both give the same parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tailtune.models.fingerprint import model_fingerprint
from tailtune.models.scopes import cacheable, encoder_layers, first_layer_call, get_layout, scope_top_k
from tailtune.training.batching import BatchPlan, Encoded

logger = logging.getLogger(__name__)


@dataclass
class FeatureCache:
    """Hidden states of every example, concatenated over tokens.

    Attributes:
        values: ``[total_tokens, hidden]`` float32 (a NumPy memmap when stored on disk).
        offsets: ``[n + 1]`` start of each example's rows.
        first_trainable_layer: Index of the first layer that runs on the cache (== number of layers for ``head``).
        first_token_only: Each example keeps only its first token's row (a ``head`` cache for a ``[CLS]`` head).
    """

    values: np.ndarray
    offsets: np.ndarray
    first_trainable_layer: int
    first_token_only: bool = False

    def batch(self, indices: list[int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Zero-padded ``[B, T, hidden]`` tensor of the given examples (T = longest among them)."""
        spans = [(int(self.offsets[i]), int(self.offsets[i + 1])) for i in indices]
        width = max(end - start for start, end in spans)
        out = np.zeros((len(indices), width, self.values.shape[1]), dtype=np.float32)
        for row, (start, end) in enumerate(spans):
            out[row, : end - start] = self.values[start:end]
        return torch.from_numpy(out).to(device=device, dtype=dtype)


def trains_on_cache(feature_cache: bool, model: nn.Module, data: Encoded, scope: str) -> bool:
    """Whether a stage of this scope trains on cached features: caching is on, the scope trains less than the whole
    model (:func:`~tailtune.models.scopes.cacheable`), and batches pad on the right, as a cache stores them."""
    return feature_cache and not data.pad_left and cacheable(model, scope)


def cache_key(model: str, data: Encoded, scope: str, max_length: int, *, pooling: str = "cls") -> str:
    """Key of a cache shared between runs: the pretrained weights, token ids, max length, scope and pooling.

    Args:
        model: The pretrained model's folder or hub id; a local folder is identified by the content of its weights
            and ``config.json`` (:func:`~tailtune.models.fingerprint.model_fingerprint`), so that other weights
            saved under the same path get other caches, even where their files' sizes and times are the same.
        data: The encoded training data.
        scope: The stage's trainable scope (``top<k>`` or ``head``).
        max_length: The token budget the data was encoded with.
        pooling: What the head reads: a mean-pooling head caches every token, a ``[CLS]`` head one.
    """
    model = model_fingerprint(model) or ""
    if pooling != "cls":
        scope = f"{scope}|{pooling}"
    raw = f"{model}|{data.fingerprint()}|{max_length}|{scope}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def pooling_of(model: nn.Module) -> str:
    """What the model's head reads: ``cls`` (the first token) unless tailtune built it to pool otherwise."""
    return getattr(getattr(model, "config", None), "tailtune_pooling", "cls")


def build_cache(
    model: nn.Module,
    data: Encoded,
    scope: str,
    *,
    batch_size: int,
    device: torch.device,
    autocast: contextlib.AbstractContextManager | None = None,
    cache_dir: str | Path | None = None,
    key: str | None = None,
    show_progress: bool = True,
) -> FeatureCache:
    """Run the frozen bottom once and collect what enters the first trainable module.

    With ``cache_dir`` and ``key``, a cache already on disk is memory-mapped instead of recomputed, and a
    new one is written there (atomically) for later runs.
    """
    layers = encoder_layers(model)
    k = scope_top_k(scope)
    first = len(layers) - k
    first_token_only = k == 0 and pooling_of(model) != "mean" and get_layout(model).first_token_head
    if cache_dir is not None and key is not None:
        stored = _load(Path(cache_dir), key, first, first_token_only)
        if stored is not None:
            logger.info("feature cache %s reused from %s", key, cache_dir)
            return stored

    captured: list[torch.Tensor] = []
    lengths = data.lengths
    # Rows of each example are known before any forward pass, so every batch is written straight to its
    # place: no per-example arrays, no final concatenation, and a cache larger than memory can live on disk.
    offsets = np.concatenate([[0], np.cumsum(np.ones_like(lengths) if first_token_only else lengths)])
    offsets = offsets.astype(np.int64)
    store = Path(cache_dir) if cache_dir is not None and key is not None else None
    values: np.ndarray | None = None

    def grab_layer_input(module, args, kwargs):
        captured.append(_hidden_of(args, kwargs).detach().float().cpu())

    def grab_last_output(module, args, output):
        captured.append(_hidden_of((output,) if torch.is_tensor(output) else output, {}).detach().float().cpu())

    if k > 0:
        hook = layers[first].register_forward_pre_hook(grab_layer_input, with_kwargs=True)
    else:
        hook = layers[-1].register_forward_hook(grab_last_output)
    was_training = model.training
    model.eval()
    plan = BatchPlan(lengths, batch_size, shuffle=False, group_by_length=True)
    try:
        with torch.inference_mode(), autocast or contextlib.nullcontext():
            for indices in tqdm(plan, desc="caching frozen features", disable=not show_progress, leave=False):
                batch = data.collate(indices)
                model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
                block = captured.pop().numpy()
                if first_token_only:
                    block = block[:, :1]
                if values is None:
                    values = _allocate((int(offsets[-1]), block.shape[-1]), store)
                for row, i in enumerate(indices):
                    start, end = offsets[i], offsets[i + 1]
                    values[start:end] = block[row, : end - start]
    except BaseException:
        if isinstance(values, np.memmap) and values.filename is not None:
            Path(values.filename).unlink(missing_ok=True)  # a half-written staging file
        raise
    finally:
        hook.remove()
        model.train(was_training)
    if values is None:  # no examples
        values = np.zeros((0, model.config.hidden_size), dtype=np.float32)
    cache = FeatureCache(values, offsets, first, first_token_only)
    if store is not None:
        cache = _store(store, key, cache)  # type: ignore[arg-type]
    return cache


def _hidden_of(args: tuple, kwargs: dict) -> torch.Tensor:
    """The hidden states among a layer's positional or keyword arguments (or its output tuple)."""
    return args[0] if args else kwargs["hidden_states"]


class _Replay:
    """Hands each batch's cached hidden states to the model in place of what its frozen bottom would compute."""

    def __init__(self, cache: FeatureCache) -> None:
        self.cache = cache
        self.current: torch.Tensor | None = None
        self._swap: Callable[[bool], None] | None = None

    def into_layer_input(self, module, args, kwargs):
        """Forward pre-hook of the first trainable layer: its hidden states become the cached batch."""
        if args:
            return (self.current, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": self.current}

    def into_layers_output(self, module, args, output):
        """Forward hook of the last layer (for a ``head`` cache): its hidden states become the cached batch."""
        if torch.is_tensor(output):
            return self.current
        return (self.current, *output[1:])

    def inputs(self, batch: dict[str, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(input_ids, attention_mask)`` to run the model on for ``batch``; loads its cached hidden states.

        The model is fed token ids of the right shape only so that masks are built as usual: one token per
        example where the cache kept only the first.
        """
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
        if self.cache.first_token_only:
            input_ids, mask = input_ids[:, :1], mask[:, :1]
        self.current = self.cache.batch(batch["index"].tolist(), torch.float32, device)
        return input_ids, mask

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """Put the real bottom back for the block (e.g. to evaluate the whole model between epochs).

        The stand-ins return afterwards, so a wrapper built around the replaying model (DDP) stays valid.
        """
        self._swap(False)
        try:
            yield
        finally:
            self._swap(True)


class _Whole:
    """The interface of :class:`_Replay` for a stage without a cache: the model runs whole on each batch."""

    def inputs(self, batch: dict[str, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["input_ids"], batch["attention_mask"]

    def suspended(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class _PassThrough(nn.Module):
    """Stands in for a frozen encoder layer: hands its input on unchanged, in the layer's output format.

    Other attributes read from the layer (ModernBERT's encoder asks each layer its ``attention_type``) come from
    the layer it stands in for, which is held outside the module tree so that its weights are not counted twice.
    """

    def __init__(self, tuple_output: int, layer: nn.Module) -> None:
        super().__init__()
        self.tuple_output = tuple_output
        self.__dict__["_layer"] = layer

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["_layer"], name)

    def forward(self, hidden_states, *args, **kwargs):
        if self.tuple_output:
            return (hidden_states,) + (None,) * (self.tuple_output - 1)
        return hidden_states


@contextlib.contextmanager
def replay(model: nn.Module, cache: FeatureCache | None) -> Iterator[_Replay | _Whole]:
    """Swap the frozen bottom for the cache for the duration of the block.

    Yields the stand-in for the embeddings: its ``inputs(batch, device)`` gives what to run the model on for a
    batch, and ``suspended()`` puts the whole model back for a block. Without a cache nothing is swapped, and
    the block gets the same interface over the batch's own inputs.
    """
    if cache is None:
        yield _Whole()
        return
    layers = encoder_layers(model)
    _, arity = first_layer_call(model)
    stand_in = _Replay(cache)
    first = cache.first_trainable_layer
    frozen = {i: (layers[i], _PassThrough(arity, layers[i])) for i in range(first)}
    hooks: list[torch.utils.hooks.RemovableHandle] = []

    def swap(replaying: bool) -> None:
        for i, (original, pass_through) in frozen.items():
            layers[i] = pass_through if replaying else original
        while hooks:
            hooks.pop().remove()
        if not replaying:
            return
        if first < len(layers):
            hooks.append(layers[first].register_forward_pre_hook(stand_in.into_layer_input, with_kwargs=True))
        else:  # a head cache: every layer passes through and the last one hands on the cached output
            hooks.append(layers[-1].register_forward_hook(stand_in.into_layers_output))

    stand_in._swap = swap
    swap(True)
    try:
        yield stand_in
    finally:
        swap(False)


def _paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / f"{key}.values.npy", cache_dir / f"{key}.offsets.npy"


def _load(cache_dir: Path, key: str, first: int, first_token_only: bool) -> FeatureCache | None:
    values_path, offsets_path = _paths(cache_dir, key)
    if not (values_path.is_file() and offsets_path.is_file()):
        return None
    return FeatureCache(np.load(values_path, mmap_mode="r"), np.load(offsets_path), first, first_token_only)


# Above this size a cache that is not shared on disk goes to an unnamed temporary file, memory-mapped, rather
# than into memory: a top-layer cache holds every token's hidden state (tokens x hidden x 4 bytes).
IN_MEMORY_LIMIT = 2 << 30


def _allocate(shape: tuple[int, int], store: Path | None) -> np.ndarray:
    """The float32 array a cache is written into: a staging .npy in ``store``, a temporary file, or memory."""
    nbytes = shape[0] * shape[1] * 4
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=store, suffix=".tmp.npy")
        os.close(fd)
        return np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    if nbytes > IN_MEMORY_LIMIT:
        logger.info("feature cache of %.1f GB kept in a temporary file in %s", nbytes / 1e9, tempfile.gettempdir())
        with tempfile.TemporaryFile() as handle:  # the mapping outlives the (unnamed) file's handle
            return np.memmap(handle, dtype=np.float32, mode="w+", shape=shape)
    return np.empty(shape, dtype=np.float32)


def _store(cache_dir: Path, key: str, cache: FeatureCache) -> FeatureCache:
    """Publish a cache under ``key``: offsets first, then the values, each by an atomic rename."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    values_path, offsets_path = _paths(cache_dir, key)
    # offsets first: _load needs both, and a values file only appears once complete.
    _save_atomic(offsets_path, cache.offsets)
    staged = cache.values
    if isinstance(staged, np.memmap) and staged.filename is not None:
        staged.flush()
        os.replace(staged.filename, values_path)
    else:
        _save_atomic(values_path, staged)
    return FeatureCache(
        np.load(values_path, mmap_mode="r"), cache.offsets, cache.first_trainable_layer, cache.first_token_only
    )


def _save_atomic(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npy")
    os.close(fd)
    np.save(tmp, array)
    os.replace(tmp, path)
