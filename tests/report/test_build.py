"""The HTML/Markdown report: content, escaping, self-containment and a real browser rendering."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg
from run_factory import make_experiment, write_run

from tailtune.errors import TailTuneError
from tailtune.report import TEXT_LIMIT, build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The rarest class (a tail class) has a hostile name, so it shows up in the tables, the figures and the
# misclassified-examples section.
LABELS = ["world", "R&D", "sports", "<script>alert(1)</script>"]
LONG_TEXT = "about <script>alert('x')</script> & friends " + "tail words " * 60
TEXTS = [LONG_TEXT]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-exp")
    make_experiment(root, ratios=(10, 50), labels=LABELS, texts=TEXTS)
    write_run(root / "exp-10" / "drw" / "seed-0", strategy="drw", seed=0, variant="exp-10", ratio=10,
              labels=LABELS, complete=False)  # fmt: skip
    return root


@pytest.fixture(scope="module")
def report(experiment) -> tuple[Path, Path]:
    return build_report(experiment)


@pytest.fixture(scope="module")
def page(report) -> str:
    return report[0].read_text(encoding="utf-8")


def test_default_paths_and_markdown_images(experiment, report):
    html_path, md_path = report
    assert (html_path, md_path) == (experiment / "report.html", experiment / "report.md")
    pngs = sorted((experiment / "report_files").glob("*.png"))
    assert len(pngs) >= 6
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    markdown = md_path.read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert sorted(linked) == sorted(f"report_files/{p.name}" for p in pngs)


def test_html_is_self_contained(page):
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<link" not in page.lower() and "@import" not in page and "url(" not in page
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) >= 6
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_data_strings_are_escaped(page, report):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "R&amp;D" in page and "R&D" not in page
    assert "about &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends tail words" in page
    markdown = report[1].read_text(encoding="utf-8")
    assert "<script" not in markdown
    assert "R&amp;D" in markdown and "R&D" not in markdown


def test_summary_table_holds_computed_values(experiment, page):
    per_seed = [
        json.loads((experiment / "exp-50" / "two-stage" / f"seed-{s}" / "metrics.json").read_text())["macro_f1"]
        for s in (0, 1, 2)
    ]
    assert f"{statistics.mean(per_seed):.3f} ± {statistics.stdev(per_seed):.3f}" in page
    for heading in ("Summary", "Training class distribution", "Macro-F1 per strategy",
                    "Macro-F1 against imbalance ratio", "Per-class F1 against training frequency",
                    "Confusion matrices", "Misclassified tail examples", "Configuration"):  # fmt: skip
        assert f">{heading}</h2>" in page
    assert "12 complete runs (1 incomplete skipped)" in page
    assert "summed over" in page.lower() and "normalised by row" in page


def test_tail_examples_are_truncated(page):
    assert "…" in page
    assert LONG_TEXT.strip() not in page
    assert html.escape(LONG_TEXT.strip()[: TEXT_LIMIT - 1].rstrip()) + "…" in page


def test_config_and_versions_are_listed(page):
    # two-stage's first stage: the top layer with LDAM and effective-number weights
    assert "Stages: two-stage" in page and "top1" in page and "ldam" in page and "effective" in page
    assert "transformers" in page and "4.46.0" in page
    assert "data/train.csv" in page


def test_ratio_section_needs_several_ratios(tmp_path):
    make_experiment(tmp_path, ratios=(10,), seeds=(0, 1))
    html_path, _ = build_report(tmp_path, output=tmp_path / "out" / "mine")
    assert html_path == tmp_path / "out" / "mine.html"
    assert (tmp_path / "out" / "mine.md").is_file() and (tmp_path / "out" / "mine_files").is_dir()
    assert "imbalance ratio</h2>" not in html_path.read_text(encoding="utf-8")


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


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    return found


def test_report_renders_in_a_browser(report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
        report[0].resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=90)
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    assert pixels.std() > 0.05
    # Text, tables and figures give many distinct colours; a blank or error page gives a handful.
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50


def test_non_latin_labels_draw_without_missing_glyphs(tmp_path):
    """CJK and emoji labels never reach matplotlib as glyphs no installed font has; the tables keep them."""
    import warnings

    from tailtune.report.plots import _fonts, plain

    labels = ["新闻", "スポーツ", "🙂 happy", "world"]
    make_experiment(tmp_path, ratios=(10, 50), labels=labels, seeds=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        html_path, _ = build_report(tmp_path)
    page = html_path.read_text(encoding="utf-8")
    assert all(html.escape(label) in page for label in labels)
    covered = _fonts()[1]
    for label in labels:
        drawn = plain(label)
        assert all(ord(c) in covered or c.isspace() for c in drawn)
        if all(ord(c) in covered or c.isspace() for c in label):
            assert drawn == label
    if ord("新") not in covered:
        assert plain("新闻") == "<U+65B0><U+95FB>"


def test_failed_runs_are_listed(tmp_path):
    """A run recorded as failed (e.g. diverged) gets its own section with the reason, escaped."""
    from tailtune.rundir import write_failure

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


def test_report_shows_what_a_test_set_did_not_measure(tmp_path):
    """A class with no test example and no prediction is "-" in the per-class table, a group "not measured"."""
    make_experiment(tmp_path, ratios=(10,), seeds=(0,))
    for strategy in ("vanilla", "two-stage"):
        path = tmp_path / "exp-10" / strategy / "seed-0" / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8"))
        metrics["tail_f1"] = None
        metrics["per_class"]["sci/tech"].update(precision=None, recall=None, f1=None, support=0)
        path.write_text(json.dumps(metrics), encoding="utf-8")
    page = build_report(tmp_path)[0].read_text(encoding="utf-8")
    summary = page.split(">Summary</h2>", 1)[1].split("</table>", 1)[0]
    assert summary.count(">not measured<") == 2  # the tail F1 of both strategies
    table = page.split("Per-class F1 table: exp-10", 1)[1].split("</table>", 1)[0]
    row = table.split("sci/tech", 1)[1].split("</tr>", 1)[0]
    assert row.count(">not measured<") == 2


def test_demo_rows_are_strategies_of_their_own_and_unscored_topics_read_dash():
    """The demo's default row trains two-stage with other settings and the same seed as the two-stage row: it is
    recorded under its row's name, so a report of the demo folder keeps the two apart instead of refusing."""
    from tailtune.demo import DEFAULT_ROW, demo_config, format_demo_table
    from tailtune.metrics import compute_metrics

    assert demo_config(DEFAULT_ROW).strategy == DEFAULT_ROW and demo_config("two-stage").strategy == "two-stage"
    metrics = compute_metrics([0, 1], [0, 1], label_names=["sport", "tech", "politics"], train_counts=[30, 9, 3])
    table = format_demo_table({"vanilla": {**metrics, "wall_time_s": 3.0}})
    assert table.splitlines()[-1].split()[-3:] == ["1.000", "1.000", "-"]
