from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tailtune.data.imbalance import (
    PROFILES,
    balanced_holdout,
    class_counts,
    dedupe_indices,
    downsample_binary,
    holdout_then_long_tail,
    long_tail_targets,
    make_imbalanced,
    make_long_tailed,
)
from tailtune.data.readers import read_dataset, save_dataset
from tailtune.data.split_folder import write_imbalanced
from tailtune.data.types import TextDataset
from tailtune.errors import TailTuneError

FIVE = {c: 100 for c in "abcde"}


def _labels(counts: dict[str, int]) -> list[str]:
    # Interleave classes so that indices of one class are not contiguous.
    out: list[str] = []
    pools = {k: v for k, v in counts.items()}
    while any(pools.values()):
        for k in counts:
            if pools[k]:
                out.append(k)
                pools[k] -= 1
    return out


def _kept_counts(labels, idx) -> dict[str, int]:
    return class_counts([labels[i] for i in idx])


def test_class_counts_order():
    assert list(class_counts(["b", "a", "c", "c", "a"]).items()) == [("a", 2), ("c", 2), ("b", 1)]


def test_dedupe_indices_first_occurrence_and_whitespace():
    texts = ["x", "y", "x", "a  b", "a\nb", " y ", "z"]
    assert dedupe_indices(texts).tolist() == [0, 1, 3, 6]
    assert dedupe_indices([]).tolist() == []


# -------------------------------------------------------------------------------------------- long tail


def test_exp_targets_by_hand():
    targets = long_tail_targets(FIVE, ratio=10, order=list("abcde"))
    # 100 * 10 ** (-i / 4) = 100, 56.2, 31.6, 17.8, 10
    assert list(targets.items()) == [("a", 100), ("b", 56), ("c", 31), ("d", 17), ("e", 10)]


def test_step_targets_by_hand():
    targets = long_tail_targets(FIVE, ratio=10, profile="step", order=list("edcba"))
    assert list(targets.items()) == [("e", 100), ("d", 100), ("c", 100), ("b", 10), ("a", 10)]
    four = long_tail_targets({c: 50 for c in "abcd"}, ratio=3, profile="step", order=list("abcd"))
    assert list(four.values()) == [50, 50, 16, 16]


def test_targets_use_smallest_class_and_max_per_class():
    counts = {"a": 500, "b": 300, "c": 80}
    assert list(long_tail_targets(counts, ratio=4, order=["a", "b", "c"]).values()) == [80, 40, 20]
    assert list(long_tail_targets(counts, ratio=4, order=["a", "b", "c"], max_per_class=60).values()) == [
        60,
        30,
        15,
    ]


def test_floor_is_exact_for_round_products():
    # Products that are whole numbers on paper (100 * 0.29) must not lose one to floating-point rounding.
    targets = long_tail_targets({"a": 29, "b": 29, "c": 29}, ratio=100 / 29, order=["a", "b", "c"], max_per_class=29)
    assert targets["c"] == 8  # floor(29 / (100/29)) = floor(8.41)
    assert list(long_tail_targets({"a": 100, "b": 100}, ratio=1 / 0.29, order=["a", "b"]).values()) == [
        100,
        29,
    ]


def test_targets_at_least_one():
    targets = long_tail_targets({"a": 10, "b": 10, "c": 10}, ratio=1000, order=["a", "b", "c"])
    assert list(targets.values()) == [10, 1, 1]


def test_ratio_one_is_balanced():
    assert set(long_tail_targets(FIVE, ratio=1).values()) == {100}


def test_random_order_is_seeded():
    a = long_tail_targets(FIVE, ratio=10, seed=3)
    assert a == long_tail_targets(FIVE, ratio=10, seed=3)
    assert list(a) == list(long_tail_targets(FIVE, ratio=10, seed=3))
    orders = {tuple(long_tail_targets(FIVE, ratio=10, seed=s)) for s in range(10)}
    assert len(orders) > 1
    assert sorted(a.values(), reverse=True) == [100, 56, 31, 17, 10]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"ratio": 0.5}, r"^ratio must be >= 1"),
        ({"ratio": float("nan")}, r"^ratio must be >= 1"),
        ({"ratio": 10, "profile": "linear"}, r"^profile 'linear' is unknown; choose one of: exp, step"),
        (
            {"ratio": 10, "order": ["a", "b"]},
            r"^order must list every label exactly once \(missing 'c', 'd', 'e'\)",
        ),
        ({"ratio": 10, "order": list("abcdez")}, r"unknown 'z'"),
        ({"ratio": 10, "order": list("abcdea")}, r"repeated 'a'"),
        ({"ratio": 10, "max_per_class": 0}, r"^max_per_class must be at least 1"),
        (
            {"ratio": 10, "max_per_class": 101, "order": list("abcde")},
            r"class 'a' needs 101 examples for ratio 10 \(profile exp\) but has only 100; 100 or less always "
            r"works as max_per_class$",
        ),
    ],
)
def test_target_errors(kwargs, pattern):
    with pytest.raises(TailTuneError, match=pattern) as info:
        long_tail_targets(FIVE, **kwargs)
    # A message that starts with a setting names it, so that the command line can speak of its flag instead.
    words = str(info.value).split()
    named = [w for w in (words[0], words[-1]) if w in ("ratio", "profile", "order", "max_per_class")]
    assert info.value.setting == (named[0] if named else None)


