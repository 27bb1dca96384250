"""``tailtune make-imbalanced``: the files of a split, a split made again into its folder, and its flags in errors."""

from __future__ import annotations

import json

import pandas as pd
from conftest import make_texts, run_cli


def test_make_imbalanced(tmp_path, capsys):
    """make-imbalanced writes a long-tailed train file, a balanced test file and counts.json."""
    texts, labels = make_texts({"sport": 20, "tech": 20, "money": 20}, seed=4)
    source = tmp_path / "all.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(source, index=False)
    out = tmp_path / "lt"
    code, stdout, err = run_cli(
        capsys, "make-imbalanced", "--input", source, "--output", out, "--ratio", "4", "--max-per-class", "8",
        "--test-per-class", "3", "--order", "sport", "tech", "money",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "test.csv", "train.csv"]
    counts = json.loads((out / "counts.json").read_text())
    assert counts["train"] == {"sport": 8, "tech": 4, "money": 2}
    assert counts["test"] == {"sport": 3, "tech": 3, "money": 3}
    assert counts["order"] == ["sport", "tech", "money"] and counts["ratio"] == 4.0
    train, test = pd.read_csv(out / "train.csv"), pd.read_csv(out / "test.csv")
    assert train["label"].value_counts().to_dict() == {"sport": 8, "tech": 4, "money": 2}
    assert test["label"].value_counts().to_dict() == {"sport": 3, "tech": 3, "money": 3}
    assert not set(train["text"]) & set(test["text"])
    assert set(train["text"]) | set(test["text"]) <= set(texts)
    assert [line.split() for line in stdout.splitlines()[:3]] == [["sport", "8"], ["tech", "4"], ["money", "2"]]


def test_make_imbalanced_replaces_an_earlier_split_whole(tmp_path, capsys):
    """A split made again into the same folder leaves no file of the earlier one: no stale test file whose rows
    the new training file holds. A folder holding anything else is refused and left as it was."""
    texts, labels = make_texts({"sport": 20, "tech": 20, "money": 20}, seed=4)
    source = tmp_path / "all.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(source, index=False)
    out = tmp_path / "lt"
    code, _, err = run_cli(capsys, "make-imbalanced", "--input", source, "--output", out, "--ratio", "2",
                        "--test-per-class", "3")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "test.csv", "train.csv"]
    code, stdout, err = run_cli(capsys, "make-imbalanced", "--input", source, "--output", out, "--ratio", "2")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "train.csv"]
    assert "test.csv" not in stdout
    train = set(pd.read_csv(out / "train.csv")["text"])
    for test_file in out.glob("test.*"):
        assert not train & set(pd.read_csv(test_file)["text"])
    code, _, err = run_cli(capsys, "make-imbalanced", "--input", source, "--output", out, "--ratio", "2",
                        "--format", ".jsonl")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["counts.json", "train.jsonl"]

    code, _, err = run_cli(capsys, "make-imbalanced", "--input", source, "--output", tmp_path, "--ratio", "2")
    assert code == 2
    assert err.strip() == (f"tailtune: error: --input {source} is inside {tmp_path}, which the split replaces whole; "
                           "choose another folder")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.csv", "lt"]


def test_command_line_names_the_flag(tmp_path, capsys):
    from tailtune.cli import main

    source = tmp_path / "all.csv"
    source.write_text("text,label\n" + "".join(f"t{i},{'pos' if i % 2 else 'neg'}\n" for i in range(40)))
    argv = ["make-imbalanced", "--input", str(source), "--output", str(tmp_path / "out"), "--minority", "pos"]
    assert main([*argv, "--rate", "1.5"]) == 2
    assert capsys.readouterr().err.strip() == "tailtune: error: --rate must be in (0, 1], got 1.5"
    assert main([*argv, "--rate", "0.5", "--test-per-class", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tailtune: error: --test-per-class 20 leaves nothing to train on")
