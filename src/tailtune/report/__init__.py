"""Build a report (one self-contained HTML file plus Markdown) from run directories.

The report reads run directories only. The HTML embeds its figures as base64 PNG and its CSS inline, and a
Content-Security-Policy forbids anything else, so the file can be mailed or archived on its own. Every string
that comes from the runs (labels, texts, names, paths, configs) is escaped before it reaches HTML or Markdown.

Modules:
    build: :func:`build_report`, which writes the files.
    document: The HTML/Markdown document builder, its page shell, CSS and escaping.
    context: The grouping of runs the sections read.
    sections: The report's sections, in order; mistakes: those on where the models err.
    plots: The matplotlib figures.
"""

from __future__ import annotations

from tailtune.report.build import build_report
from tailtune.report.mistakes import EXAMPLES_PER_STRATEGY, TEXT_LIMIT

__all__ = ["EXAMPLES_PER_STRATEGY", "TEXT_LIMIT", "build_report"]