def test_single_class_rejected():
    with pytest.raises(TailTuneError, match="at least two classes"):
        long_tail_targets({"a": 5}, ratio=2)


def test_profiles_registry():
    assert set(PROFILES) == {"exp", "step"}
    assert PROFILES["exp"](100, 10, 5) == [100, 56, 31, 17, 10]


def test_make_long_tailed_exact_and_seeded():
    labels = _labels({"a": 150, "b": 120, "c": 100, "d": 130, "e": 110})
    idx = make_long_tailed(labels, ratio=10, order=list("abcde"), seed=1)
    assert np.all(np.diff(idx) > 0)
    assert _kept_counts(labels, idx) == {"a": 100, "b": 56, "c": 31, "d": 17, "e": 10}
    assert np.array_equal(idx, make_long_tailed(labels, ratio=10, order=list("abcde"), seed=1))
    assert not np.array_equal(idx, make_long_tailed(labels, ratio=10, order=list("abcde"), seed=2))


def test_harsher_ratio_keeps_a_subset():
    labels = _labels(FIVE)
    mild = set(make_long_tailed(labels, ratio=5, order=list("abcde"), seed=0).tolist())
    harsh = set(make_long_tailed(labels, ratio=50, order=list("abcde"), seed=0).tolist())
    assert harsh < mild


# ----------------------------------------------------------------------------------------------- binary


def test_downsample_binary_floor_of_major_times_rate():
    labels = _labels({"pos": 80, "neg": 70})
    idx = downsample_binary(labels, minority="pos", rate=0.29, seed=0)
    # n_major is the largest OTHER class (70), not the minority's own size.
    assert _kept_counts(labels, idx) == {"neg": 70, "pos": math.floor(70 * 0.29)}
    assert _kept_counts(labels, idx)["pos"] == 20
    assert np.all(np.diff(idx) > 0)
    labels = _labels({"pos": 100, "neg": 100})
    assert _kept_counts(labels, downsample_binary(labels, minority="pos", rate=0.29, seed=0))["pos"] == 29
    assert _kept_counts(labels, downsample_binary(labels, minority="pos", rate=1.0, seed=0))["pos"] == 100


def test_downsample_binary_seeded():
    labels = _labels({"pos": 100, "neg": 100})
    a = downsample_binary(labels, minority="neg", rate=0.1, seed=4)
    assert np.array_equal(a, downsample_binary(labels, minority="neg", rate=0.1, seed=4))
    assert not np.array_equal(a, downsample_binary(labels, minority="neg", rate=0.1, seed=5))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"minority": "pos", "rate": 0}, r"^rate must be in \(0, 1\]"),
        ({"minority": "pos", "rate": 1.5}, r"^rate must be in \(0, 1\]"),
        (
            {"minority": "maybe", "rate": 0.5},
            r"^minority 'maybe' is not a label; the labels are 'neg', 'pos'",
        ),
        ({"minority": "pos", "rate": 0.001}, r"^rate 0.001 of 100 keeps no 'pos' example; use a larger rate"),
    ],
)
def test_downsample_binary_errors(kwargs, pattern):
    with pytest.raises(TailTuneError, match=pattern) as info:
        downsample_binary(_labels({"neg": 100, "pos": 100}), seed=0, **kwargs)
    assert info.value.setting == str(info.value).split()[0]


def test_downsample_binary_minority_too_small():
    with pytest.raises(TailTuneError, match=r"needs 50 'pos' examples .* only 10 exist"):
        downsample_binary(_labels({"neg": 100, "pos": 10}), minority="pos", rate=0.5, seed=0)


