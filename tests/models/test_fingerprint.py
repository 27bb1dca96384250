"""Pretrained models fingerprinted by content (:mod:`tailtune.models.fingerprint`), and the feature caches keyed by it:
weights replaced under the same path with the same file sizes and times are another model."""

from __future__ import annotations

import os

import numpy as np
from model_weights import copy_model, reweigh

from tailtune.models import fingerprint as fingerprints
from tailtune.models.fingerprint import model_changed, model_fingerprint, weight_files
from tailtune.training.batching import Encoded
from tailtune.training.features import cache_key

DATA = Encoded.from_rows([[2, 7, 3], [2, 9, 9, 3]], np.array([0, 1]), pad_id=0)


def test_a_folder_is_fingerprinted_by_content_not_path(tiny_model, tmp_path):
    """A copy elsewhere fingerprints alike; other weights under the same path, same sizes and times, do not."""
    copy = copy_model(tiny_model, tmp_path / "copy")
    ours = model_fingerprint(tiny_model)
    assert ours.startswith("sha256:") and model_fingerprint(str(copy)) == ours == model_fingerprint(copy)
    reweigh(copy)
    assert model_fingerprint(copy) != ours
    config = copy / "config.json"
    before = model_fingerprint(copy)
    config.write_text(config.read_text() + "\n")
    assert model_fingerprint(copy) != before  # config.json enters too
    tokenizer = copy / "tokenizer_config.json"
    before = model_fingerprint(copy)
    tokenizer.write_text(tokenizer.read_text().replace("{", '{"do_lower_case": false, ', 1))
    assert model_fingerprint(copy) != before  # and the tokenizer's files: the same texts read as other tokens


def test_pytorch_weights_count_where_no_safetensors_are(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"old weights")
    (folder / "notes.txt").write_text("not weights")
    assert [p.name for p in weight_files(folder)] == ["pytorch_model.bin"]
    first = model_fingerprint(folder)
    (folder / "notes.txt").write_text("other notes")
    assert model_fingerprint(folder) == first
    stamp = (folder / "pytorch_model.bin").stat()
    (folder / "pytorch_model.bin").write_bytes(b"new weights")
    os.utime(folder / "pytorch_model.bin", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert model_fingerprint(folder) != first
    (folder / "model.safetensors").write_bytes(b"safe")
    assert [p.name for p in weight_files(folder)] == ["model.safetensors"]  # as from_pretrained prefers them


def test_each_file_is_hashed_once_while_unchanged(tiny_model, tmp_path, monkeypatch):
    copy = copy_model(tiny_model, tmp_path / "copy")
    fingerprints._hash_file.cache_clear()
    model_fingerprint(copy)
    hashed = fingerprints._hash_file.cache_info().misses
    assert hashed == 4  # config.json, the tokenizer's tokenizer.json and tokenizer_config.json, model.safetensors
    model_fingerprint(copy)
    assert fingerprints._hash_file.cache_info().misses == hashed
    reweigh(copy)
    model_fingerprint(copy)
    assert fingerprints._hash_file.cache_info().misses == hashed + 1


def test_a_hub_id_is_its_own_fingerprint():
    assert model_fingerprint("org/some-model") == "org/some-model"
    assert model_fingerprint(None) is None


def test_model_changed_knows_when_it_cannot_tell():
    assert model_changed("sha256:aa", "sha256:aa") is False
    assert model_changed("sha256:aa", "sha256:bb") is True
    assert model_changed("org/a", "org/b") is True
    for recorded, current in ((None, "sha256:aa"), ("org/a", "sha256:aa"), ("sha256:aa", "org/a"), ("sha256:a", None)):
        assert model_changed(recorded, current) is None


def test_cache_key_changes_with_weights_replaced_in_place(tiny_model, tmp_path):
    """Weights of the same architecture under the same path, sizes and file times kept: another cache."""
    copy = copy_model(tiny_model, tmp_path / "copy")
    key = cache_key(str(copy), DATA, "top1", 16)
    assert key == cache_key(tiny_model, DATA, "top1", 16)  # the same weights, wherever they are
    reweigh(copy)
    changed = cache_key(str(copy), DATA, "top1", 16)
    assert changed != key
    reweigh(copy, factor=2.0)  # back to the first values: the first cache again
    assert cache_key(str(copy), DATA, "top1", 16) == key
