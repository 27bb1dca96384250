"""The package as users install it: a wheel and an sdist build, and the wheel works in a fresh virtualenv."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_builds_installs_and_runs(tmp_path):
    pytest.importorskip("build")
    # --no-isolation builds with the setuptools already installed, so no network is needed.
    command = [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", tmp_path / "dist"]
    subprocess.run([*command, ROOT], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("tailtune-*.whl")
    assert list((tmp_path / "dist").glob("tailtune-*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tailtune/cli/__main__.py" in names and "tailtune/report/plots.py" in names
    assert not [n for n in names if n.startswith("tests/")]

    # A fresh virtualenv that borrows the heavy dependencies (torch, transformers) from this interpreter.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel], check=True,
                   capture_output=True)  # fmt: skip
    where = subprocess.run([python, "-c", "import tailtune; print(tailtune.__file__)"], check=True, capture_output=True,
                           text=True, cwd=tmp_path).stdout  # fmt: skip
    assert where.startswith(str(venv)), where  # the wheel's copy, not the source tree
    version = subprocess.run([venv / "bin" / "tailtune", "--version"], check=True, capture_output=True, text=True)
    assert version.stdout.startswith("tailtune ")
    listing = subprocess.run([venv / "bin" / "tailtune", "strategies"], check=True, capture_output=True, text=True)
    assert "two-stage" in listing.stdout
