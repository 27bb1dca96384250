"""Faults of the environment (a full disk, a read-only folder, a refused permission): every command that writes
answers them with one line naming the path and what to do, exits non-zero, and leaves nothing half-written."""

from __future__ import annotations

import errno
import os
import pathlib
import sqlite3
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, write_file

from tailtune.errors import TailTuneError
from tailtune.fileio import ENVIRONMENT_FAULTS, environment_fault

FULL = os.strerror(errno.ENOSPC)


@pytest.fixture(scope="module")
def tfidf_run(tiny_data, tmp_path_factory) -> Path:
    """A complete TF-IDF run (its model to predict and evaluate with, its folder to report on)."""
    from tailtune.cli import main

    out = tmp_path_factory.mktemp("faults") / "run"
    assert main(["train", "--strategy", "tfidf", "--train", str(tiny_data["train"]), "--test",
                 str(tiny_data["test"]), "--output", str(out), "-q"]) == 0  # fmt: skip
    return out


def fill_disk(monkeypatch, folder: Path, fault: int = errno.ENOSPC) -> None:
    """Every file written under ``folder`` (the way tailtune writes its files) fails with ``fault``."""
    write_bytes = pathlib.Path.write_bytes

    def failing(self, data):
        if Path(self).resolve().is_relative_to(folder.resolve()):
            raise OSError(fault, os.strerror(fault))  # as write(2) raises it: no file name
        return write_bytes(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", failing)


def commands(tiny_data, source_csv, run: Path, out: Path) -> dict[str, list[object]]:
    """Each command that writes, writing under ``out``."""
    experiment = write_file(out.parent / "exp.yaml", yaml.safe_dump({
        "output": str(out / "cmp"), "seeds": [1], "strategies": ["tfidf"],
        "data": {"variants": [{"name": "tiny", "train": str(tiny_data["train"]), "test": str(tiny_data["test"])}]},
    }))  # fmt: skip
    return {
        "train": ["train", "--strategy", "tfidf", "--train", tiny_data["train"], "--output", out / "run"],
        "predict": ["predict", "--model", run / "model", "--input", tiny_data["test"], "--output", out / "p.csv"],
        "evaluate": ["evaluate", "--model", run / "model", "--data", tiny_data["test"], "--output", out / "e.csv"],
        "tune": ["tune", "--train", tiny_data["train"], "--strategies", "tfidf", "--trials", 1, "--output", out / "t"],
        "compare": ["compare", "--config", experiment],
        "report": ["report", run, "--output", out / "report.html"],
        "make-imbalanced": ["make-imbalanced", "--input", source_csv, "--output", out / "split", "--ratio", 2],
    }


COMMANDS = ("train", "predict", "evaluate", "tune", "compare", "report", "make-imbalanced")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_full_disk_is_one_line_naming_the_file(command, tiny_data, source_csv, tfidf_run, tmp_path, monkeypatch,
                                                 capsys):  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    argv = commands(tiny_data, source_csv, tfidf_run, out)[command]
    fill_disk(monkeypatch, out)
    code, _, err = run_cli(capsys, *argv, "-q")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"tailtune: error: {out}") and f"{FULL}; {ENVIRONMENT_FAULTS[errno.ENOSPC]}" in err
    assert ".tmp" not in err and ".partial" not in err  # named as the user will find it, not as it was staged
    # Nothing half-written: no file holds a byte (folders and the search's empty database may stay).
    assert not [p for p in out.rglob("*") if p.is_file() and p.stat().st_size and p.name != "study.db"]


