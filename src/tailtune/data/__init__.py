"""Data: the shared types, the readers of every format, the checks every source goes through, long-tailed splits.

``from tailtune.data import read_dataset, TextDataset, ...`` keeps working: the names below are the package's
public surface, defined in :mod:`~tailtune.data.types`, :mod:`~tailtune.data.values` and
:mod:`~tailtune.data.readers`.
"""

from __future__ import annotations

from tailtune.data.readers import SUPPORTED_EXTENSIONS, load_dataset, parse_hub_spec, read_dataset, save_dataset
from tailtune.data.types import LabelMap, Splits, TextDataset, check_label_sets, check_labels
from tailtune.data.values import dataset_from_values

__all__ = ["SUPPORTED_EXTENSIONS", "LabelMap", "Splits", "TextDataset", "check_label_sets", "check_labels",
           "dataset_from_values", "load_dataset", "parse_hub_spec", "read_dataset", "save_dataset"]  # fmt: skip
