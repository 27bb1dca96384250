"""The demo's rows and its table (:mod:`tailtune.experiments.demo`)."""

from __future__ import annotations


def test_demo_rows_are_strategies_of_their_own_and_unscored_topics_read_dash():
    """The demo's default row trains two-stage with other settings and the same seed as the two-stage row: it is
    recorded under its row's name, so a report of the demo folder keeps the two apart instead of refusing."""
    from tailtune.experiments.demo import DEFAULT_ROW, demo_config, format_demo_table
    from tailtune.metrics import compute_metrics

    assert demo_config(DEFAULT_ROW).strategy == DEFAULT_ROW and demo_config("two-stage").strategy == "two-stage"
    metrics = compute_metrics([0, 1], [0, 1], label_names=["sport", "tech", "politics"], train_counts=[30, 9, 3])
    table = format_demo_table({"vanilla": {**metrics, "wall_time_s": 3.0}})
    assert table.splitlines()[-1].split()[-3:] == ["1.000", "1.000", "-"]


def _tiny_demo_splits():
    from conftest import make_texts

    from tailtune.data.types import TextDataset

    def dataset(counts: dict[str, int], seed: int, name: str) -> TextDataset:
        return TextDataset(*make_texts(counts, seed=seed), source=name)

    return (dataset({"sport": 30, "tech": 9, "money": 3}, 1, "train"),
            dataset({"sport": 6, "tech": 6, "money": 6}, 2, "validation"),
            dataset({"sport": 8, "tech": 8, "money": 8}, 3, "test"))  # fmt: skip


def test_demo_runs_the_tfidf_baseline_first_then_every_other_row(tmp_path, monkeypatch):
    """With no rows named, the demo runs the TF-IDF baseline first, then the fixed budgets and the defaults."""
    from tailtune.experiments import demo

    trained = []
    monkeypatch.setattr(demo, "demo_splits", _tiny_demo_splits)
    monkeypatch.setattr(demo, "train_run", lambda config, *args, **kwargs: trained.append(config.strategy) or {})
    demo.run_demo(tmp_path, show_progress=False)
    assert trained == ["tfidf", "vanilla", "reweight", "two-stage", "default"]


def test_demo_tfidf_row_trains_without_a_model_and_prints_in_the_table(tmp_path, monkeypatch):
    """The tfidf row is the classic strategy at its own settings (no model, none of the fine-tuning rows'
    settings, which it would refuse), run for real, and prints as a row of the same table."""
    from tailtune.experiments import demo

    config = demo.demo_config(demo.TFIDF_ROW)
    assert config.strategy == "tfidf" and config.model is None and config.seed == demo.RUN_SEED
    monkeypatch.setattr(demo, "demo_splits", _tiny_demo_splits)
    results = demo.run_demo(tmp_path, strategies=[demo.TFIDF_ROW], show_progress=False)
    assert (tmp_path / "tfidf" / "metrics.json").is_file()
    header, rule, row = demo.format_demo_table(results).splitlines()
    assert header.split()[:5] == ["strategy", "val-F1", "macro-F1", "micro-F1", "time"]
    assert row.split()[0] == "tfidf" and len(row.split()) == len(header.split())
    assert float(row.split()[2]) == round(results["tfidf"]["macro_f1"], 3)