# ---------------------------------------------------------------------------------------------- holdout


def test_balanced_holdout():
    labels = _labels({"a": 30, "b": 20, "c": 12})
    hold, rest = balanced_holdout(labels, per_class=10, seed=0)
    assert _kept_counts(labels, hold) == {"a": 10, "b": 10, "c": 10}
    assert _kept_counts(labels, rest) == {"a": 20, "b": 10, "c": 2}
    assert not set(hold.tolist()) & set(rest.tolist())
    assert sorted(hold.tolist() + rest.tolist()) == list(range(len(labels)))
    again, _ = balanced_holdout(labels, per_class=10, seed=0)
    other, _ = balanced_holdout(labels, per_class=10, seed=1)
    assert np.array_equal(hold, again) and not np.array_equal(hold, other)


def test_balanced_holdout_too_few():
    with pytest.raises(
        TailTuneError, match=r"^test_per_class 12 leaves nothing to train on \('c' has 12\); use at most 11"
    ) as info:
        balanced_holdout(_labels({"a": 30, "c": 12}), per_class=12, seed=0)
    assert info.value.setting == "test_per_class"
    with pytest.raises(TailTuneError, match="at least 1"):
        balanced_holdout(["a"], per_class=0, seed=0)


# ------------------------------------------------------------------------------ holdout_then_long_tail


def _dataset_with_duplicates() -> TextDataset:
    labels = _labels({c: 60 for c in "abcd"})
    texts = [f"{lab} text {i}" for i, lab in enumerate(labels)]
    # Repeat some texts (one with different whitespace) so that de-duplication has work to do.
    texts += texts[:20] + [texts[20].replace(" ", "  ")]
    labels += labels[:21]
    return TextDataset(texts, labels, "mem")


def test_holdout_then_long_tail_long_tail_with_test():
    ds = _dataset_with_duplicates()
    split = holdout_then_long_tail(ds, ratio=4, order=list("abcd"), test_per_class=10, seed=7)
    assert split.counts["duplicates_removed"] == 21
    assert split.counts["test"] == {"a": 10, "b": 10, "c": 10, "d": 10}
    # 50 per class remain after the holdout: 50 * 4 ** (-i / 3) = 50, 31.5, 19.8, 12.5
    assert split.counts["train"] == {"a": 50, "b": 31, "c": 19, "d": 12}
    assert class_counts(split.train.labels) == split.counts["train"]
    assert split.counts["order"] == list("abcd")
    assert (split.counts["ratio"], split.counts["profile"], split.counts["seed"]) == (4, "exp", 7)
    assert split.counts["minority"] is None and split.counts["rate"] is None
    assert not set(split.train.texts) & set(split.test.texts)
    assert len(set(split.train.texts)) == len(split.train)
    for text, label in zip(split.train.texts + split.test.texts, split.train.labels + split.test.labels, strict=True):
        assert text.startswith(label)


def test_holdout_then_long_tail_random_order_recorded_and_seeded():
    ds = _dataset_with_duplicates()
    a = holdout_then_long_tail(ds, ratio=4, seed=1)
    b = holdout_then_long_tail(ds, ratio=4, seed=1)
    assert a.train.texts == b.train.texts and a.test is None
    assert [a.counts["train"][c] for c in a.counts["order"]] == [60, 37, 23, 15]
    others = [holdout_then_long_tail(ds, ratio=4, seed=s).train.texts for s in range(2, 5)]
    assert any(t != a.train.texts for t in others)


def test_holdout_then_long_tail_binary():
    labels = _labels({"pos": 50, "neg": 50})
    ds = TextDataset([f"t{i}" for i in range(100)], labels, "mem")
    split = holdout_then_long_tail(ds, minority="pos", rate=0.2, test_per_class=5, seed=0)
    assert split.counts["test"] == {"neg": 5, "pos": 5}
    assert split.counts["train"] == {"neg": 45, "pos": 9}
    assert split.counts["order"] == ["neg", "pos"]
    assert split.counts["profile"] is None
    assert not set(split.train.texts) & set(split.test.texts)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({}, r"give either ratio"),
        ({"ratio": 2, "minority": "a", "rate": 0.5}, r"not both"),
        ({"minority": "a"}, r"both minority and rate"),
        ({"ratio": 2, "eval_from": "test"}, r"eval_from must be one of holdout, rest"),
    ],
)
def test_holdout_then_long_tail_option_errors(kwargs, pattern):
    with pytest.raises(TailTuneError, match=pattern):
        holdout_then_long_tail(_dataset_with_duplicates(), **kwargs)


