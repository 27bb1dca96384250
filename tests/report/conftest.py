"""What the report tests share: a made-up experiment and its report, built once for the folder.

This ``experiment`` overrides the one of tests/conftest.py: its labels and texts need escaping.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from run_factory import make_experiment, write_run

from tailtune.report import build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The rarest class (a tail class) has a hostile name, so it shows up in the tables, the figures and the
# misclassified-examples section.
LABELS = ["world", "R&D", "sports", "<script>alert(1)</script>"]
LONG_TEXT = "about <script>alert('x')</script> & friends " + "tail words " * 60
TEXTS = [LONG_TEXT]


@pytest.fixture(scope="package")
def experiment(tmp_path_factory) -> Path:
    """Complete runs of two ratios with hostile labels and a long text, and one run still in progress."""
    root = tmp_path_factory.mktemp("report-exp")
    make_experiment(root, ratios=(10, 50), labels=LABELS, texts=TEXTS)
    write_run(root / "exp-10" / "drw" / "seed-0", strategy="drw", seed=0, variant="exp-10", ratio=10,
              labels=LABELS, complete=False)  # fmt: skip
    return root


@pytest.fixture(scope="package")
def report(experiment) -> tuple[Path, Path]:
    """The HTML and Markdown files of :func:`experiment`'s report, written into it."""
    return build_report(experiment)


@pytest.fixture(scope="package")
def page(report) -> str:
    """The report's HTML."""
    return report[0].read_text(encoding="utf-8")
