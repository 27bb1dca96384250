"""Tests of tokenisation, seeded batch plans, class-aware sampling and padding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from tailtune.training.batching import BatchPlan, Encoded, class_sampling_probabilities, encode


def _lengths(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, 40, size=n)


def _passes(plan: BatchPlan, k: int) -> list[list[list[int]]]:
    return [list(plan) for _ in range(k)]


@pytest.mark.parametrize("group_by_length", [False, True])
@pytest.mark.parametrize(("n", "batch_size"), [(1, 4), (10, 3), (257, 4), (1000, 8)])
def test_random_plan_covers_every_index_once(n, batch_size, group_by_length):
    """Each pass of a random plan yields every index exactly once, in len(plan) batches of <= batch_size."""
    plan = BatchPlan(_lengths(n), batch_size, seed=3, group_by_length=group_by_length)
    for batches in _passes(plan, 3):
        assert len(batches) == len(plan) == -(-n // batch_size)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(n))
        assert all(1 <= len(b) <= batch_size for b in batches)
        assert sum(len(b) < batch_size for b in batches) <= 1


@pytest.mark.parametrize("group_by_length", [False, True])
def test_plan_reproducible_and_differs_across_passes(group_by_length):
    """The same seed gives the same passes; consecutive passes and other seeds give other orders."""
    lengths = _lengths(200)
    a = _passes(BatchPlan(lengths, 8, seed=5, group_by_length=group_by_length), 3)
    b = _passes(BatchPlan(lengths, 8, seed=5, group_by_length=group_by_length), 3)
    c = _passes(BatchPlan(lengths, 8, seed=6, group_by_length=group_by_length), 1)
    assert a == b
    assert a[0] != a[1] and a[1] != a[2]
    assert a[0] != c[0]
    assert a[1] == c[0]  # pass k uses seed + k


def test_group_by_length_reduces_padding():
    """Grouped batches hold texts of similar length: far less padding than random batches."""
    lengths = _lengths(800, seed=1)

    def padding(plan: BatchPlan) -> int:
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in plan)

    grouped = padding(BatchPlan(lengths, 8, seed=0, group_by_length=True))
    plain = padding(BatchPlan(lengths, 8, seed=0, group_by_length=False))
    assert grouped * 5 < plain


def test_unshuffled_plan_keeps_order_or_sorts_by_length():
    """Without shuffling, batches follow input order, or descending length when grouping."""
    lengths = np.array([5, 9, 2, 7, 7, 1])
    assert list(BatchPlan(lengths, 4, shuffle=False, group_by_length=False)) == [[0, 1, 2, 3], [4, 5]]
    assert list(BatchPlan(lengths, 4, shuffle=False, group_by_length=True)) == [[1, 3, 4, 0], [2, 5]]


def test_class_balanced_probabilities_by_hand():
    """class-balanced gives every class total mass 1/K, split evenly among its examples."""
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    p = class_sampling_probabilities(labels, "class-balanced")
    np.testing.assert_allclose(p, [1 / 12] * 4 + [1 / 6] * 2 + [1 / 3])
    assert p.sum() == pytest.approx(1.0)


def test_sqrt_probabilities_by_hand():
    """sqrt gives class c a mass proportional to sqrt(n_c)."""
    labels = np.array([0] * 9 + [1] * 4 + [2])
    p = class_sampling_probabilities(labels, "sqrt")
    # masses 3, 2, 1 (of 6); per example 3/9, 2/4, 1/1 divided by 6
    np.testing.assert_allclose(p, [1 / 18] * 9 + [1 / 12] * 4 + [1 / 6])
    masses = [p[labels == c].sum() for c in range(3)]
    np.testing.assert_allclose(masses, [0.5, 1 / 3, 1 / 6])


def test_resampling_plan_draws_with_class_probabilities():
    """A class-balanced plan draws len(data) indices per pass, about equally many from each class."""
    labels = np.array([0] * 90 + [1] * 9 + [2])
    plan = BatchPlan(np.full(100, 5), 10, seed=0, labels=labels, sampler="class-balanced")
    drawn = [i for _ in range(40) for b in plan for i in b]
    assert len(drawn) == 4000 and len(plan) == 10
    per_class = Counter(int(labels[i]) for i in drawn)
    for c in range(3):
        assert 1100 < per_class[c] < 1570  # expected 1333 each
    assert Counter(drawn)[99] == per_class[2]  # the single tail example is drawn again and again
    again = BatchPlan(np.full(100, 5), 10, seed=0, labels=labels, sampler="class-balanced")
    assert list(again) == list(BatchPlan(np.full(100, 5), 10, seed=0, labels=labels, sampler="class-balanced"))


def test_collate_pads_to_longest():
    """collate pads ids with pad_id to the batch's longest text, with a matching mask, index and labels."""
    data = Encoded.from_rows([[2, 10, 3], [2, 11, 12, 13, 3], [2, 3]], labels=np.array([1, 0, 2]), pad_id=7)
    batch = data.collate([2, 0])
    assert batch["input_ids"].tolist() == [[2, 3, 7], [2, 10, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert batch["index"].tolist() == [2, 0]
    assert batch["labels"].tolist() == [2, 1]
    assert batch["input_ids"].dtype == batch["labels"].dtype == torch.long
    full = data.collate([0, 1, 2])
    assert full["input_ids"].shape == (3, 5)
    assert full["attention_mask"].sum(1).tolist() == [3, 5, 2]
    assert "labels" not in Encoded(data.ids, data.offsets, None, 0).collate([0])


def test_collate_pads_on_the_left_where_the_tokenizer_does():
    """A tokenizer that pads on the left (XLNet's) gets left-padded batches: each row ends with its own last token."""
    data = Encoded.from_rows([[2, 10, 3], [2, 11, 12, 13, 3], [2, 3]], labels=None, pad_id=7)
    data.pad_left = True
    batch = data.collate([2, 0, 1])
    assert batch["input_ids"].tolist() == [[7, 7, 7, 2, 3], [7, 7, 2, 10, 3], [2, 11, 12, 13, 3]]
    assert batch["attention_mask"].tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]


def test_xlnet_predicts_each_text_alike_in_any_batch(tmp_path):
    """XLNet's head reads the last position: with its tokenizer's left padding a text's prediction does not depend on
    the texts batched with it (right padding made the last position a pad for the shorter ones)."""
    import json

    from conftest import build_tiny_model_dir

    from tailtune.classifier import TailTuner

    folder = build_tiny_model_dir(tmp_path / "xlnet", "xlnet", dropout=0.0)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "padding_side": "left"}))
    texts = ["match goal", "bank shares profit market price rose", "chip phone", "team win match goal"] * 3
    labels = ["sport", "money", "tech", "sport"] * 3
    tuner = TailTuner(str(folder), "vanilla", epochs=1, min_steps=0, max_length=16, eval_fraction=0,
                      calibrate="none", show_progress=False).fit(texts, labels)  # fmt: skip
    together = tuner.predict_proba(texts[:4])
    alone = np.vstack([tuner.predict_proba([text]) for text in texts[:4]])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)