def test_holdout_then_long_tail_needs_labels():
    with pytest.raises(TailTuneError, match=r"^u\.csv: has no labels"):
        holdout_then_long_tail(TextDataset(["a"], None, "u.csv"), ratio=2)


@pytest.mark.parametrize("suffix", [".jsonl", "csv"])
def test_write_imbalanced(tmp_path, suffix):
    split = holdout_then_long_tail(_dataset_with_duplicates(), ratio=4, order=list("abcd"), test_per_class=10, seed=0)
    paths = write_imbalanced(split, tmp_path / "out", fmt_suffix=suffix, text_column="sentence", label_column="y")
    ext = suffix if suffix.startswith(".") else f".{suffix}"
    assert paths == {
        "train": tmp_path / "out" / f"train{ext}",
        "test": tmp_path / "out" / f"test{ext}",
        "counts": tmp_path / "out" / "counts.json",
    }
    train = read_dataset(paths["train"], text_column="sentence", label_column="y")
    assert train.texts == split.train.texts and train.labels == split.train.labels
    assert read_dataset(paths["test"], text_column="sentence", label_column="y").labels == split.test.labels
    counts = json.loads(paths["counts"].read_text())
    assert counts["train"] == {"a": 50, "b": 31, "c": 19, "d": 12}
    assert counts["order"] == list("abcd")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())


def test_write_imbalanced_without_test_and_bad_suffix(tmp_path):
    split = holdout_then_long_tail(_dataset_with_duplicates(), ratio=2, seed=0)
    paths = write_imbalanced(split, tmp_path, fmt_suffix=".parquet")
    assert set(paths) == {"train", "counts"}
    assert json.loads(paths["counts"].read_text())["test"] is None
    with pytest.raises(TailTuneError, match=r"unknown output format '\.xlsx'"):
        write_imbalanced(split, tmp_path, fmt_suffix=".xlsx")


def test_make_imbalanced_is_the_same_recipe():
    assert make_imbalanced is holdout_then_long_tail


def test_validation_split_from_the_holdout():
    """eval_from='holdout': test and validation examples are held out together, then split in two."""
    ds = _dataset_with_duplicates()
    split = holdout_then_long_tail(ds, ratio=4, order=list("abcd"), test_per_class=6, eval_per_class=4, seed=2)
    unique = ds.subset(dedupe_indices(ds.texts))
    hold, _ = balanced_holdout(unique.labels, per_class=10, seed=2)
    assert sorted(split.test.texts + split.eval.texts) == sorted(unique.subset(hold).texts)
    assert class_counts(split.test.labels) == {c: 6 for c in "abcd"} == split.counts["test"]
    assert class_counts(split.eval.labels) == {c: 4 for c in "abcd"} == split.counts["eval"]
    assert (split.counts["test_per_class"], split.counts["eval_per_class"]) == (6, 4)
    assert not set(split.train.texts) & (set(split.test.texts) | set(split.eval.texts))
    assert "tail_seed" not in split.counts


def test_validation_split_after_the_test_set_and_own_tail_seed():
    """eval_from='rest': the test set first, then validation from what is left, then the long tail."""
    ds = _dataset_with_duplicates()
    split = holdout_then_long_tail(
        ds, ratio=4, test_per_class=6, eval_per_class=4, eval_from="rest", seed=2, tail_seed=9
    )
    unique = ds.subset(dedupe_indices(ds.texts))
    test_idx, rest_idx = balanced_holdout(unique.labels, per_class=6, seed=2)
    rest = unique.subset(rest_idx)
    eval_idx, pool_idx = balanced_holdout(rest.labels, per_class=4, seed=3)
    pool = rest.subset(pool_idx)
    assert split.test.texts == unique.subset(test_idx).texts
    assert split.eval.texts == rest.subset(eval_idx).texts
    assert split.train.texts == pool.subset(make_long_tailed(pool.labels, ratio=4, seed=9)).texts
    assert (split.counts["seed"], split.counts["tail_seed"]) == (2, 9)


def test_holdout_errors_name_the_setting():
    ds = _dataset_with_duplicates()
    with pytest.raises(TailTuneError, match=r"^eval_per_class 50 leaves nothing to train on") as info:
        holdout_then_long_tail(ds, ratio=2, test_per_class=10, eval_per_class=50, eval_from="rest")
    assert info.value.setting == "eval_per_class"
    with pytest.raises(TailTuneError, match=r"^test_per_class \+ eval_per_class 60 leaves nothing") as info:
        holdout_then_long_tail(ds, ratio=2, test_per_class=10, eval_per_class=50)
    assert info.value.setting is None


