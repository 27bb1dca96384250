"""Each variant's data (:mod:`tailtune.experiments.variants`): the labels kept and the minority chosen."""

from __future__ import annotations

import pytest
from compare_config import compare, config_dict, write_config

from tailtune.errors import TailTuneError
from tailtune.experiments.runner import run_compare


def test_unknown_minority_label(tmp_path, tiny_model, source_csv, no_training):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["data"]["make"] = {"minority": "negative", "rates": [0.5], "test_per_class": 3}
    with pytest.raises(TailTuneError, match=r"data\.make\.minority 'negative' is not a label .*'money'"):
        run_compare(write_config(tmp_path / "exp.yaml", config))
    assert not (tmp_path / "out").exists()


def test_classes_keep_a_pair_of_the_source(tmp_path, tiny_model, source_csv, no_training, capsys):
    """data.classes narrows the source to the listed labels before the holdouts and the binary recipe."""
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["data"]["classes"] = ["sport", "money"]
    config["data"]["make"] = {"minority": "money", "rates": [0.5], "test_per_class": 4}
    assert compare("--config", write_config(tmp_path / "exp.yaml", config), "--dry-run") == 0
    text = capsys.readouterr().out
    # 14 per class, 4 of each held out: sport keeps 10, money 0.5 x 10
    assert "train 15 (sport 10, money 5)" in text and "test 8" in text and "tech" not in text


def test_explicit_csv_variant_reads_label_sets_with_its_separator(tmp_path, tiny_model, no_training):
    """label_separator of an explicit variant reads CSV label cells as label sets; the dry run counts them."""
    import pandas as pd
    from conftest import LABEL_SETS, label_sets

    for name, seed in (("train", 0), ("test", 1)):
        data = label_sets(LABEL_SETS, seed)
        pd.DataFrame({"text": data.texts, "label": ["|".join(row) for row in data.labels]}).to_csv(
            tmp_path / f"{name}.csv", index=False
        )
    config = {"model": tiny_model, "strategies": ["vanilla"], "seeds": [1], "output": str(tmp_path / "out"),
              "data": {"variants": [{"name": "tags", "train": str(tmp_path / "train.csv"),
                                     "test": str(tmp_path / "test.csv"), "label_separator": "|"}]}}  # fmt: skip
    assert compare("--config", write_config(tmp_path / "exp.yaml", config), "--dry-run") == 0
    del config["data"]["variants"][0]["label_separator"]
    assert compare("--config", write_config(tmp_path / "exp2.yaml", config), "--dry-run") != 0


def test_a_complete_multilabel_run_counts_as_done(tmp_path, tiny_model, capsys):
    """A run on label sets records what its task trained (BCE for cross-entropy, unigrams for TF-IDF); compared
    again, the plan it is checked against is the same, so it counts as done rather than as other settings."""
    import pandas as pd
    from conftest import LABEL_SETS, label_sets

    for name, seed in (("train", 0), ("test", 1)):
        data = label_sets(LABEL_SETS, seed)
        pd.DataFrame({"text": data.texts, "label": ["|".join(row) for row in data.labels]}).to_csv(
            tmp_path / f"{name}.csv", index=False
        )
    config = {"model": tiny_model, "seeds": [1], "output": str(tmp_path / "out"), "run": {"max_length": 16},
              "strategies": [{"vanilla": {"epochs": 1, "min_steps": 0}}, "tfidf"],
              "data": {"variants": [{"name": "tags", "train": str(tmp_path / "train.csv"),
                                     "test": str(tmp_path / "test.csv"), "label_separator": "|"}]}}  # fmt: skip
    path = write_config(tmp_path / "exp.yaml", config)
    assert compare("--config", path, "-q") == 0
    capsys.readouterr()
    assert compare("--config", path, "--dry-run") == 0
    assert capsys.readouterr().out.count("  done  ") == 2
