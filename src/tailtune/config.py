"""Configuration dataclasses: a run is a list of stages plus shared settings.

Every value is validated when the object is built, so a bad option fails before any model is loaded.
Configs round-trip through plain dicts (and so JSON/YAML) with ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tailtune.errors import TailTuneError, first_line
from tailtune.models.scopes import validate_scope

MIXED_PRECISION = ("no", "auto", "bf16", "fp16")
HEADS = ("linear", "mlp")
SAMPLERS = ("random", "class-balanced", "sqrt")
POOLINGS = ("auto", "cls", "mean")
SELECT_METRICS = ("macro_f1", "micro_f1", "balanced_accuracy", "accuracy", "none")
CALIBRATIONS = ("none", "logit-adjust", "class-bias")
REPORT_TO = ("none", "tensorboard", "mlflow", "wandb")
LONG_TEXTS = ("auto", "chunks", "truncate")
# How a saved model reads long texts: a choice made, never "auto" (a model without a record truncates, as it trained).
PREDICT_LONG_TEXTS = ("chunks", "truncate")
# The names of the loss and weighting registries, here so that a config is checked without importing torch:
# tailtune.training.losses.LOSSES builds each loss (its keyword-only parameters are the names listed) and
# tailtune.training.weights.WEIGHTINGS each weighting; tests/test_losses.py and tests/test_weights.py check they agree.
LOSS_PARAMS: dict[str, tuple[str, ...]] = {
    "ce": (),
    "focal": ("gamma",),
    "ldam": ("max_margin", "scale"),
    "logit-adjusted": ("tau",),
    "balanced-softmax": (),
}
WEIGHTING_SCHEMES = ("none", "inverse", "inverse-sqrt", "effective")
#: The settings that take one of a fixed set of values, and those values (the command line offers them).
CHOICES: dict[str, tuple[str, ...]] = {
    "head": HEADS,
    "mixed_precision": MIXED_PRECISION,
    "pooling": POOLINGS,
    "select_metric": SELECT_METRICS,
    "calibrate": CALIBRATIONS,
    "report_to": REPORT_TO,
    "long_texts": LONG_TEXTS,
    "loss": tuple(LOSS_PARAMS),
    "weights": WEIGHTING_SCHEMES,
    "sampler": SAMPLERS,
}
#: The strategy a run trains when none is named (a name from :data:`tailtune.strategies.STRATEGIES`).
DEFAULT_STRATEGY = "two-stage"
# Tokens per text when max_length is not given and no training texts are at hand, and the least that the length
# read from training texts may be (tailtune.training.lengths); lowered to the model's limit where that is smaller.
DEFAULT_MAX_LENGTH = 128
# refit "auto": retrain on all the training data when the median class has fewer examples than this.
REFIT_BELOW_MEDIAN_CLASS = 150


@dataclass
class StageConfig:
    """One training stage: what is trainable, with which loss, for how long.

    Attributes:
        name: A short label used in logs and ``history.jsonl``.
        trainable: ``head`` (classifier head only), ``top<k>`` (head + pooler + top k encoder layers) or ``all``.
        loss: A name from :data:`LOSS_PARAMS` (built by :data:`tailtune.training.losses.LOSSES`).
        loss_params: Keyword parameters of the loss (e.g. ``{"max_margin": 0.5, "scale": 1.0}``).
        weights: Class weighting scheme from :data:`WEIGHTING_SCHEMES`
            (:data:`~tailtune.training.weights.WEIGHTINGS`) passed
            to the loss.
        beta: Beta of the effective-number weighting, in [0, 1).
        lr: Peak learning rate of a fresh AdamW.
        epochs: Passes over the training data (0 skips the stage).
        min_steps: Raise ``epochs`` until the stage makes at least this many optimiser steps (at most
            ``max_epochs``); None or 0 keeps ``epochs`` as given. A budget in steps suits small and large data alike.
        max_epochs: The most epochs ``min_steps`` may raise the stage to.
        stop_after: End the stage after this many epochs (a fraction ends within an epoch), while the
            learning-rate schedule spans all of them (a refit stops where selection chose); None runs every epoch.
        batch_size: Per-device batch size of this stage; None uses the run's.
        warmup_ratio: Fraction of the stage's steps with linear warm-up (then linear decay to 0).
        weight_decay: AdamW weight decay.
        adam_epsilon: AdamW epsilon.
        max_grad_norm: Gradient-norm clipping threshold; None disables clipping.
        sampler: ``random`` (each example once per epoch), ``class-balanced`` or ``sqrt`` (re-sampling with
            class probabilities proportional to 1 or to sqrt(n_c); epochs keep the data set's length).
    """

    name: str = "finetune"
    trainable: str = "all"
    loss: str = "ce"
    loss_params: dict[str, Any] = field(default_factory=dict)
    weights: str = "none"
    beta: float = 0.9999
    lr: float = 1e-5
    epochs: int = 1
    min_steps: int | None = None
    max_epochs: int = 20
    stop_after: float | None = None
    batch_size: int | None = None
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = 1.0
    sampler: str = "random"

    def __post_init__(self) -> None:
        where = f"stage {self.name!r}"
        _coerce_numbers(self, where)
        self.loss_params = dict(self.loss_params)  # never share a caller's (or a strategy's) dict
        try:
            validate_scope(self.trainable)
        except TailTuneError as exc:
            raise TailTuneError(f"{where}: {exc}") from None
        if self.loss not in LOSS_PARAMS:
            raise TailTuneError(f"{where}: unknown loss {self.loss!r}; valid: {', '.join(sorted(LOSS_PARAMS))}")
        unknown = set(self.loss_params) - set(LOSS_PARAMS[self.loss])
        if unknown:
            valid = ", ".join(sorted(LOSS_PARAMS[self.loss])) or "none"
            raise TailTuneError(
                f"{where}: unknown parameter(s) {', '.join(sorted(unknown))} for loss {self.loss!r}; valid: {valid}"
            )
        if self.weights not in WEIGHTING_SCHEMES:
            raise TailTuneError(
                f"{where}: unknown weights {self.weights!r}; valid: {', '.join(sorted(WEIGHTING_SCHEMES))}"
            )
        if self.sampler not in SAMPLERS:
            raise TailTuneError(f"{where}: unknown sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        _check(0 <= self.beta < 1, f"{where}: beta must be in [0, 1), got {self.beta}")
        _check(self.lr > 0, f"{where}: learning rate must be > 0, got {self.lr}")
        _check(
            isinstance(self.epochs, int) and self.epochs >= 0,
            f"{where}: epochs must be >= 0, got {self.epochs}",
        )
        _check(self.min_steps is None or self.min_steps >= 0, f"{where}: min_steps must be >= 0, got {self.min_steps}")
        _check(self.max_epochs >= 1, f"{where}: max_epochs must be >= 1, got {self.max_epochs}")
        _check(
            self.stop_after is None or self.stop_after > 0, f"{where}: stop_after must be > 0, got {self.stop_after}"
        )
        _check(
            self.batch_size is None or self.batch_size >= 1,
            f"{where}: batch size must be >= 1, got {self.batch_size}",
        )
        _check(0 <= self.warmup_ratio < 1, f"{where}: warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        _check(self.weight_decay >= 0, f"{where}: weight_decay must be >= 0, got {self.weight_decay}")
        _check(
            self.max_grad_norm is None or self.max_grad_norm > 0,
            f"{where}: max_grad_norm must be > 0 (or null to disable), got {self.max_grad_norm}",
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, suitable for JSON and YAML."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "stage") -> StageConfig:
        """Build from a dict, rejecting unknown keys with a clear error."""
        return cls(**known_keys(cls, data, where))

    def replace(self, **changes: Any) -> StageConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: The linear models of :class:`TfidfStage`: scikit-learn's ``LinearSVC`` and ``LogisticRegression``.
CLASSIC_CLASSIFIERS = ("linear-svc", "logistic-regression")
#: What :class:`TfidfStage` reads as terms: ``word`` n-grams, ``char`` n-grams, or ``auto`` (decided from the training
#: texts by :func:`tailtune.models.tfidf.choose_analyzer`).
TFIDF_ANALYZERS = ("auto", "word", "char")
#: The character n-grams of ``analyzer: char``, inside words: 1 to 3 characters.
TFIDF_CHAR_NGRAMS = (1, 3)


@dataclass
class TfidfStage:
    """The one stage of the ``tfidf`` strategy: TF-IDF features and a class-balanced linear model, no transformer.

    :mod:`tailtune.models.tfidf` builds it as a scikit-learn pipeline (``TfidfVectorizer``, then the classifier with
    ``class_weight="balanced"``).

    Attributes:
        name: Name in logs and reports.
        classifier: ``linear-svc`` (squared hinge, one-vs-rest; predictions score each class by a softmax over
            its margins) or ``logistic-regression`` (multinomial; its probabilities are the scores).
        C: Inverse regularisation strength of the classifier.
        ngram_max: Word n-grams from 1 to this many words.
        min_df: A term is kept when it occurs in at least this many training texts.
        sublinear_tf: Term frequency as ``1 + log(tf)``.
        analyzer: The terms: ``word`` n-grams (1 to ``ngram_max`` words), ``char`` n-grams (of
            :data:`TFIDF_CHAR_NGRAMS` characters, within words: scikit-learn's ``char_wb``, for scripts written
            without spaces between words), or ``auto``: characters where most training texts are in such a
            script, else words (:func:`tailtune.models.tfidf.choose_analyzer`; the run records the choice).
    """

    name: str = "tfidf"
    classifier: str = "linear-svc"
    C: float = 1.0
    ngram_max: int = 2
    min_df: int = 1
    sublinear_tf: bool = True
    analyzer: str = "auto"

    def __post_init__(self) -> None:
        where = f"stage {self.name!r}"
        _coerce_numbers(self, where)
        _check(self.classifier in CLASSIC_CLASSIFIERS,
               f"{where}: unknown classifier {self.classifier!r}; valid: {', '.join(CLASSIC_CLASSIFIERS)}")  # fmt: skip
        _check(self.C > 0, f"{where}: C must be > 0, got {self.C}")
        _check(self.ngram_max >= 1, f"{where}: ngram_max must be >= 1, got {self.ngram_max}")
        _check(self.min_df >= 1, f"{where}: min_df must be >= 1, got {self.min_df}")
        _check(isinstance(self.sublinear_tf, bool), f"{where}: sublinear_tf must be true or false")
        _check(self.analyzer in TFIDF_ANALYZERS,
               f"{where}: unknown analyzer {self.analyzer!r}; valid: {', '.join(TFIDF_ANALYZERS)}")  # fmt: skip

    def describe(self) -> str:
        """One line: the features and the classifier."""
        words, chars = f"word 1-{self.ngram_max} grams", "character {}-{} grams".format(*TFIDF_CHAR_NGRAMS)
        terms = {"word": words, "char": chars, "auto": f"{words}, or {chars} where words have no spaces between them"}
        return (f"{self.name}: TF-IDF of {terms[self.analyzer]} (min_df={self.min_df}"
                f"{', sublinear tf' if self.sublinear_tf else ''}), {self.classifier} with class_weight=balanced, "
                f"C={self.C:g}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, suitable for JSON and YAML."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TfidfStage:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: A stage of a run: a fine-tuning stage, or the whole TF-IDF model.
Stage = StageConfig | TfidfStage


def stage_from_dict(data: dict[str, Any], *, where: str = "stage") -> Stage:
    """A stage from its dict: a :class:`TfidfStage` where it names a ``classifier``, else a :class:`StageConfig`."""
    kind = TfidfStage if isinstance(data, dict) and "classifier" in data else StageConfig
    return kind(**known_keys(kind, data, where))


@dataclass
class RunConfig:
    """Everything one training run needs besides the data.

    Attributes:
        model: A local model folder or a Hugging Face hub id (None for a TF-IDF run: it uses none).
        strategy: The strategy name the stages came from (``custom`` for hand-written stages).
        stages: The resolved stages, in order; a TF-IDF run has its one :class:`TfidfStage`, and of the other
            settings uses only ``seed`` (and ``report_to``).
        head: ``linear`` (the model's stock head) or ``mlp`` (hidden -> 50 -> ReLU -> K, as the
            two-stage authors use).
        max_length: Token budget per text, special tokens included: training reads a text's first ``max_length``
            tokens. None (not given): read from the training texts when the run starts
            (:func:`~tailtune.training.fitting.resolve_max_length`, rule in :mod:`~tailtune.training.lengths`): the
            95th percentile of
            their token lengths rounded up to a multiple of 64, at least :data:`DEFAULT_MAX_LENGTH` (short texts
            cost nothing more: batches are padded to their own longest text), at most 256 (the cost cap: a
            256-token text costs about twice a 128-token one), and never above the model's limit; the choice and
            its numbers are logged. A value given is never changed, and one the model cannot take is refused.
        long_texts: How evaluation and prediction read a text longer than ``max_length``: ``chunks`` reads it whole,
            in windows of ``max_length`` tokens spread evenly over it (as few as cover it, at most 8: tokens after
            those are not read), and averages the model's logits over them; ``truncate`` reads its first
            ``max_length`` tokens, as training does; ``auto`` (the default) chooses between them on the validation
            split once training ends, ``truncate`` unless ``chunks`` scores better by more than one validation
            example's worth (:func:`tailtune.training.fitting.choose_long_texts`). Validation during training (epoch
            selection) reads texts as given, and truncates under ``auto``; the decision rule is chosen on the
            logits of the reading chosen. The reading chosen is recorded with the saved model, which predicts so
            when loaded.
        batch_size: Default per-device training batch size.
        eval_batch_size: Per-device batch size for evaluation and prediction.
        seed: Seeds model initialisation, shuffling and dropout, once per run.
        gradient_accumulation_steps: Batches per optimiser step.
        mixed_precision: ``no``, ``bf16``, ``fp16`` or ``auto`` (bf16 on GPUs that support it and on CPUs
            with native bf16 instructions, else fp32; see :mod:`tailtune.training.precision`).
        group_by_length: Batch texts of similar length together (less padding); the batch order stays random.
        feature_cache: Train frozen-bottom stages on cached hidden states (the frozen part runs once).
        cache_dir: Folder for feature caches shared between runs; None keeps caches in memory.
        trust_remote_code: Allow model code shipped with a checkpoint (off by default).
        logging_steps: Optimiser steps between ``history.jsonl`` entries.
        pooling: ``auto`` (mean pooling for sentence-transformers checkpoints trained for it, else the
            stock ``[CLS]`` head), ``cls`` or ``mean``; see :mod:`tailtune.models.pooling`.
        eval_fraction: Without eval data, the share of each class held out for validation (0: none).
        eval_min_class_count: A class with fewer training examples stays whole in training.
        select_metric: Validation metric that picks the best epoch of each stage (``none``: last epoch).
        eval_steps: Also evaluate on validation every this many optimiser steps within an epoch, for long
            epochs; None evaluates at epoch ends only.
        patience: Evaluations without validation improvement that end a stage early (None: never).
        refit: After selection on a held-out split, retrain on all the training data with the chosen epochs:
            true, false, or ``auto`` (the default: where the median class has fewer than
            :data:`REFIT_BELOW_MEDIAN_CLASS` training examples, there the held-out tenth is data the final model
            would miss; :func:`~tailtune.training.fitting.refit_decision`).
        calibrate: Decision rule chosen on validation and folded into the bias: ``none``, ``logit-adjust``
            or ``class-bias``; see :mod:`tailtune.training.calibration`.
        report_to: Experiment tracker for losses, learning rates, validation scores, final metrics and the
            config: ``none``, ``tensorboard``, ``mlflow`` or ``wandb``; see :mod:`tailtune.runs.tracking`.
        attention_dropout: Dropout on the attention probabilities while training; None keeps the
            checkpoint's. Off by default: PyTorch's fused CPU attention has no dropout path, so the usual 0.1
            makes every full fine-tuning step about 28% slower there, and validation scores did not gain from
            it (``benchmarks/README.md``). Hidden-state dropout is kept.
    """

    model: str | None
    strategy: str = DEFAULT_STRATEGY
    stages: list[Stage] = field(default_factory=list)
    head: str = "linear"
    max_length: int | None = None
    long_texts: str = "auto"
    batch_size: int = 16
    eval_batch_size: int = 64
    seed: int = 42
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "auto"
    group_by_length: bool = True
    feature_cache: bool = True
    cache_dir: str | None = None
    trust_remote_code: bool = False
    logging_steps: int = 10
    pooling: str = "auto"
    eval_fraction: float = 0.1
    eval_min_class_count: int = 5
    select_metric: str = "macro_f1"
    eval_steps: int | None = None
    patience: int | None = 2
    refit: bool | str = "auto"
    calibrate: str = "logit-adjust"
    report_to: str = "none"
    attention_dropout: float | None = 0.0

    def __post_init__(self) -> None:
        _coerce_numbers(self, "run config")
        self.stages = [s if isinstance(s, (StageConfig, TfidfStage)) else stage_from_dict(s) for s in self.stages]
        _check(bool(self.stages), "a run needs at least one stage (tailtune.strategies.build_run_config fills them in)")
        _check(len(self.stages) == 1 or not self.classic,
               "a TF-IDF stage is a whole model: it cannot be combined with other stages")  # fmt: skip
        _check(self.head in HEADS, f"unknown head {self.head!r}; valid: {', '.join(HEADS)}")
        # A classifier reads at least one special token plus one token of text; the exact floor depends on the
        # tokenizer and is checked when the model is loaded (tailtune.models.transformer.check_max_length).
        _check(self.max_length is None or self.max_length >= 2, f"max_length must be >= 2, got {self.max_length}",
               "max_length")  # fmt: skip
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}", "batch_size")
        _check(self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}",
               "eval_batch_size")  # fmt: skip
        _check(self.gradient_accumulation_steps >= 1,
               f"gradient_accumulation_steps must be >= 1, got {self.gradient_accumulation_steps}",
               "gradient_accumulation_steps")  # fmt: skip
        _check(
            self.mixed_precision in MIXED_PRECISION,
            f"unknown mixed precision {self.mixed_precision!r}; valid: {', '.join(MIXED_PRECISION)}",
        )
        _check(self.logging_steps >= 1, f"logging_steps must be >= 1, got {self.logging_steps}")
        _choice("pooling", self.pooling, POOLINGS)
        _choice("select_metric", self.select_metric, SELECT_METRICS)
        _choice("calibrate", self.calibrate, CALIBRATIONS)
        _choice("report_to", self.report_to, REPORT_TO)
        _choice("long_texts", self.long_texts, LONG_TEXTS)
        _check(0 <= self.eval_fraction < 1, f"eval_fraction must be in [0, 1), got {self.eval_fraction}",
               "eval_fraction")  # fmt: skip
        _check(self.eval_min_class_count >= 2, f"eval_min_class_count must be >= 2, got {self.eval_min_class_count}",
               "eval_min_class_count")  # fmt: skip
        _check(isinstance(self.refit, bool) or self.refit == "auto", f"refit must be true, false or auto, got "
               f"{self.refit!r}", "refit")  # fmt: skip
        _check(self.patience is None or self.patience >= 1, f"patience must be >= 1 (or null), got {self.patience}",
               "patience")  # fmt: skip
        _check(self.eval_steps is None or self.eval_steps >= 1, f"eval_steps must be >= 1, got {self.eval_steps}",
               "eval_steps")  # fmt: skip
        _check(self.attention_dropout is None or 0 <= self.attention_dropout < 1,
               f"attention_dropout must be in [0, 1) (or null), got {self.attention_dropout}",
               "attention_dropout")  # fmt: skip

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, suitable for JSON and YAML."""
        data = dataclasses.asdict(self)
        data["stages"] = [s.to_dict() for s in self.stages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a dict, rejecting unknown keys with a clear error."""
        data = known_keys(cls, data, "run config")
        stages = data.pop("stages", [])
        return cls(**data, stages=[stage_from_dict(s, where=f"stage {i + 1}") for i, s in enumerate(stages)])

    @property
    def classic(self) -> bool:
        """Whether the run trains a TF-IDF + linear model (:class:`TfidfStage`) rather than a transformer."""
        return any(isinstance(stage, TfidfStage) for stage in self.stages)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with a one-line error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise TailTuneError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TailTuneError(f"{path}: not valid YAML ({first_line(exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TailTuneError(f"{path}: expected a mapping of option names to values at the top level")
    return data


def known_keys(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """A copy of ``data`` after checking that every key is a field of the dataclass ``cls``."""
    if not isinstance(data, dict):
        raise TailTuneError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise TailTuneError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return dict(data)


def field_default(cls: type, name: str) -> Any:
    """The default that the field ``name`` of the config dataclass ``cls`` declares."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def number_type(f: dataclasses.Field) -> type | None:
    """``int`` or ``float`` for a config field that holds a number (or None), None for any other field."""
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    return float if kind.startswith("float") else int if kind.startswith("int") else None


def _coerce_numbers(obj: Any, where: str) -> None:
    """Give every number field its type: numeric strings (YAML reads ``1e-4`` as a string) and whole floats are
    converted; a fraction for a whole-number field (``max_length: 32.5``), a bool or a non-number is refused."""
    for f in dataclasses.fields(obj):
        target = number_type(f)
        value = getattr(obj, f.name)
        if target is None or value is None:
            continue
        number = _as_number(value)
        if number is None:
            raise TailTuneError(f"{where}: {f.name} must be a number, got {value!r}")
        if target is int and not (isinstance(number, int) or number.is_integer()):
            raise TailTuneError(f"{where}: {f.name} must be a whole number, got {value!r}")
        setattr(obj, f.name, target(number))


def _as_number(value: Any) -> int | float | None:
    """``value`` as a Python int or float (numpy numbers and numeric strings included); None for anything else."""
    if isinstance(value, bool):
        return None  # a bool is an int to Python, never a number in a config
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        for parse in (int, float):
            with contextlib.suppress(ValueError):
                return parse(value)
    return None


def _check(condition: bool, message: str, setting: str | None = None) -> None:
    if not condition:
        raise TailTuneError(message, setting=setting)


def _choice(setting: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise TailTuneError(f"{setting}: unknown value {value!r}; valid: {', '.join(valid)}", setting=setting)
