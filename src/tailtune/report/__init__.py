"""Build a report (one self-contained HTML file plus Markdown) from run directories.

The report reads run directories only. The HTML embeds its figures as base64 PNG and its CSS inline, and a
Content-Security-Policy forbids anything else, so the file can be mailed or archived on its own. Every string
that comes from the runs (labels, texts, names, paths, configs) is escaped before it reaches HTML or Markdown.

Modules:
    build: :func:`build_report`, which writes the files.
    document: The HTML/Markdown document builder, its page shell, CSS and escaping.
    sections: The report's sections and the grouping of runs they read.
    plots: The matplotlib figures.
"""

from __future__ import annotations

from tailtune.report.build import build_report
from tailtune.report.sections import EXAMPLES_PER_STRATEGY, TEXT_LIMIT

__all__ = ["EXAMPLES_PER_STRATEGY", "TEXT_LIMIT", "build_report"]
