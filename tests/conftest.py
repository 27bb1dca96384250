"""Shared fixtures: a tiny BERT and tokenizer built in code (no download), and small labelled data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from tailtune.data.types import TextDataset

WORDS = {
    "sport": "match goal team win player coach league score season cup",
    "tech": "software chip phone internet computer data network code app device",
    "money": "market bank shares profit price economy trade growth fund rate",
}
FILLER = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "on",
    "for",
    "with",
    "said",
    "new",
    "year",
    "this",
    "that",
    "it",
    "is",
    "was",
]


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow (a real pretrained model, a package build, or processes killed and "
                                   "restarted); use --runslow")  # fmt: skip
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models train fastest on one thread; two OpenMP threads spin badly on a busy 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _auto_precision_is_fp32():
    """In-process, 'auto' resolves to fp32 whatever the CPU: tiny-model numbers must not depend on bf16 support."""
    from tailtune.training import precision

    native = precision.NATIVE_BF16_FLAGS
    precision.NATIVE_BF16_FLAGS = ()
    precision.auto_precision.cache_clear()
    yield
    precision.NATIVE_BF16_FLAGS = native
    precision.auto_precision.cache_clear()


def make_texts(counts: dict[str, int], seed: int = 0) -> tuple[list[str], list[str]]:
    """Short synthetic texts whose topic words make the label learnable."""
    rng = random.Random(seed)
    texts, labels = [], []
    for label, n in counts.items():
        topic = WORDS[label].split()
        for _ in range(n):
            words = rng.choices(topic, k=4) + rng.choices(FILLER, k=rng.randint(2, 8))
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(label)
    return texts, labels


#: Texts per label set: the frequent label alone, the frequent one with a rarer one, the rare one alone, none.
LABEL_SETS = {("sport",): 24, ("money", "sport"): 10, ("money",): 8, ("tech",): 5, ("money", "tech"): 3, (): 6}


def label_sets(counts: dict[tuple[str, ...], int], seed: int) -> TextDataset:
    """Short texts holding the topic words of each of their labels (filler only for a text without labels)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for names, n in counts.items():
        for _ in range(n):
            words = [w for name in names for w in rng.choices(WORDS[name].split(), k=3)]
            words += rng.choices(FILLER, k=rng.randint(2, 6))
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(names)
    return TextDataset(texts, labels, f"memory-{seed}")


