"""Which terms a TF-IDF stage reads: word n-grams, or character n-grams for scripts written without spaces
between words, decided from the training texts (``analyzer: auto``), and the vectoriser that reads them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tailtune.config import TFIDF_CHAR_NGRAMS, TfidfStage

#: Letters of the scripts written without spaces between words: Thai, Lao, Tibetan, Myanmar, Khmer, the Japanese
#: kana (halfwidth katakana too) and the CJK ideographs (with 々, 〆, 〇 and the extensions).
_UNSPACED = (
    "\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_UNSPACED_RUN = re.compile(f"[{_UNSPACED}]+")
_UNSPACED_LETTER = re.compile(f"[{_UNSPACED}]")
#: scikit-learn's default token pattern (two or more word characters), after each letter of such a script.
_WORD_TERM = re.compile(f"[{_UNSPACED}]|\\b\\w\\w+\\b")
_OTHER_WORDS = re.compile(f"[^\\W\\d_{_UNSPACED}]+")
#: Letters of such a script whose runs (between spaces, punctuation, digits and other letters) average more than
#: this many are words written together: text segmented with spaces averages under 2 (Chinese words have 1 or 2
#: characters, few have more), an unsegmented headline or clause has 4 or more.
RUN_LETTERS = 2.5


def runs_words_together(text: str) -> bool:
    """Whether ``text`` is written without spaces between its words.

    It is where it has at least as many letters of a script written so (Chinese, Japanese, Thai, ...; each about a
    syllable) as words of other scripts, and their runs average more than :data:`RUN_LETTERS` letters (the same
    script segmented into words with spaces does not).
    """
    runs = _UNSPACED_RUN.findall(text)
    if not runs:
        return False
    letters = sum(map(len, runs))
    return letters > RUN_LETTERS * len(runs) and letters >= len(_OTHER_WORDS.findall(text))


def word_terms(text: str) -> list[str]:
    """The word terms of ``text``: its words of two or more word characters, as scikit-learn's default token
    pattern finds them, and each letter of a script written without spaces on its own (where the pattern would read
    a whole run of them, often a clause, as one word), so that word 1-2 grams read those letters' 1-2 grams. Text
    without such letters gives scikit-learn's own terms."""
    return _WORD_TERM.findall(_UNSPACED_LETTER.sub(r" \g<0> ", text))


def choose_analyzer(texts: Sequence[str]) -> tuple[str, str]:
    """What ``analyzer: auto`` reads in these training texts, and why.

    ``char`` where more than half of them are written without spaces between words (:func:`runs_words_together`):
    there a word n-gram is a whole clause or text, seen once, and a new text shares none with the training texts;
    ``char`` too where more than half hold no word at all (emoji, symbols: :func:`word_terms` finds nothing); else
    ``word``, the n-grams of text whose words are separated by spaces.

    Returns:
        ``word`` or ``char``, and the reason (how many texts run their words together).
    """
    together = sum(map(runs_words_together, texts))
    counted = (f"auto: {together} of {len(texts)} training texts are written without spaces between words (as "
               "Chinese, Japanese or Thai are)")  # fmt: skip
    if 2 * together > len(texts):
        return "char", counted
    wordless = sum(not word_terms(text) for text in texts)
    if 2 * wordless > len(texts):
        return "char", f"auto: {wordless} of {len(texts)} training texts hold no word (emoji, symbols, codes)"
    return "word", f"{counted}; character n-grams are read where more than half are"


def analyzer_decision(stage: TfidfStage, texts: Sequence[str] | None) -> tuple[str, str]:
    """The analyzer a stage reads ``texts`` (its training texts) with, ``word`` or ``char``, and why: the one
    given, else :func:`choose_analyzer`'s choice (words where there are no texts to decide on)."""
    if stage.analyzer != "auto":
        return stage.analyzer, "given"
    if texts is None:
        return "word", "auto without training texts: words"
    return choose_analyzer(texts)


def make_vectorizer(stage: TfidfStage, texts: Sequence[str] | None = None) -> Any:
    """The unfitted ``TfidfVectorizer`` of a stage (``analyzer: auto`` decided on ``texts``, as
    :func:`make_pipeline` does)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    tf = {"min_df": stage.min_df, "sublinear_tf": stage.sublinear_tf}
    if analyzer_decision(stage, texts)[0] == "char":
        # Within words (char_wb): an n-gram never spans the space between two words of other scripts in the text.
        return TfidfVectorizer(analyzer="char_wb", ngram_range=TFIDF_CHAR_NGRAMS, **tf)
    # A stage no task has prepared (tailtune.task.Task.prepare decides ngram_max) reads one label a text's 1-2 grams.
    # word_terms: texts of Chinese, Japanese or Thai among others written with spaces still share terms.
    return TfidfVectorizer(ngram_range=(1, stage.ngram_max or 2), tokenizer=word_terms, token_pattern=None, **tf)


def without_terms(pipeline: Any, texts: Sequence[str]) -> Any:
    """Which ``texts`` hold no term of the fitted pipeline's vocabulary (its first step, the vectoriser): each is
    one all-zero vector, scored by the classifier's intercepts alone."""
    import numpy as np

    if not len(texts):
        return np.zeros(0, dtype=bool)
    return np.asarray(pipeline[0].transform(texts).getnnz(axis=1) == 0)
