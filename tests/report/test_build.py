"""Building the report (:mod:`tailtune.report.build`): where its files go, the per-class figure, the failed runs,
and the runs it refuses."""

from __future__ import annotations

import json
import re

import pytest
from matplotlib import image as mpimg
from run_factory import make_experiment, write_run

from tailtune.errors import TailTuneError
from tailtune.report import build_report

from .conftest import PNG_MAGIC


def test_default_paths_and_markdown_images(experiment, report):
    html_path, md_path = report
    assert (html_path, md_path) == (experiment / "report.html", experiment / "report.md")
    pngs = sorted((experiment / "report_files").glob("*.png"))
    assert len(pngs) >= 6
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    markdown = md_path.read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert sorted(linked) == sorted(f"report_files/{p.name}" for p in pngs)


def test_no_complete_runs_is_a_user_error(tmp_path):
    write_run(tmp_path / "run", complete=False)
    with pytest.raises(TailTuneError) as info:
        build_report(tmp_path)
    assert str(info.value) == f"{tmp_path}: no complete runs (a run is complete once its metrics.json exists)"


def test_report_command_writes_the_per_class_png(experiment, tmp_path, capsys):
    from tailtune.cli import main

    png = tmp_path / "per-class.png"
    assert main(["report", str(experiment), "--output", str(tmp_path / "r.html"), "--per-class-png", str(png)]) == 0
    assert f"per-class plot: {png}" in capsys.readouterr().out
    assert mpimg.imread(png).ndim == 3


def test_failed_runs_are_listed(tmp_path):
    """A run recorded as failed (e.g. diverged) gets its own section with the reason, escaped."""
    from tailtune.runs.rundir import write_failure

    make_experiment(tmp_path, ratios=(10,), seeds=(0, 1))
    write_failure(tmp_path / "exp-10" / "ldam" / "seed-0", "stage 1 (finetune): training diverged <at> step 3")
    page = build_report(tmp_path)[0].read_text(encoding="utf-8")
    assert "Failed runs</h2>" in page
    assert "training diverged &lt;at&gt; step 3" in page and "exp-10/ldam/seed-0" in page


def test_report_refuses_to_pool_unrelated_runs(tmp_path, capsys):
    """Two `tailtune train` runs with other settings are not two seeds of one strategy: one line, no report."""
    from tailtune.cli import main

    first = write_run(tmp_path / "a", strategy="vanilla", seed=0)
    other = write_run(tmp_path / "b", strategy="vanilla", seed=1)
    config = json.loads((other / "config.json").read_text(encoding="utf-8"))
    config["run"]["batch_size"] = 32
    (other / "config.json").write_text(json.dumps(config), encoding="utf-8")
    expected = r"cannot be pooled as seeds of default/vanilla: they differ in run\.batch_size \(16 vs 32\); put"
    with pytest.raises(TailTuneError, match=expected):
        build_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tailtune: error: {first} and {other} cannot be pooled") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # nothing written


def test_a_baseline_no_run_used_is_refused_and_a_missing_default_one_said(tmp_path, capsys):
    from conftest import run_cli

    write_run(tmp_path / "run", strategy="two-stage")
    code, _, err = run_cli(capsys, "report", tmp_path, "--baseline", "foo")
    assert code == 2 and err == (f"tailtune: error: --baseline 'foo' is no strategy of the runs under {tmp_path}; give "
                                 "one of: two-stage\n")  # fmt: skip
    assert not (tmp_path / "report.html").exists()
    page = build_report(tmp_path)[0].read_text(encoding="utf-8")
    assert "baseline: none (vanilla not run)" in page


def test_report_compares_with_the_experiments_recorded_baseline(tmp_path):
    """Without --baseline the report compares with the baseline compare recorded in summary.json, else vanilla."""
    from tailtune.report.build import _recorded_baseline

    assert _recorded_baseline(tmp_path) == "vanilla"
    (tmp_path / "summary.json").write_text('{"baseline": "tfidf", "rows": []}')
    assert _recorded_baseline(tmp_path) == "tfidf"
    (tmp_path / "summary.json").write_text("[1, 2]")  # not what compare writes: the default
    assert _recorded_baseline(tmp_path) == "vanilla"
