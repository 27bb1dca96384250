"""Write the report files: the HTML page, the Markdown next to it and the Markdown's images."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tailtune.errors import TailTuneError
from tailtune.fileio import write_atomic
from tailtune.report.document import Document
from tailtune.report.sections import SECTIONS, ReportContext
from tailtune.report.tuning import tuning_section
from tailtune.runs.records import no_runs_error, scan_runs
from tailtune.runs.rundir import SUMMARY_JSON, find_failures

# Records carry the package name, the one users configure and see in the log format.
logger = logging.getLogger(__package__)


def _output_paths(root: Path, output: str | Path | None) -> tuple[Path, Path, Path]:
    """The HTML file, the Markdown file and the Markdown's image folder for ``output``."""
    if output is None:
        html_path = root / "report.html"
    else:
        html_path = Path(output)
        if html_path.is_dir():
            html_path = html_path / "report.html"
        elif html_path.suffix.lower() not in (".html", ".htm"):
            html_path = html_path.with_suffix(".html")
    md_path = html_path.with_suffix(".md")
    return html_path, md_path, html_path.with_name(f"{html_path.stem}_files")


def build_report(
    root: str | Path,
    *,
    output: str | Path | None = None,
    baseline: str | None = None,
    per_class_png: str | Path | None = None,
) -> tuple[Path, Path]:
    """Build the report for the runs under ``root``.

    Sections: summary table (mean ± std over seeds, baseline comparison), training class distribution,
    macro-F1 per strategy, macro-F1 against imbalance ratio (when variants record several ratios), per-class
    F1 against training frequency, confusion matrices (summed over seeds, row-normalised), misclassified
    tail examples (first seed), configuration and library versions.

    Args:
        root: An experiment folder, a demo folder or a single run directory.
        output: Path of the HTML file (an existing directory gets ``report.html`` inside it; another suffix
            is replaced by ``.html``). The Markdown goes next to it with suffix ``.md``, and its images in a
            ``<name>_files/`` folder. Default: ``root/report.html``.
        baseline: The strategy the others are compared with (default: the experiment's, as ``compare`` recorded it
            in ``summary.json``, else ``vanilla``).
        per_class_png: Also write the per-class F1 against training frequency figure to this PNG file.

    Returns:
        The paths of the HTML and Markdown files.

    Raises:
        TailTuneError: If ``root`` is not a directory or holds no complete run.
    """
    root_path = Path(root)
    runs, incomplete = scan_runs(root_path)
    if incomplete:
        logger.warning("Skipped %d incomplete run(s) under %s", len(incomplete), root_path)
    if not runs:
        raise no_runs_error(root_path)
    ctx = ReportContext(runs, baseline or _recorded_baseline(root_path))
    if baseline is not None and baseline not in ctx.strategies:  # a recorded or default one may be absent: said inside
        raise TailTuneError(f"baseline {baseline!r} is no strategy of the runs under {root_path}; give one of: "
                            f"{', '.join(ctx.strategies)}", setting="baseline")  # fmt: skip
    html_path, md_path, files_dir = _output_paths(root_path, output)
    doc = Document(files_dir=files_dir.name)
    for section in SECTIONS:
        section(doc, ctx)
    tuning_section(doc, root_path)
    failures = find_failures(root_path)
    if failures:
        doc.section("Failed runs")
        doc.paragraph(f"{len(failures)} run(s) stopped with an error and are left out of every figure and table "
                      "above; running the experiment again retries them.")  # fmt: skip
        doc.table(["run", "reason"], [[failure["run"], failure["reason"]] for failure in failures])
    page, markdown = doc.render(root_path, ctx.facts(len(incomplete)))

    files_dir.mkdir(parents=True, exist_ok=True)
    # Figures from an earlier report of other variants would otherwise linger next to the new ones.
    for stale in files_dir.glob("*.png"):
        if stale.name not in doc.images:
            stale.unlink()
    for name, png in doc.images.items():
        write_atomic(files_dir / name, png)
    write_atomic(md_path, markdown)
    write_atomic(html_path, page)
    if per_class_png is not None:
        write_atomic(per_class_png, ctx.per_class_png)
    logger.info("Wrote %s and %s", html_path, md_path)
    return html_path, md_path


def _recorded_baseline(root: Path) -> str:
    """The baseline an experiment's ``summary.json`` names, else ``vanilla``."""
    try:
        recorded = json.loads((root / SUMMARY_JSON).read_text(encoding="utf-8")).get("baseline")
    except (OSError, ValueError, AttributeError):
        recorded = None
    return recorded if isinstance(recorded, str) and recorded else "vanilla"
