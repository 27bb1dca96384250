"""The saved model's own record: what a fit decided is written at once from its :class:`Decisions`."""

from __future__ import annotations

import types

from tailtune.models.family import METRICS_KEYS, Decisions
from tailtune.models.saved import read_record, write_fit_record, write_record

CALIBRATION = {"method": "logit-adjust", "tau": 1.0, "class_offsets": [0.5, -0.5]}


def _decided(**changes) -> Decisions:
    values = {"task": "single-label", "label_kind": "integer", "train_counts": {"1": 9, "2": 3}, "max_length": 32,
              "reading": "chunks", "calibration": CALIBRATION}  # fmt: skip
    return Decisions(**{**values, **changes})


def test_fit_record_holds_every_decision():
    """A loaded model reads back each field the fit decided; the architecture's fields are left as they were."""
    config = types.SimpleNamespace()
    write_record(config, pooling="mean", head="mlp")
    write_fit_record(config, _decided())
    record = read_record(config)
    assert (record.task, record.label_kind, record.train_counts) == ("single-label", "integer", {"1": 9, "2": 3})
    assert (record.max_length, record.long_texts, record.calibration) == (32, "chunks", CALIBRATION)
    assert (record.pooling, record.head) == ("mean", "mlp")


def test_fit_record_replaces_what_the_checkpoint_recorded():
    """A model fine-tuned from a saved one without a decision rule records none, not its checkpoint's."""
    config = types.SimpleNamespace()
    write_fit_record(config, _decided())
    write_fit_record(config, _decided(calibration=None, train_counts={"1": 4, "2": 2}))
    assert read_record(config).calibration is None and read_record(config).train_counts == {"1": 4, "2": 2}


def test_metrics_hold_only_the_run_decisions():
    """metrics.json keeps its keys: the model's own fields live in its record and config.json."""
    decisions = _decided(refit={"done": True, "reason": "refit is true"})
    assert tuple(decisions.to_dict()) == METRICS_KEYS
    again = Decisions.from_dict({**decisions.to_dict(), "task": "ignored"})
    assert again.to_dict() == decisions.to_dict() and again.task is None
