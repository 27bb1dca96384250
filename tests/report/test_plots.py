"""The report's figures (:mod:`tailtune.report.plots`)."""

from __future__ import annotations

import html

from run_factory import make_experiment

from tailtune.report import build_report


def test_non_latin_labels_draw_without_missing_glyphs(tmp_path):
    """CJK and emoji labels never reach matplotlib as glyphs no installed font has; the tables keep them."""
    import warnings

    from tailtune.report.plots import _fonts, plain

    labels = ["新闻", "スポーツ", "🙂 happy", "world"]
    make_experiment(tmp_path, ratios=(10, 50), labels=labels, seeds=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        html_path, _ = build_report(tmp_path)
    page = html_path.read_text(encoding="utf-8")
    assert all(html.escape(label) in page for label in labels)
    covered = _fonts()[1]
    for label in labels:
        drawn = plain(label)
        assert all(ord(c) in covered or c.isspace() for c in drawn)
        if all(ord(c) in covered or c.isspace() for c in label):
            assert drawn == label
    if ord("新") not in covered:
        assert plain("新闻") == "<U+65B0><U+95FB>"


def test_class_names_on_an_axis_are_escaped_once():
    """A line break inside a label is drawn as '\\n'; a written backslash-n as '\\\\n' (the two stay apart), neither
    escaped a second time on its way to matplotlib."""
    from tailtune.classtable import short_names
    from tailtune.report.plots import plain

    drawn = [plain(short, len(short)) for short in short_names(["a\nb", "a\\nb"], 14).values()]
    assert drawn == ["a\\nb", "a\\\\nb"]