def test_write_imbalanced_with_validation(tmp_path):
    split = holdout_then_long_tail(_dataset_with_duplicates(), ratio=2, eval_per_class=5, seed=0)
    paths = write_imbalanced(split, tmp_path, fmt_suffix=".csv")
    assert set(paths) == {"train", "eval", "counts"}
    assert read_dataset(paths["eval"]).texts == split.eval.texts
    assert json.loads(paths["counts"].read_text())["eval"] == {c: 5 for c in "abcd"}


def test_write_imbalanced_replaces_an_earlier_split_whole(tmp_path):
    """Written again into its folder, a split leaves no file of the earlier one (a stale test file would hold
    rows of the new training file); another format replaces the old files too."""
    data = _dataset_with_duplicates()
    out = tmp_path / "out"
    write_imbalanced(holdout_then_long_tail(data, ratio=2, test_per_class=10, eval_per_class=5, seed=0), out,
                     fmt_suffix=".csv")  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "eval.csv", "test.csv", "train.csv"]
    split = holdout_then_long_tail(data, ratio=2, seed=0)
    paths = write_imbalanced(split, out, fmt_suffix=".jsonl")
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "train.jsonl"]
    assert paths == {"train": out / "train.jsonl", "counts": out / "counts.json"}
    assert read_dataset(paths["train"]).texts == split.train.texts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left beside it