def test_encode_truncates_without_padding(tiny_model):
    """encode tokenises every text once, truncating to max_length (special tokens included), unpadded."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    texts = ["match goal", "the " * 30 + "team", "bank"]
    data = encode(tokenizer, texts, np.array([0, 1, 0]), max_length=8)
    assert len(data) == 3
    assert data.lengths.tolist() == [4, 8, 3]
    assert data.n_tokens == 15
    assert data.pad_id == tokenizer.pad_token_id == 0
    assert data.row(0)[0] == tokenizer.cls_token_id and data.row(0)[-1] == tokenizer.sep_token_id
    assert data.fingerprint() == encode(tokenizer, texts, None, max_length=8).fingerprint()
    assert data.fingerprint() != encode(tokenizer, texts, None, max_length=6).fingerprint()


def test_encode_in_chunks_keeps_flat_compact_ids(tiny_model, monkeypatch):
    """Chunked tokenising gives the same ids as one call, stored flat in the smallest integer type."""
    from transformers import AutoTokenizer

    from tailtune.training import batching

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    texts = ["match goal", "the team", "bank rates rise", "a", "film star wins prize"]
    whole = tokenizer(texts, truncation=True, max_length=6)["input_ids"]
    monkeypatch.setattr(batching, "ENCODE_CHUNK", 2)
    data = encode(tokenizer, texts, None, max_length=6)
    assert [data.row(i).tolist() for i in range(len(texts))] == whole
    assert data.ids.dtype == np.uint16 and data.offsets.dtype == np.int64
    assert data.fingerprint() == Encoded.from_rows(whole, None, data.pad_id).fingerprint()
    empty = encode(tokenizer, [], None, max_length=6)
    assert len(empty) == 0 and empty.n_tokens == 0


@pytest.mark.parametrize(("n_ids", "dtype"), [(2, np.uint16), (65536, np.uint16), (65537, np.uint32)])
def test_id_dtype_is_the_smallest_that_fits(n_ids, dtype):
    from tailtune.training.batching import id_dtype

    assert id_dtype(n_ids) == dtype
    assert np.iinfo(id_dtype(n_ids)).max >= n_ids - 1
