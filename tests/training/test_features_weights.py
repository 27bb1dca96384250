"""A feature cache shared on disk is not reused for other weights saved under the same model path, with the same
file sizes and times (see also tests/models/test_fingerprint.py)."""

from __future__ import annotations

from conftest import make_texts
from model_weights import copy_model, reweigh

from tailtune.config import RunConfig, StageConfig
from tailtune.data.types import LabelMap, TextDataset
from tailtune.training.fitting import FitContext, train_model
from tailtune.training.loop import make_accelerator


def _fit_head(model_dir, cache_dir) -> list[bool]:
    texts, labels = make_texts({"sport": 6, "tech": 4, "money": 2}, seed=1)
    train, label_map = TextDataset(texts, labels, "train"), LabelMap.from_labels(labels)
    config = RunConfig(model=str(model_dir), stages=[StageConfig(name="probe", trainable="head", epochs=1)],
                       batch_size=4, max_length=16, seed=3, cache_dir=str(cache_dir))  # fmt: skip
    trained = train_model(FitContext.of(config, train, label_map, make_accelerator(config), show_progress=False), train)
    return [stage.cached for stage in trained.stages]


def test_replaced_weights_get_their_own_disk_cache(tiny_model_no_dropout, tmp_path):
    model = copy_model(tiny_model_no_dropout, tmp_path / "model")
    assert _fit_head(model, tmp_path / "cache") == [True]
    first = sorted(p.name for p in (tmp_path / "cache").glob("*.npy"))
    assert _fit_head(model, tmp_path / "cache") == [True]
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.npy")) == first  # reused
    reweigh(model)
    assert _fit_head(model, tmp_path / "cache") == [True]
    stored = sorted(p.name for p in (tmp_path / "cache").glob("*.npy"))
    assert len(stored) == 2 * len(first) and set(first) < set(stored)  # computed again, beside the first
