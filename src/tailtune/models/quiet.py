"""Quiet loading and saving: what transformers prints on its own while tailtune loads or saves a model."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_transformers(*, bars: bool = True) -> Iterator[None]:
    """Keep transformers' own output off the screen while tailtune loads or saves a model: its table of missing
    and unexpected weights (a fresh head is expected here, and tailtune logs it in one line) and, with ``bars``,
    its per-tensor "Loading weights" / "Writing model shards" bars (tailtune's bars show the work that takes
    time). ``bars=False`` where the load may download: the hub's download bars are worth seeing. A filter on the
    report rather than a higher level: above warnings, transformers prints a list of layers "not sharded"."""
    from transformers.utils import logging as transformers_logging

    def not_a_report(record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()

    report = logging.getLogger("transformers.modeling_utils")
    report.addFilter(not_a_report)
    hide_bars = bars and transformers_logging.is_progress_bar_enabled()
    if hide_bars:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        report.removeFilter(not_a_report)
        if hide_bars:
            transformers_logging.enable_progress_bar()
