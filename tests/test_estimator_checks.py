"""scikit-learn's estimator checks, those that apply to a text classifier.

TailTuner's tags declare its input: one text per example (``input_tags.one_d_array`` and ``string``, not
``two_d_array``). ``check_estimator`` and ``parametrize_with_checks`` then skip it whole, since nearly every
check feeds numeric 2-D arrays, which a text classifier must refuse rather than read as texts like
``"[ 0.5 -1.2]"``. So every check scikit-learn has for a classifier is listed here once:

- :data:`ON_TAILTUNER`: the checks of the API (parameters, cloning, tags, unfitted use, refusals) run on
  TailTuner itself; where they pass it numbers, refusing them is what they test.
- :data:`ON_ROWS_AS_TEXTS`: the checks that fit, predict and pickle, run on :class:`RowsAsTexts`, TailTuner
  behind a two-line adapter that writes each numeric row as a text of the tiny model's words, so they train a
  real (tiny) model through the whole of ``fit``.
- :data:`NOT_APPLICABLE`: the rest, each with why.

:func:`test_every_check_is_decided` fails when a scikit-learn release adds a check, so that it is decided too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import FILLER, WORDS
from sklearn.exceptions import SkipTestWarning
from sklearn.utils.estimator_checks import check_estimator, estimator_checks_generator

from tailtune.classifier import TailTuner

VOCABULARY = sorted({word for words in WORDS.values() for word in words.split()} | set(FILLER))

# Run on TailTuner as it is.
ON_TAILTUNER = {
    "check_estimator_cloneable",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_estimators_unfitted",  # NotFittedError comes before the (numeric) input is looked at
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_fit1d",  # a 1-D array of numbers is not texts: a ValueError
    "check_requires_y_none",
    "check_classifiers_one_label_sample_weights",  # fit takes no sample_weight: a TypeError naming it
}

# Run on RowsAsTexts: they fit, and a text classifier fits on texts.
ON_ROWS_AS_TEXTS = {
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_estimators_pickle",  # also through joblib's memory-mapped load (readonly_memmap=True)
    "check_pipeline_consistency",
    "check_classifier_data_not_an_array",  # pandas and array-likes give what arrays give
    "check_classifiers_one_label",
    "check_classifiers_classes",  # string, object and integer labels; classes_ == np.unique(y)
    "check_classifiers_regression_target",  # continuous labels are refused
    "check_supervised_y_no_nan",
    "check_supervised_y_2d",  # a column vector: DataConversionWarning, same predictions
    "check_dict_unchanged",  # predicting does not change the fitted estimator
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_fit2d_1sample",  # one example is one class: refused naming it
    "check_fit2d_1feature",  # one-word texts
    # Each row becomes a text of as many words, so these compare batches without padding differences.
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
}

NOT_APPLICABLE = {
    "check_fit_score_takes_y": "fit and score name their arguments texts and labels; scikit-learn passes them "
    "by position",
    "check_n_features_in_after_fitting": "texts have no number of features (no n_features_in_)",
    "check_n_features_in": "texts have no number of features (no n_features_in_)",
    "check_positive_only_tag_during_fit": "about negative numbers in X; texts have no sign",
    "check_estimators_dtypes": "fits on float32/int arrays: the dtypes of numeric X",
    "check_complex_data": "complex numbers in X; refused as non-text values, not with numpy's wording",
    "check_dtype_object": "numbers in an object array, and dicts among them: refused as non-text values",
    "check_estimators_empty_data_messages": "0 features is a numeric notion; no texts is tested in "
    "test_classifier.py (test_none_and_empty_inputs_are_refused)",
    "check_estimators_nan_inf": "NaN and inf in numeric X; a missing text is tested in test_classifier.py",
    "check_estimator_sparse_tag": "sparse matrices of numbers; texts are never sparse",
    "check_estimator_sparse_array": "sparse matrices of numbers; texts are never sparse",
    "check_estimator_sparse_matrix": "sparse matrices of numbers; texts are never sparse",
    "check_array_api_input": "array API namespaces for numeric arrays; texts are strings",
    "check_f_contiguous_array_estimator": "memory layout of numeric arrays",
    "check_estimators_partial_fit_n_features": "no partial_fit",
    "check_classifiers_train": "asks predict to refuse rows of another number of features; texts have none",
    "check_non_transformer_estimators_n_iter": "no max_iter parameter",
    "check_decision_proba_consistency": "no decision_function",
    "check_fit2d_predict1d": "a 1-D array is exactly a text classifier's input, not a row to reshape",
}


def _as_texts(rows: Any) -> list[str]:
    """Each numeric row as a text: one word of the vocabulary per value, picked by the value's bucket (texts stay
    as they are: ``score`` predicts through ``predict``, as scikit-learn's classifiers do)."""
    rows = np.asarray(rows)
    if rows.dtype.kind in "OU":
        return rows.tolist()
    rows = rows.astype(float)
    return [" ".join(VOCABULARY[(int(np.floor(v * 4)) + 13 * j) % len(VOCABULARY)] for j, v in enumerate(row))
            for row in rows]  # fmt: skip


