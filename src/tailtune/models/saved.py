"""What a saved model records about itself, and what its folder tells other loaders.

tailtune keeps what it needs to use a model again in the model's config (``config.json``), under ``tailtune_*``
keys: how the head reads the encoder (pooling), the head type, the token budget it was trained with, how its
prediction reads longer texts and the tokenizer's own limit, whether its labels were integers, the training class
counts, the decision rule folded into its bias, and the architecture it is built on. :func:`write_record` is the one
place that sets them and :func:`read_record` the one place that reads them (the loader, the model card and
prediction all go through it). What a fit decided is recorded at once, from its
:class:`~tailtune.models.family.Decisions` (:func:`write_fit_record`); the other fields describe the architecture
and are set where the model is built and saved.

A model whose forward pass is not its architecture's stock one (mean pooling, the mlp head) is saved with a
model type of tailtune's own (e.g. ``tailtune-mean-pooling-bert``) and an ``auto_map`` into a modeling file in
the folder. Plain ``transformers`` then refuses it unless told ``trust_remote_code=True``, and with that runs
the folder's own file and predicts as tailtune does; it never loads the folder as the stock model, which
would read the ``[CLS]`` pooler through a head trained for something else. tailtune itself rebuilds the base
architecture's config from the folder's (:func:`base_config`) and uses its own classes: no remote code.
Models with the stock pooling and the linear head stay ordinary checkpoints of their architecture.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailtune.errors import TailTuneError
from tailtune.fileio import FolderKind

if TYPE_CHECKING:
    from tailtune.models.family import Decisions

#: The folder of a run directory that holds its saved model.
MODEL_DIR = "model"
PREFIX = "tailtune_"
OWN_TYPE_PREFIX = "tailtune-"


@dataclass(frozen=True)
class SavedRecord:
    """What tailtune recorded in a model's config; defaults for a checkpoint tailtune did not train.

    Attributes:
        pooling: ``cls`` or ``mean``; None where not recorded (a checkpoint tailtune did not train).
        head: ``linear`` (the architecture's stock head) or ``mlp``.
        max_length: The token budget it was trained with. The saved tokenizer states it as its ``model_max_length``,
            so that plain ``transformers`` with ``truncation=True`` reads texts as tailtune does.
        long_texts: How tailtune's own prediction reads a text longer than ``max_length``: ``chunks`` (whole, in
            windows) or ``truncate`` (:attr:`RunConfig.long_texts <tailtune.config.RunConfig>`); None where not
            recorded (models saved before it was), which predict in windows too.
        tokenizer_max_length: The tokenizer's own ``model_max_length`` before it was saved with ``max_length``
            (0: it stated none); None where the saved tokenizer keeps its own (models saved without it).
        label_kind: ``string``, ``integer`` or ``boolean``: the type of every training label, which predictions
            keep (models saved before it was recorded say ``tailtune_integer_labels`` instead).
        train_counts: Training examples per label name.
        calibration: The decision rule folded into the bias (:meth:`tailtune.training.calibration.Calibration.to_dict`).
        base_model_type: The architecture's own model type (``bert``) when the folder declares tailtune's own.
        task: What its labels are (:mod:`tailtune.task`); for a checkpoint tailtune did not train, ``multi-label``
            where its config's ``problem_type`` says ``multi_label_classification``, else None (one label a text,
            as models saved before tasks were named).
    """

    pooling: str | None = None
    head: str = "linear"
    max_length: int | None = None
    long_texts: str | None = None
    tokenizer_max_length: int | None = None
    label_kind: str = "string"
    train_counts: dict[str, int] | None = None
    calibration: dict[str, Any] | None = None
    base_model_type: str | None = None
    task: str | None = None


FIELDS = tuple(field.name for field in dataclasses.fields(SavedRecord))


def write_record(config: Any, **values: Any) -> None:
    """Record ``values`` (fields of :class:`SavedRecord`) on a model config, as ``tailtune_<field>``."""
    for name, value in values.items():
        if name not in FIELDS:
            raise TypeError(f"write_record: unknown field {name!r}; fields: {', '.join(FIELDS)}")
        setattr(config, PREFIX + name, value)


def write_fit_record(config: Any, decisions: Decisions) -> None:
    """Record on a model config what its fit decided: every field a fit sets, at once.

    Each is set, None included, so that nothing recorded by the checkpoint the fit started from (a decision rule,
    its class counts) is taken for this model's.
    """
    write_record(
        config,
        task=decisions.task,
        label_kind=decisions.label_kind,
        train_counts=decisions.train_counts,
        max_length=decisions.max_length,  # a loaded model predicts at the length it trained at, unless told otherwise
        long_texts=decisions.reading,  # as chosen (``auto``): a loaded model reads so
        calibration=decisions.calibration,
    )


def is_saved_model(path: Path) -> bool:
    """Whether ``path`` holds a model tailtune saved: safetensors weights beside a ``config.json`` with its record."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(config, dict)
        and any(str(key).startswith(PREFIX) for key in config)
        and any(path.glob("*.safetensors"))
    )


#: A saved model's folder, as an output folder that only an earlier save is replaced in.
SAVED_MODEL = FolderKind("a saved model", "model", "name a folder to save the model into", is_saved_model)


