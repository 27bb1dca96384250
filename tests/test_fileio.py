"""The one rule for output folders tailtune replaces whole: only an earlier output of the same kind is replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailtune.errors import TailTuneError
from tailtune.fileio import FolderKind, atomic_dir, check_output_folder

# A made-up kind whose marker is a file called "ours".
KIND = FolderKind("a test output", "output", "choose another folder", lambda path: (path / "ours").is_file())


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_missing_empty_and_earlier_outputs_are_accepted(tmp_path):
    assert check_output_folder(tmp_path / "new", KIND) == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", KIND)
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "ours").write_text("1")
    check_output_folder(tmp_path / "earlier", KIND)


def test_a_folder_of_the_users_is_refused_and_left_alone(tmp_path):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(TailTuneError) as info:
        check_output_folder(mine, KIND)
    assert str(info.value) == (f"{mine}: holds files that are not part of a test output ('notes.txt', 'sub'); the "
                               "output replaces the whole folder, so write it to a new or empty one")  # fmt: skip
    with pytest.raises(TailTuneError, match="holds files that are not part of a test output"), atomic_dir(mine, KIND):
        pytest.fail("atomic_dir must refuse before its body runs")
    assert sorted(_files_names(mine)) == ["notes.txt", "sub"]
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left


def _files_names(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()]


def test_a_file_is_refused(tmp_path):
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    with pytest.raises(TailTuneError, match=r"taken.txt: exists and is not a folder; choose another folder$"):
        check_output_folder(taken, KIND)
    assert taken.read_text() == "keep me"


def test_the_current_folder_and_its_parents_are_refused(tmp_path, monkeypatch):
    """Even when empty, or an earlier output: the process works inside it, so it cannot be moved aside."""
    (tmp_path / "ours").write_text("1")
    monkeypatch.chdir(tmp_path)
    for target in (".", str(tmp_path), str(tmp_path.parent), ".."):
        with pytest.raises(TailTuneError, match=r"is the current folder or holds it; name a new folder for the output"):
            check_output_folder(target, KIND)
    assert _files_names(tmp_path) == ["ours"]


def test_an_input_inside_the_folder_is_refused(tmp_path):
    """Replacing an earlier output would delete what the new one is made from."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "ours").write_text("1")
    (out / "data.csv").write_text("text,label\n")
    inputs = {"--input": str(out / "data.csv"), "--other": "hub/name", "--none": None}
    with pytest.raises(TailTuneError) as info:
        check_output_folder(out, KIND, inputs=inputs)
    assert str(info.value) == (f"--input {out / 'data.csv'} is inside {out}, which the output replaces whole; "
                               "choose another folder")  # fmt: skip
    check_output_folder(out, KIND, inputs={"--input": str(tmp_path / "elsewhere.csv"), "--model": str(tmp_path)})


def test_atomic_dir_replaces_an_earlier_output_whole(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, KIND) as tmp:
        (tmp / "ours").write_text("1")
        (tmp / "old-only").write_text("x")
    with atomic_dir(out, KIND) as tmp:
        (tmp / "ours").write_text("2")
    assert _files(out) == {"ours": b"2"}
    assert _files_names(tmp_path) == ["out"]


def test_atomic_dir_keeps_the_earlier_output_when_the_body_fails(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, KIND) as tmp:
        (tmp / "ours").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(out, KIND) as tmp:
        (tmp / "ours").write_text("2")
        raise RuntimeError("disk full")
    assert _files(out) == {"ours": b"1"}
    assert _files_names(tmp_path) == ["out"]


def test_parquet_column_of_integers_past_64_bits_is_written_as_text(tmp_path):
    """An id too large for Parquet's integers (read from JSON lines) goes out as its digits, not a traceback."""
    import pandas as pd

    from tailtune.fileio import write_table

    write_table(pd.DataFrame({"id": [12345678901234567890, 7]}, dtype=object), tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet")["id"].tolist() == ["12345678901234567890", "7"]