def test_write_imbalanced_keeps_the_earlier_split_when_interrupted(tmp_path, monkeypatch):
    """A write that fails part-way leaves the earlier split exactly as it was, and nothing beside it."""
    import tailtune.data.split_folder as imbalance

    data = _dataset_with_duplicates()
    out = tmp_path / "out"
    write_imbalanced(holdout_then_long_tail(data, ratio=2, test_per_class=10, seed=0), out, fmt_suffix=".csv")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def failing_save(dataset, path, **columns):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return save_dataset(dataset, path, **columns)

    monkeypatch.setattr(imbalance, "save_dataset", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_imbalanced(holdout_then_long_tail(data, ratio=3, test_per_class=5, seed=1), out, fmt_suffix=".csv")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_imbalanced_refuses_a_folder_holding_other_files(tmp_path):
    """The split replaces its whole folder, so a folder holding anything else (the source data, say) is refused
    and left untouched; so is a file, and the current folder."""
    split = holdout_then_long_tail(_dataset_with_duplicates(), ratio=2, seed=0)
    (tmp_path / "all.csv").write_text("text,label\n", encoding="utf-8")
    (tmp_path / "train.csv").write_text("mine", encoding="utf-8")
    with pytest.raises(TailTuneError, match=r"not part of an imbalanced split \('all.csv', 'train.csv'\)"):
        write_imbalanced(split, tmp_path, fmt_suffix=".csv")
    assert (tmp_path / "train.csv").read_text() == "mine"
    with pytest.raises(TailTuneError, match="exists and is not a folder"):
        write_imbalanced(split, tmp_path / "all.csv", fmt_suffix=".csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    write_imbalanced(split, empty, fmt_suffix=".csv")
    assert sorted(p.name for p in empty.iterdir()) == ["counts.json", "train.csv"]


def test_write_imbalanced_refuses_the_current_folder(tmp_path, monkeypatch):
    split = holdout_then_long_tail(_dataset_with_duplicates(), ratio=2, seed=0)
    monkeypatch.chdir(tmp_path)
    for target in (".", str(tmp_path), str(tmp_path.parent)):
        with pytest.raises(TailTuneError, match="is the current folder or holds it"):
            write_imbalanced(split, target, fmt_suffix=".csv")
    assert list(tmp_path.iterdir()) == []


def test_data_files_without_counts_json_are_not_a_split(tmp_path):
    """Only a folder holding make-imbalanced's counts.json is an earlier split: the user's own train and test files
    are refused and left as they were, and so is a file a recorded split does not have (a test file beside a split
    made without one)."""
    split = holdout_then_long_tail(_dataset_with_duplicates(), ratio=2, seed=0)
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("train.csv", "test.csv"):
        (mine / name).write_text(f"my {name}", encoding="utf-8")
    with pytest.raises(TailTuneError) as info:
        write_imbalanced(split, mine, fmt_suffix=".csv")
    assert str(info.value) == (f"{mine}: holds files that are not part of an imbalanced split ('test.csv', "
                               "'train.csv'); the split replaces the whole folder, so write it to a new or empty "
                               "one")  # fmt: skip
    assert {p.name: p.read_text() for p in mine.iterdir()} == {"train.csv": "my train.csv", "test.csv": "my test.csv"}

    (mine / "counts.json").write_text('{"note": "mine"}', encoding="utf-8")  # not make-imbalanced's
    with pytest.raises(TailTuneError, match="not part of an imbalanced split"):
        write_imbalanced(split, mine, fmt_suffix=".csv")
    out = tmp_path / "out"
    write_imbalanced(split, out, fmt_suffix=".csv")  # no test set
    (out / "test.csv").write_text("my test.csv", encoding="utf-8")
    with pytest.raises(TailTuneError, match="not part of an imbalanced split"):
        write_imbalanced(split, out, fmt_suffix=".csv")
    assert (out / "test.csv").read_text() == "my test.csv"


def test_the_source_data_inside_the_output_is_refused(tmp_path, capsys):
    """Replacing the folder would delete the data the split is made from: refused before anything is read, from the
    library (the split's recorded source) and from the command line (--input), even over an earlier split."""
    from tailtune.cli import main

    data = _dataset_with_duplicates()
    out = tmp_path / "out"
    write_imbalanced(holdout_then_long_tail(data, ratio=2, seed=0), out, fmt_suffix=".csv")
    source = out / "train.csv"  # the earlier split's training file, now the source
    save_dataset(data, source)
    split = holdout_then_long_tail(read_dataset(source), ratio=3, seed=0)
    with pytest.raises(TailTuneError) as info:
        write_imbalanced(split, out, fmt_suffix=".csv")
    assert str(info.value) == (f"the source data {source} is inside {out}, which the split replaces whole; choose "
                               "another folder")  # fmt: skip
    before = source.read_bytes()
    assert main(["make-imbalanced", "--input", str(source), "--output", str(out), "--ratio", "3"]) == 2
    assert capsys.readouterr().err == (f"tailtune: error: --input {source} is inside {out}, which the split replaces "
                                       "whole; choose another folder\n")  # fmt: skip
    assert source.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["counts.json", "train.csv"]


def test_a_ratio_the_counts_cannot_reach_is_warned_and_recorded(caplog):
    """60 per class cannot give ratio 1000 (every class keeps one): the warning names both ratios, and counts.json
    records the one reached beside the one asked for. Whole counts close to the request are not warned about."""
    ds = TextDataset([f"t{i}" for i in range(180)], _labels({c: 60 for c in "abc"}), "all.csv")
    with caplog.at_level("WARNING", logger="tailtune.data.imbalance"):
        split = holdout_then_long_tail(ds, ratio=1000, seed=0)
    assert sorted(split.counts["train"].values()) == [1, 1, 60]
    assert (split.counts["ratio"], split.counts["achieved_ratio"]) == (1000, 60)
    assert [r.getMessage() for r in caplog.records] == [
        "all.csv: ratio 1000 requested, but whole counts give 60 (60 examples at the head, 1 at the tail); a larger "
        "max_per_class (more data per class) or a lower ratio comes closer"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="tailtune.data.imbalance"):
        split = holdout_then_long_tail(ds, ratio=3, max_per_class=50, seed=0)  # 50 / 16 = 3.125
    assert split.counts["achieved_ratio"] == 3.125 and not caplog.records
    binary = holdout_then_long_tail(ds, minority="a", rate=0.1, seed=0)
    assert binary.counts["ratio"] is None and binary.counts["achieved_ratio"] == 10


def test_texts_with_conflicting_labels_are_counted(caplog):
    """A text found with two labels keeps the first one; how many did so is warned about and recorded."""
    texts = ["same", "same ", "other", "other", "x", "y", "z", "w"]
    labels = ["a", "b", "a", "a", "a", "b", "a", "b"]
    with caplog.at_level("WARNING", logger="tailtune.data.imbalance"):
        split = holdout_then_long_tail(TextDataset(texts, labels, "all.csv"), ratio=1, seed=0)
    assert (split.counts["duplicates_removed"], split.counts["conflicting_labels"]) == (2, 1)
    assert [r.getMessage() for r in caplog.records] == [
        "all.csv: 1 text(s) occur with more than one label; each keeps the label of its first occurrence"
    ]