def read_record(config: Any) -> SavedRecord:
    """The record in a model config, or in a ``config.json`` dict."""
    get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    values = {name: get(PREFIX + name) for name in FIELDS}
    if values["label_kind"] is None and get(PREFIX + "integer_labels"):
        values["label_kind"] = "integer"
    if values["task"] is None and get("problem_type") == "multi_label_classification":
        values["task"] = "multi-label"  # a checkpoint trained elsewhere for label sets: sigmoid(logit) > 0.5 each
    return SavedRecord(**{name: value for name, value in values.items() if value is not None})


def needs_own_classes(config_dict: dict[str, Any]) -> bool:
    """Whether a ``config.json`` dict is a model only tailtune's classes (or its folder's file) can run.

    That is tailtune's own model type, or, in folders saved before tailtune had one, an ``auto_map`` into
    tailtune's modeling file.
    """
    return str(config_dict.get("model_type", "")).startswith(OWN_TYPE_PREFIX) or _maps_to_own_code(config_dict)


def _maps_to_own_code(config_dict: dict[str, Any]) -> bool:
    targets = (config_dict.get("auto_map") or {}).values()
    return any(str(target).startswith(PREFIX) for target in targets)  # modules named tailtune_*.py


def base_config(config_dict: dict[str, Any], name_or_path: str) -> Any:
    """The config of a model tailtune saved, as its base architecture's config class (no remote code).

    Raises:
        TailTuneError: The folder declares tailtune's own model type without the base it is built on.
    """
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config_dict = dict(config_dict)
    model_type = str(config_dict.get("model_type", ""))
    base = read_record(config_dict).base_model_type or model_type
    if base.startswith(OWN_TYPE_PREFIX) or base not in CONFIG_MAPPING:
        raise TailTuneError(f"{name_or_path}: config.json has model type {model_type!r} but no known architecture in "
                            f"{PREFIX}base_model_type; add it (e.g. \"bert\")")  # fmt: skip
    config_dict["model_type"] = base
    config_dict.pop("auto_map", None)  # tailtune uses its own classes, whatever the folder's file says
    config = CONFIG_MAPPING[base].from_dict(config_dict)
    config.name_or_path = name_or_path
    return config


def code_file(config_dict: dict[str, Any]) -> str | None:
    """The modeling file a saved ``config.json`` points transformers to (None: an ordinary checkpoint)."""
    target = (config_dict.get("auto_map") or {}).get("AutoModelForSequenceClassification")
    return target.rpartition(".")[0] + ".py" if target else None


def read_config(name_or_path: str) -> dict[str, Any]:
    """A model's ``config.json`` as a dict (a local folder, or a hub id from the cache or the hub)."""
    from transformers import PretrainedConfig

    config_dict, _ = PretrainedConfig.get_config_dict(name_or_path)
    return config_dict


# The config class of every modeling file: the base architecture's config under tailtune's own model type, so
# that transformers asks for trust_remote_code instead of loading the folder as the stock model.
_CONFIG_SOURCE = '''

class {name}({base}):
    """{base} under the model type of this folder's own classes."""

    model_type = "{model_type}"

'''


@dataclass(frozen=True)
class OwnConfig:
    """The config class a modeling file declares: the base one under tailtune's own model type."""

    name: str  # e.g. TailTuneMeanPoolingBertConfig
    base: str  # e.g. BertConfig
    model_type: str  # e.g. tailtune-mean-pooling-bert

    @property
    def source(self) -> str:
        """The class's source, for the modeling file."""
        return _CONFIG_SOURCE.format(name=self.name, base=self.base, model_type=self.model_type)


def own_config(model: Any, kind: str, model_class: str) -> OwnConfig:
    """The config class for ``model``'s modeling file; ``kind`` (``mean-pooling``) goes into the model type."""
    return OwnConfig(
        name=model_class.removesuffix("ForSequenceClassification") + "Config",
        base=type(model.config).__name__,
        model_type=f"{OWN_TYPE_PREFIX}{kind}-{model.config.model_type}",
    )


@dataclass(frozen=True)
class FolderCode:
    """The modeling file a model with a non-stock forward pass is saved with."""

    file: str  # e.g. tailtune_pooling.py
    config: OwnConfig
    model_class: str
    text: str


def mark_folder(path: Path, code: FolderCode | None) -> None:
    """Make a saved folder's ``config.json`` say what loads it: its own code, or the stock classes.

    With ``code``, the file is written and the config gets tailtune's own model type and an ``auto_map`` for
    ``AutoConfig`` and ``AutoModelForSequenceClassification`` into it. Without, an ``auto_map`` into tailtune's
    modeling file (from a folder it was loaded from) is dropped; one into a checkpoint's own code stays.
    """
    config_file = path / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if _maps_to_own_code(config):
        del config["auto_map"]
    if code is not None:
        (path / code.file).write_text(code.text, encoding="utf-8")
        module = code.file.removesuffix(".py")
        config["model_type"] = code.config.model_type
        config["architectures"] = [code.model_class]
        config["auto_map"] = {"AutoConfig": f"{module}.{code.config.name}",
                              "AutoModelForSequenceClassification": f"{module}.{code.model_class}"}  # fmt: skip
    # The layout of transformers' own config.json (sorted keys, two-space indent).
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
