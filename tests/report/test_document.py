"""The report's document (:mod:`tailtune.report.document`): a self-contained page, every data string escaped, and a
real browser rendering."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from .conftest import PNG_MAGIC


def test_html_is_self_contained(page):
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<link" not in page.lower() and "@import" not in page and "url(" not in page
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) >= 6
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_data_strings_are_escaped(page, report):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "R&amp;D" in page and "R&D" not in page
    assert "about &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends tail words" in page
    markdown = report[1].read_text(encoding="utf-8")
    assert "<script" not in markdown
    assert "R&amp;D" in markdown and "R&D" not in markdown


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    return found


def test_report_renders_in_a_browser(report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
        report[0].resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=90)
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    assert pixels.std() > 0.05
    # Text, tables and figures give many distinct colours; a blank or error page gives a handful.
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
