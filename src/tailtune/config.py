"""Configuration dataclasses: a run is a list of stages plus shared settings.

Each setting is declared once, with its field (:func:`tailtune.settings.setting`: default, help, range, choices, what
null means), and every value is validated from those declarations when the object is built, so a bad option fails
before any model is loaded.
Configs round-trip through plain dicts (and so JSON/YAML) with ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from tailtune.durations import parse_duration
from tailtune.errors import TailTuneError, first_line
from tailtune.models.scopes import validate_scope
from tailtune.settings import declaration, field_kind, like, setting, validate

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
# The same for multi-label data (tailtune.training.multilabel_losses.MULTILABEL_LOSSES); "focal" names both focal
# losses, and a multi-label run maps single-label losses onto these (tailtune.task.SINGLE_TO_MULTILABEL).
MULTILABEL_LOSS_PARAMS: dict[str, tuple[str, ...]] = {
    "bce": (),
    "focal": ("gamma", "alpha"),
    "cb": ("beta",),
    "cb-focal": ("beta", "gamma"),
    "ntr-focal": ("kappa", "lam", "gamma"),
    "db": ("alpha", "beta", "mu", "kappa", "lam", "gamma"),
    "cb-ntr": ("beta", "kappa", "lam", "gamma"),
    "asl": ("gamma_pos", "gamma_neg", "margin"),
}
# Every loss a stage may name, with the parameters it takes under either task.
ALL_LOSS_PARAMS = {name: tuple(dict.fromkeys(LOSS_PARAMS.get(name, ()) + MULTILABEL_LOSS_PARAMS.get(name, ())))
                   for name in {**LOSS_PARAMS, **MULTILABEL_LOSS_PARAMS}}  # fmt: skip
WEIGHTING_SCHEMES = ("none", "inverse", "inverse-sqrt", "effective")
#: The strategy a run trains when none is named (a name from :data:`tailtune.strategies.STRATEGIES`).
DEFAULT_STRATEGY = "two-stage"
# Tokens per text when max_length is not given and no training texts are at hand, and the least that the length
# read from training texts may be (tailtune.models.lengths); lowered to the model's limit where that is smaller.
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
        label_set_epochs: ``epochs`` on label sets (multi-label data), where the strategy plans otherwise there
            (the multi-label task applies it); None keeps ``epochs``. Giving ``epochs`` clears it.
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
    trainable: str = setting("all", "head, top1..topK or all, per stage", check=validate_scope)
    loss: str = setting("ce", "loss per stage ({choices}; multi-label data maps ce, focal and the balancing losses "
                        "onto its own)", choices=sorted(ALL_LOSS_PARAMS), noun="loss")  # fmt: skip
    loss_params: dict[str, Any] = setting(help="keyword parameters of the loss", default_factory=dict)
    weights: str = setting("none", "class weights per stage", choices=sorted(WEIGHTING_SCHEMES), noun="weights")
    beta: float = setting(0.9999, "effective-number beta per stage", at_least=0, below=1)
    lr: float = setting(1e-5, "peak learning rate per stage", above=0, noun="learning rate")
    epochs: int = setting(1, "epochs per stage (at least: --min-steps may add more)", at_least=0)
    min_steps: int | None = setting(None, "raise epochs until a stage makes N optimiser steps (0: epochs as given)",
                                    at_least=0, null="keep epochs as given")  # fmt: skip
    max_epochs: int = setting(20, "the most epochs min_steps may raise a stage to", at_least=1)
    label_set_epochs: int | None = setting(None, "epochs of the stage on label sets (multi-label data), where they "
                                           "differ; epochs given for the stage replace them", at_least=1,
                                           null="as on one label a text")  # fmt: skip
    stop_after: float | None = setting(None, "end a stage after this many epochs", above=0, null="run every epoch")
    batch_size: int | None = setting(None, "batch size per stage", at_least=1, null="use the run's", noun="batch size")
    warmup_ratio: float = setting(0.0, "share of a stage's steps with linear warm-up", at_least=0, below=1)
    weight_decay: float = setting(0.0, "AdamW weight decay", at_least=0)
    adam_epsilon: float = setting(1e-8, "AdamW epsilon")
    max_grad_norm: float | None = setting(1.0, "gradient-norm clipping threshold", above=0, null="disable clipping")
    sampler: str = setting("random", "{choices}, per stage", choices=SAMPLERS, noun="sampler")

    def __post_init__(self) -> None:
        where = f"stage {self.name!r}"
        validate(self, where)
        self.loss_params = dict(self.loss_params)  # never share a caller's (or a strategy's) dict
        unknown = set(self.loss_params) - set(ALL_LOSS_PARAMS[self.loss])
        if unknown:
            valid = ", ".join(sorted(ALL_LOSS_PARAMS[self.loss])) or "none"
            raise TailTuneError(
                f"{where}: unknown parameter(s) {', '.join(sorted(unknown))} for loss {self.loss!r}; valid: {valid}"
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
        ngram_max: Word n-grams from 1 to this many words; None: decided by the task
            (:meth:`tailtune.task.Task.prepare`, recorded in ``config.json``): 1-2 grams for one label a text,
            unigrams for label sets, where they scored higher on development splits of Reuters-21578's training
            data in a quarter of the time (``benchmarks/README.md``).
        min_df: A term is kept when it occurs in at least this many training texts.
        sublinear_tf: Term frequency as ``1 + log(tf)``.
        analyzer: The terms: ``word`` n-grams (1 to ``ngram_max`` words; each letter of a script written without
            spaces is a word of its own: :func:`tailtune.models.tfidf_terms.word_terms`), ``char`` n-grams (of
            :data:`TFIDF_CHAR_NGRAMS` characters, within words: scikit-learn's ``char_wb``, for scripts written
            without spaces between words), or ``auto``: characters where most training texts are in such a
            script, else words (:func:`tailtune.models.tfidf.choose_analyzer`; the run records the choice).
    """

    name: str = "tfidf"
    classifier: str = setting("linear-svc", "the linear model", choices=CLASSIC_CLASSIFIERS, noun="classifier")
    C: float = setting(1.0, "inverse regularisation strength of the classifier", above=0)
    ngram_max: int | None = setting(None, "word n-grams from 1 to this many words", at_least=1,
                                    null="2 for one label a text, 1 for label sets")  # fmt: skip
    min_df: int = setting(1, "the least number of training texts a term must occur in", at_least=1)
    sublinear_tf: bool = setting(True, "term frequency as 1 + log(tf)")
    analyzer: str = setting("auto", "word or char n-grams, or auto: decided from the training texts",
                            choices=TFIDF_ANALYZERS, noun="analyzer")  # fmt: skip

    def __post_init__(self) -> None:
        validate(self, f"stage {self.name!r}")

    def describe(self) -> str:
        """One line: the features and the classifier."""
        words = f"word 1-{self.ngram_max} grams" if self.ngram_max else "word 1-2 grams (unigrams for label sets)"
        chars = "character {}-{} grams".format(*TFIDF_CHAR_NGRAMS)
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
            (:func:`~tailtune.training.fitting.resolve_max_length`, rule in :mod:`~tailtune.models.lengths`): the
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
        time_budget: Seconds the whole run may take (``90s``, ``10m``, ``1h30m`` or a number of seconds are read
            as such); None: no limit. Before training, the plan is shrunk until its estimated time fits (refit,
            epochs of full fine-tuning, ``max_length``, the scope of full stages, and last the ``tfidf`` strategy),
            and training stops in time with the best model selected so far (:mod:`tailtune.training.cost`).
    """

    model: str | None
    strategy: str = setting(DEFAULT_STRATEGY, "strategy name (see 'tailtune strategies'); default {default}")
    stages: list[Stage] = field(default_factory=list)
    head: str = setting("linear", "classification head (default {default})", choices=HEADS, noun="head")
    # At least one special token plus one token of text; the exact floor depends on the tokenizer and is checked
    # when the model is loaded (tailtune.models.transformer.check_max_length).
    max_length: int | None = setting(None, "max tokens per text in training, special tokens included (default: from "
                                     "the training texts, their {percentile}th percentile rounded up to a multiple of "
                                     "{round_to}, at least {least} and at most {cost_cap}, within the model's limit; "
                                     "logged)", at_least=2)  # fmt: skip
    long_texts: str = setting("auto", "how evaluation and prediction read a text longer than --max-length: chunks "
                              "reads it whole, in up to {windows} windows of --max-length tokens whose logits are "
                              "averaged; truncate reads its first --max-length tokens, as training does; auto "
                              "(default) chooses on the validation split once training ends, truncate unless chunks "
                              "scores better; recorded with the saved model", choices=LONG_TEXTS)  # fmt: skip
    batch_size: int = setting(16, "per-device training batch size (default {default})", at_least=1)
    eval_batch_size: int = setting(64, "per-device evaluation batch size (default {default})", at_least=1)
    seed: int = setting(42, "random seed (default {default})")
    gradient_accumulation_steps: int = setting(1, "batches per optimiser step", at_least=1)
    mixed_precision: str = setting("auto", "default {default}: bf16 on GPUs that support it and on CPUs with native "
                                   "bf16 (AMX-BF16 or AVX512-BF16, read from the CPU flags; config.json records why), "
                                   "else full precision", choices=MIXED_PRECISION, noun="mixed precision")  # fmt: skip
    group_by_length: bool = setting(True, "batch texts of similar length together (less padding)")
    feature_cache: bool = setting(True, "train frozen-bottom stages on cached hidden states")
    cache_dir: str | None = setting(None, "folder for feature caches shared between runs", null="keep caches in memory")
    trust_remote_code: bool = setting(False, "allow checkpoint code")
    logging_steps: int = setting(10, "optimiser steps between history.jsonl entries", at_least=1, option=False)
    pooling: str = setting("auto", "what the head reads: {default} (default) mean-pools sentence-transformers "
                           "checkpoints, cls reads the [CLS] pooler", choices=POOLINGS)  # fmt: skip
    eval_fraction: float = setting(0.1, "share of each class held out when no --eval is given (default {default}; 0 "
                                   "turns it off)", at_least=0, below=1)  # fmt: skip
    eval_min_class_count: int = setting(5, "classes with fewer training examples stay whole in training (default "
                                        "{default})", at_least=2)  # fmt: skip
    select_metric: str = setting("macro_f1", "validation metric that picks each stage's best epoch (default "
                                 "{default}; on multi-label data accuracy and balanced_accuracy score samples-F1)",
                                 choices=SELECT_METRICS)  # fmt: skip
    eval_steps: int | None = setting(None, "also evaluate every N optimiser steps within an epoch, for long epochs "
                                     "(default: epoch ends only)", at_least=1)  # fmt: skip
    patience: int | None = setting(2, "evaluations without validation improvement before a stage stops (default "
                                   "{default})", at_least=1, null="never stop early")  # fmt: skip
    refit: bool | str = setting("auto", "retrain on all the training data after selection", choices=("auto",))
    calibrate: str = setting("logit-adjust", "decision rule chosen on validation and folded into the bias (default "
                             "{default}; on multi-label data any rule but none is one threshold per label)",
                             choices=CALIBRATIONS)  # fmt: skip
    report_to: str = setting("none", "experiment tracker for losses, validation scores, final metrics and the config "
                             "(default {default}; tensorboard writes RUN/tensorboard; needs tailtune[tracking])",
                             choices=REPORT_TO)  # fmt: skip
    attention_dropout: float | None = setting(0.0, "dropout on attention probabilities while training (default "
                                              "{default}, faster on CPUs; BERT-style checkpoints ship 0.1; null in a "
                                              "config file keeps the checkpoint's)", at_least=0, below=1,
                                              null="keep the checkpoint's")  # fmt: skip
    time_budget: float | None = setting(None, "the longest the run may take, e.g. 90s, 10m, 1h30m or seconds: the "
                                        "plan is shrunk to fit it and training stops in time (default: no limit)",
                                        above=0, null="set no limit", parse=parse_duration)  # fmt: skip

    def __post_init__(self) -> None:
        validate(self)
        self.stages = [s if isinstance(s, (StageConfig, TfidfStage)) else stage_from_dict(s) for s in self.stages]
        _check(bool(self.stages), "a run needs at least one stage (tailtune.strategies.build_run_config fills them in)")
        _check(len(self.stages) == 1 or not self.classic,
               "a TF-IDF stage is a whole model: it cannot be combined with other stages")  # fmt: skip

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


#: The settings of a run or a stage that take one of a fixed set of values, and those values (the command line
#: offers them), as the fields declare them.
CHOICES: dict[str, tuple[str, ...]] = {
    f.name: declaration(f).choices
    for cls in (RunConfig, StageConfig)
    for f in dataclasses.fields(cls)
    if field_kind(f)[0] is str and declaration(f).choices
}


@dataclass
class PredictSettings:
    """The settings of prediction with a saved model (``TailTuner.load``, ``predict``, ``evaluate``), each declared
    and checked as the run setting of the same name is.

    Attributes:
        max_length: Tokens per text (or per window of a longer text); None: the length the model trained at.
        long_texts: ``chunks`` or ``truncate``; ``auto`` (the default): as recorded with the model, else truncate.
        eval_batch_size: Texts per batch.
        mixed_precision: As :attr:`RunConfig.mixed_precision`.
    """

    max_length: int | None = like(RunConfig, "max_length", "max tokens per text (or per window of a longer text), "
                                  "special tokens included (default: the length the model was trained at, else the "
                                  "model's limit up to 512)")  # fmt: skip
    long_texts: str = like(RunConfig, "long_texts", "a text longer than --max-length: chunks reads it whole, in up to "
                           "{windows} windows whose logits are averaged; truncate reads its first --max-length tokens "
                           "(default: as recorded with the model, else truncate)")  # fmt: skip
    eval_batch_size: int = like(RunConfig, "eval_batch_size", "batch size (default {default})")
    mixed_precision: str = like(RunConfig, "mixed_precision", "default {default}: bf16 on GPUs that support it and on "
                                "CPUs with native bf16 (AMX-BF16 or AVX512-BF16), else full precision")  # fmt: skip
    #: Prediction takes no optimiser steps (read by :func:`tailtune.training.loop.make_accelerator`).
    gradient_accumulation_steps: ClassVar[int] = 1

    def __post_init__(self) -> None:
        validate(self)


#: The names of the prediction settings.
PREDICT_SETTINGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PredictSettings))


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
    kind = field_kind(f)[0]
    return kind if kind in (int, float) else None


def _check(condition: bool, message: str) -> None:
    """A rule between settings (each setting alone is checked by :func:`tailtune.settings.validate`)."""
    if not condition:
        raise TailTuneError(message)