def write_file(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8, or bytes as they are) to ``path``; return the path."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def write_texts_csv(path: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """Write :func:`make_texts` as a ``text,label`` CSV at ``path``; return the path."""
    texts, labels = make_texts(counts, seed=seed)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    """``tailtune ARGV`` in-process: its exit status, standard output and standard error."""
    from tailtune.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def build_tiny_model_dir(path: Path, model_type: str = "bert", dropout: float = 0.1) -> Path:
    """Save a randomly initialised tiny encoder + word-level tokenizer to ``path`` (save_pretrained layout)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        AutoModel,
        BertConfig,
        DebertaV2Config,
        DistilBertConfig,
        ElectraConfig,
        ModernBertConfig,
        MPNetConfig,
        PreTrainedTokenizerFast,
        RobertaConfig,
        XLNetConfig,
    )

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted({w for ws in WORDS.values() for w in ws.split()} | set(FILLER) | {"<", ">", "&"})
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=64,
    )  # fmt: skip
    size = {"vocab_size": len(vocab), "pad_token_id": 0}
    common = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, max_position_embeddings=80, **size,
    )  # fmt: skip
    configs = {
        "bert": lambda: BertConfig(**common),
        "roberta": lambda: RobertaConfig(**common),
        "deberta-v2": lambda: DebertaV2Config(**common, pooler_hidden_size=32, pooler_dropout=dropout),
        "distilbert": lambda: DistilBertConfig(
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            dropout=dropout,
            attention_dropout=dropout,
            seq_classif_dropout=dropout,
            max_position_embeddings=80,
            **size,
        ),  # fmt: skip
        # Listed, with embeddings narrower than the layers (a projection sits between them).
        "electra": lambda: ElectraConfig(**common, embedding_size=16),
        # Not listed: their layouts are discovered.
        "mpnet": lambda: MPNetConfig(**common),
        "modernbert": lambda: ModernBertConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=80,
            attention_dropout=dropout,
            mlp_dropout=dropout,
            embedding_dropout=dropout,
            classifier_dropout=dropout,
            global_attn_every_n_layers=1,
            bos_token_id=2,
            eos_token_id=3,
            cls_token_id=2,
            sep_token_id=3,
            **size,
        ),  # fmt: skip
        # Its layers read hidden states as [tokens, batch, hidden]: no cache.
        "xlnet": lambda: XLNetConfig(d_model=32, n_layer=2, n_head=4, d_inner=64, dropout=dropout, **size),
    }
    torch.manual_seed(0)
    model = AutoModel.from_config(configs[model_type]())
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def build_tiny_model_with_positions(path: Path, positions: int, tokenizer_limit: int | None) -> str:
    """A tiny BERT (:func:`build_tiny_model_dir`) with ``positions`` position embeddings, whose tokenizer states
    ``tokenizer_limit`` as its ``model_max_length`` (None: states none)."""
    import torch
    from transformers import AutoConfig, AutoModel

    build_tiny_model_dir(path)
    config = AutoConfig.from_pretrained(path)
    config.max_position_embeddings = positions
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(str(path))
    tokenizer_config = path / "tokenizer_config.json"
    settings = json.loads(tokenizer_config.read_text())
    settings.pop("model_max_length", None)
    if tokenizer_limit is not None:
        settings["model_max_length"] = tokenizer_limit
    tokenizer_config.write_text(json.dumps(settings))
    return str(path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """Folder of a tiny BERT encoder with dropout."""
    return str(build_tiny_model_dir(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_model_no_dropout(tmp_path_factory) -> str:
    """Folder of a tiny BERT encoder without dropout (for exact comparisons)."""
    return str(build_tiny_model_dir(tmp_path_factory.mktemp("tiny-bert-nodrop"), dropout=0.0))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Long-tailed train CSV (40/12/4) and balanced test CSV (10 each)."""
    root = tmp_path_factory.mktemp("data")
    return {
        "train": write_texts_csv(root / "train.csv", {"sport": 40, "tech": 12, "money": 4}, seed=1),
        "test": write_texts_csv(root / "test.csv", {"sport": 10, "tech": 10, "money": 10}, seed=2),
    }


@pytest.fixture(scope="session")
def source_csv(tmp_path_factory) -> Path:
    """A balanced three-class CSV to make long-tailed variants from."""
    return write_texts_csv(tmp_path_factory.mktemp("source") / "source.csv", {"sport": 14, "tech": 14, "money": 14},
                           seed=3)  # fmt: skip


@pytest.fixture
def no_training(monkeypatch):
    """The compare runner's ``train_run`` fails the test if it is called."""
    from tailtune.experiments import runner

    def fail(*args, **kwargs):
        raise AssertionError("train_run must not be called")

    monkeypatch.setattr(runner, "train_run", fail)


@pytest.fixture(scope="session")
def compared(tiny_model, source_csv, tmp_path_factory) -> dict:
    """One complete compare: 2 ratios x 2 strategies x 2 seeds, run once for the session (a test that changes the
    runs copies them first)."""
    from compare_config import config_dict, write_config

    from tailtune.experiments.runner import run_compare

    root = tmp_path_factory.mktemp("compare")
    config = write_config(root / "exp.yaml", config_dict(tiny_model, source_csv, root / "out"))
    result = run_compare(config, show_progress=False)
    return {"config": config, "output": root / "out", "result": result}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """Made-up runs laid out as ``tailtune compare`` does: 2 ratios x 2 strategies x ``run_factory.SEEDS``, and
    one run still in progress. The report tests (tests/report/conftest.py) override it with runs whose labels and
    texts need escaping."""
    from run_factory import SEEDS, make_experiment, write_run

    root = tmp_path_factory.mktemp("experiment")
    make_experiment(root, ratios=(10, 50), strategies=("vanilla", "two-stage"), seeds=SEEDS)
    # A run still in progress: it has a config.json but no metrics.json yet.
    write_run(root / "exp-50" / "drw" / "seed-0", strategy="drw", seed=0, variant="exp-50", ratio=50,
              complete=False)  # fmt: skip
    return root
