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