def test_a_model_that_does_not_fit_leaves_the_old_run_whole(tiny_data, tmp_path, monkeypatch, capsys):
    """The disk fills while the model is saved (joblib, or safetensors' Rust error, which is no OSError): the line
    names the model folder, and the run written before is still there, complete."""
    import joblib

    from tailtune.runs.rundir import is_complete

    out = tmp_path / "run"
    argv = ["train", "--strategy", "tfidf", "--train", tiny_data["train"], "--test", tiny_data["test"], "--output", out]
    assert run_cli(capsys, *argv, "-q")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    for fault in (OSError(errno.ENOSPC, FULL), RuntimeError("Error while serializing: I/O error: No space left on "
                                                            "device (os error 28)")):  # fmt: skip

        def dump(*args, fault=fault, **kwargs):
            raise fault

        monkeypatch.setattr(joblib, "dump", dump)
        code, _, err = run_cli(capsys, *argv, "--overwrite", "-q")
        assert code == 2 and err == f"tailtune: error: {out / 'model'}: {FULL}; {ENVIRONMENT_FAULTS[errno.ENOSPC]}\n"
        assert is_complete(out) and {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("fault", [errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT])
def test_a_refused_write_is_one_line_with_what_to_do(fault, tfidf_run, tiny_data, tmp_path, monkeypatch, capsys):
    fill_disk(monkeypatch, tmp_path, fault)
    code, _, err = run_cli(capsys, "predict", "--model", tfidf_run / "model", "--input", tiny_data["test"], "--output",
                           tmp_path / "p.csv")  # fmt: skip
    assert code == 2
    assert err == f"tailtune: error: {tmp_path / 'p.csv'}: {os.strerror(fault)}; {ENVIRONMENT_FAULTS[fault]}\n"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into a read-only folder anyway")
@pytest.mark.parametrize("command", ["predict", "tune", "report", "make-imbalanced"])
def test_a_read_only_folder_is_one_line(command, tiny_data, source_csv, tfidf_run, tmp_path, capsys):
    """A folder without write permission (chmod 555): one line naming the path; nothing is written."""
    out = tmp_path / "out"
    out.mkdir()
    argv = commands(tiny_data, source_csv, tfidf_run, out)[command]
    out.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, *argv, "-q")
    finally:
        out.chmod(0o755)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"tailtune: error: {out}"), err
    assert "Permission denied" in err and not list(out.iterdir())


def test_an_error_raised_outside_the_writers_is_one_line_too(tiny_data, tmp_path, monkeypatch, capsys):
    """A folder the command makes itself (tune's OUT) on a read-only file system: the CLI names the path."""
    mkdir = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):
        if Path(self) == tmp_path / "t":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    code, _, err = run_cli(capsys, "tune", "--train", tiny_data["train"], "--strategies", "tfidf", "--trials", 1,
                           "--output", tmp_path / "t")  # fmt: skip
    assert code == 2 and err.startswith(f"tailtune: error: {tmp_path / 't'}: {os.strerror(errno.EROFS)}; ")


def test_what_counts_as_a_fault_of_the_environment(tmp_path):
    """An OSError's number, the "(os error N)" of a Rust library, SQLite's code for a full disk, through the chain of
    causes; anything else is no such fault (and keeps its traceback)."""
    assert (
        str(environment_fault(OSError(errno.ENOSPC, FULL, "a.csv")))
        == f"a.csv: {FULL}; " + ENVIRONMENT_FAULTS[errno.ENOSPC]
    )
    rust = Exception("I/O error: Read-only file system (os error 30)")
    assert str(environment_fault(rust, tmp_path)).startswith(f"{tmp_path}: {os.strerror(errno.EROFS)}")
    try:
        sqlite3.connect(":memory:").execute("select * from nowhere")
    except sqlite3.OperationalError as exc:
        assert environment_fault(exc) is None  # an SQL error, not the disk
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # SQLITE_FULL, as sqlite3 sets it
    wrapped = RuntimeError("(sqlite3.OperationalError) database or disk is full")
    wrapped.__cause__ = full
    assert str(environment_fault(wrapped, tmp_path)).startswith(f"{tmp_path}: {FULL}")
    assert environment_fault(OSError(errno.ENOENT, "No such file or directory")) is None
    assert environment_fault(TailTuneError("x (os error 28)")) is None
