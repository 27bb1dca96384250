"""What held-out data says of itself: texts that are training texts too, classes a validation file lacks.

Held-out texts that are training texts too score what the model remembers, not how it does on new texts. A
validation or test file that is a copy of the training file (under another name), or that shares many texts with
it (splits made twice, a file appended to both), makes every score look better than it is and nothing else fails.
Texts are compared with their whitespace collapsed, letter case kept. A few shared texts are common in public
benchmarks (R8 and Reuters-21578 repeat about one test article in 500 in training): below
:data:`NOTABLE_SHARE` of the held-out texts they are logged at INFO level only, above it they are a warning.

Scoring a saved model, the data is compared with what its run trained and selected on (:func:`warn_of_run_data`):
a model's own training file scores what it remembers, and its validation file what its epochs and decision rule
were chosen on.

A validation file (``--eval``) without an example of some training classes lets epoch selection and the decision
rule see only the others: for one label a text, that is warned of, naming them. (Label sets are not: a rare label
missing from validation is the rule there, and the decision rule leans on one threshold for it.)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from tailtune.data.fingerprint import fingerprint
from tailtune.data.types import Splits, TextDataset, quote_names

logger = logging.getLogger(__name__)

#: The share of held-out texts found in training above which the overlap is warned of.
NOTABLE_SHARE = 0.01


def _key(text: str) -> str:
    return " ".join(text.split())


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """A 64-bit digest of each text as held-out texts are compared (whitespace collapsed), in order: what a run
    keeps of its training texts so that a later ``evaluate`` can tell them apart from new ones."""
    digests = (hashlib.blake2b(_key(text).encode("utf-8", "surrogatepass"), digest_size=8).digest() for text in texts)
    return np.frombuffer(b"".join(digests), dtype="<u8") if texts else np.zeros(0, dtype="<u8")


def training_texts_in(train: TextDataset, held_out: TextDataset) -> int:
    """How many of ``held_out``'s texts (each occurrence counted) are texts of ``train`` too."""
    seen = {_key(text) for text in train.texts}
    return sum(_key(text) in seen for text in held_out.texts)


def warn_of_held_out(splits: Splits) -> None:
    """Warn where the validation or test data is the training data or shares a notable part of its texts, and where
    validation data of one label a text lacks training classes."""
    _warn_of_training_texts(splits)
    _warn_of_missing_classes(splits)


def _warn_of_training_texts(splits: Splits) -> None:
    for role, data in (("validation", splits.eval), ("test", splits.test)):
        if data is None or not data.texts:
            continue
        shared = len(data.texts) if data is splits.train else training_texts_in(splits.train, data)
        if shared == len(data.texts):
            what = "is the training data" if data is splits.train else "holds only texts of the training data"
            logger.warning("%s: the %s data %s; its scores show how well the model fits texts it trained on, not "
                           "how it does on new ones", data.source, role, what)  # fmt: skip
        elif shared:
            share = shared / len(data.texts)
            level = logging.WARNING if share >= NOTABLE_SHARE else logging.INFO
            logger.log(level, "%s: %d of the %d %s texts (%.1f%%) are training texts too (%s); scores on them show "
                       "what the model remembers", data.source, shared, len(data.texts), role, 100 * share,
                       splits.train.source)  # fmt: skip


def _warn_of_missing_classes(splits: Splits) -> None:
    train, validation = splits.train, splits.eval
    if validation is None or validation.labels is None or train.labels is None or train.multi_label:
        return
    missing = sorted(set(train.labels) - set(validation.labels))
    if missing:
        named = quote_names(missing, limit=5)
        logger.warning("%s: the validation data holds no example of %d of the %d training classes (%s): what "
                       "is chosen on it (epochs, the decision rule, a search's trials) sees only the others",
                       validation.source, len(missing), len(set(train.labels)), named)  # fmt: skip


def warn_of_run_data(data: TextDataset, run_data: dict[str, Any] | None) -> None:
    """Warn where ``data``, scored by a saved model, is (by content) the data its run trained on or chose its epochs
    and decision rule on, or shares a notable part of its texts with the training data.

    Args:
        data: The labelled data the model is scored on.
        run_data: What the run recorded (:func:`tailtune.runs.records.data_of_model`); None: nothing to compare.
    """
    if not run_data:
        return
    found = fingerprint(data)
    roles = {
        "train": ("trained on", "how well the model fits texts it has seen"),
        "eval": ("chose its epochs and decision rule on", "the texts those choices were made to score well"),
    }
    for role, (what, shows) in roles.items():
        if run_data["fingerprints"].get(role) == found and (role == "train" or run_data["selected_on_eval"]):
            logger.warning("%s: this is the data the model's run %s (%s); its scores show %s, not how the model does "
                           "on new texts", data.source, what, run_data["data"].get(role) or role, shows)  # fmt: skip
            return
    trained = run_data.get("train_texts")
    shared = 0 if trained is None or not data.texts else int(np.isin(text_keys(data.texts), trained).sum())
    if shared:
        share = shared / len(data.texts)
        level = logging.WARNING if share >= NOTABLE_SHARE else logging.INFO
        logger.log(level, "%s: %d of its %d texts (%.1f%%) are texts the model's run trained on; scores on them show "
                   "what the model remembers", data.source, shared, len(data.texts), 100 * share)  # fmt: skip
