"""The report's tuning section, for a folder written by ``tailtune tune``: every trial, the chosen settings,
and the final model's validation score beside its test score."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from tailtune.report.document import Cell, Document
from tailtune.runs.rundir import BEST_FILE, TRIALS_FILE


def _number(value: object, digits: int = 4) -> Cell:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("-", numeric=True)
    if isinstance(value, float) and not value.is_integer():
        return Cell(f"{value:.{digits}g}" if value < 1e-2 else f"{value:.{digits}f}", numeric=True)
    return Cell(str(int(value)) if isinstance(value, float) else str(value), numeric=True)


def tuning_section(doc: Document, root: Path) -> None:
    """Add the section when ``root`` holds a search (``best.json`` and ``trials.csv``); else nothing."""
    if not ((root / BEST_FILE).is_file() and (root / TRIALS_FILE).is_file()):
        return
    best = json.loads((root / BEST_FILE).read_text(encoding="utf-8"))
    trials = pd.read_csv(root / TRIALS_FILE)
    doc.section("Tuning")
    final = best.get("final") or {}
    if final.get("macro_f1") is None:  # trained without test or eval data: nothing scored it
        outcome = "has no score: it was trained without test or eval data."
    else:
        outcome = (f"scores {final['macro_f1']:.4f} macro-F1 on {final.get('split')} data: the gap between the two "
                   "is what the search overfits to validation.")  # fmt: skip
    doc.paragraph(
        f"{best['n_trials']} trials searched strategies and budgets on the validation split "
        f"({(best.get('validation_split') or {}).get('source')}); trial {best['trial']} won with "
        f"{best['strategy']} at validation {best['select_metric']} {best['validation_score']:.4f}. The final "
        f"model, trained with those settings, {outcome}"
    )
    doc.bullets([f"{key}: {value}" for key, value in best["settings"]["settings"].items()])
    params = [c for c in trials.columns if c.startswith("param.") and c != "param.strategy"]
    header = ["trial", "state", "strategy", "validation", "seconds", *(c.removeprefix("param.") for c in params)]
    rows = []
    for record in trials.sort_values("value", ascending=False, na_position="last").to_dict("records"):
        cells = [_number(record["number"]), str(record["state"]).lower(), str(record.get("param.strategy", "")),
                 _number(record["value"]), _number(record.get("seconds"), 0)]  # fmt: skip
        cells += [_number(record[c], 3) if isinstance(record[c], float) else str(record[c]) for c in params]
        cells[0].strong = record["number"] == best["trial"]
        rows.append(cells)
    doc.table(header, rows)