class RowsAsTexts(TailTuner):
    """TailTuner fed numeric rows written as texts, for the checks that need a fit on their numeric data."""

    def fit(self, texts: Any, labels: Any) -> RowsAsTexts:
        return super().fit(_as_texts(texts), labels)

    def predict_proba(self, texts: Any) -> np.ndarray:
        return super().predict_proba(_as_texts(texts))

    def predict(self, texts: Any) -> np.ndarray:
        return super().predict(_as_texts(texts))

    def score(self, texts: Any, labels: Any, sample_weight: Any = None) -> float:
        return super().score(_as_texts(texts), labels, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array, tags.input_tags.one_d_array, tags.input_tags.string = True, False, False
        tags.classifier_tags.poor_score = True  # a tiny model, one epoch
        return tags


# A tiny model trained for one epoch, in fp32 (the checks compare numbers across fits and pickles).
SETTINGS = dict(strategy="vanilla", epochs=1, lr=1e-3, min_steps=0, batch_size=16, max_length=16, eval_fraction=0,
                calibrate="none", mixed_precision="no", show_progress=False)  # fmt: skip


def _check_name(check: Any) -> str:
    return check.func.__name__


def _variant(check: Any) -> str:
    return _check_name(check) + "".join(f"[{key}={value}]" for key, value in sorted(check.keywords.items()))


CHECKS = [check for _, check in estimator_checks_generator(RowsAsTexts(**SETTINGS), legacy=True)]


def test_every_check_is_decided():
    """Every check scikit-learn has for a classifier is run here or listed as not applicable, once."""
    names = {_check_name(check) for check in CHECKS}
    decided = [*ON_TAILTUNER, *ON_ROWS_AS_TEXTS, *NOT_APPLICABLE]
    assert len(decided) == len(set(decided)), "a check is listed twice"
    assert not names - set(decided), f"decide these checks: {sorted(names - set(decided))}"
    assert not set(decided) - names, f"no longer checks of this scikit-learn: {sorted(set(decided) - names)}"


def test_check_estimator_skips_numeric_checks_for_a_string_estimator():
    """With 1-D string input declared, check_estimator feeds TailTuner no numbers: it only checks cloning."""
    with pytest.warns(SkipTestWarning, match="Can't test estimator TailTuner which requires input"):
        check_estimator(TailTuner())


@pytest.mark.parametrize("check", [c for c in CHECKS if _check_name(c) in ON_TAILTUNER], ids=_variant)
def test_on_tailtuner(check, tiny_model):
    check(TailTuner(tiny_model, **SETTINGS))


@pytest.mark.parametrize("check", [c for c in CHECKS if _check_name(c) in ON_ROWS_AS_TEXTS], ids=_variant)
def test_on_rows_as_texts(check, tiny_model):
    check(RowsAsTexts(tiny_model, **SETTINGS))
