"""The report's figures, drawn with matplotlib's Agg renderer.

Every function takes plain data and returns a :class:`matplotlib.figure.Figure`; :func:`to_png` renders it.
Figures are built without ``pyplot`` so no global state or display backend is involved.
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np
from matplotlib import font_manager, ft2font
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator, ScalarFormatter

from tailtune.classtable import short_names

DPI = 110
_PALETTE = [
    "#3b6fb6",
    "#e07b39",
    "#4e9a5b",
    "#c0504d",
    "#8064a2",
    "#4bacc6",
    "#9c7a3c",
    "#7f7f7f",
    "#d16ba5",
    "#2f4b7c",
]
_GROUP_COLORS = {"head": "#3b6fb6", "medium": "#8fb3de", "tail": "#e07b39", "": "#9aa5b1"}
_TEXT = "#1f2328"
_MUTED = "#59636e"
_GRID = "#e6e9ed"


# Tried in order for every character (matplotlib falls back glyph by glyph): the DejaVu Sans matplotlib ships,
# then fonts for CJK and other scripts wherever the system has them.
_FONT_FAMILIES = (
    "DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Source Han Sans", "WenQuanYi Zen Hei",
    "Droid Sans Fallback", "Noto Sans", "Arial Unicode MS", "Noto Emoji", "Symbola",
)  # fmt: skip


@functools.cache
def _fonts() -> tuple[tuple[str, ...], frozenset[int]]:
    """The font families of :data:`_FONT_FAMILIES` installed here, and the code points they cover together."""
    families, covered = [], set()
    for family in _FONT_FAMILIES:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError:
            continue
        families.append(family)
        covered.update(ft2font.FT2Font(path).get_charmap())
    return tuple(families), frozenset(covered)


def plain(text: object, limit: int = 28) -> str:
    """Make a data string safe as matplotlib text: no mathtext, bounded length, only drawable characters.

    A character no installed font has (CJK or emoji on a machine without such fonts) is written as its code
    point, ``<U+4E2D>``, instead of an empty box: labels stay distinct, and the report's tables name them.
    """
    value = str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    covered = _fonts()[1]
    # Class names come as classtable.short_names writes them (escaped, one line): printed again, a doubled
    # backslash would double once more. Any other white space is drawn as its code point, on the one line.
    value = "".join(c if ord(c) in covered or c == " " else f"<U+{ord(c):04X}>" for c in value)
    # A "$" would start mathtext, which can fail to parse on arbitrary labels.
    return value.replace("$", r"\$")


def strategy_colors(strategies: list[str]) -> dict[str, str]:
    """One fixed colour per strategy, so a strategy looks the same in every figure."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(strategies)}


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    FigureCanvasAgg(fig)
    for text in fig.findobj(Text):
        text.set_fontfamily(list(_fonts()[0]))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.15)
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    """A blank figure of the given size in inches, laid out by matplotlib's constrained layout."""
    return Figure(figsize=(width, height), layout="constrained")


def _style(ax: Axes) -> None:
    """The house style of an axes: no top or right spine, muted ticks, horizontal grid lines behind the data."""
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#8c959f")
    ax.tick_params(colors=_TEXT, labelsize=9)
    ax.title.set_color(_TEXT)
    ax.grid(True, axis="y", color=_GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    """Rows and columns for ``n`` panels, at most ``max_cols`` to a row."""
    cols = max(1, min(n, max_cols))
    return math.ceil(n / cols), cols


def _hide_unused(axes: np.ndarray, used: int) -> None:
    """Hide the panels of a grid after the first ``used``."""
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)


def class_distribution(panels: list[tuple[str, list[str], list[int], dict[str, str]]]) -> Figure:
    """Training examples per class, one panel per variant.

    Args:
        panels: ``(title, labels, counts, group_of_label)`` per variant; bars are coloured by group
            (head / medium / tail).
    """
    n_classes = max(len(p[1]) for p in panels)
    # Many classes need the full width for their bar labels.
    rows, cols = _grid(len(panels), 3 if n_classes <= 6 else 2 if n_classes <= 12 else 1)
    width = min(12.0, max(4.5, 0.35 * n_classes + 2.5) * cols)
    fig = _figure(width, 3.3 * rows + (0.6 if n_classes > 8 else 0))
    axes = fig.subplots(rows, cols, squeeze=False)
    seen_groups: dict[str, object] = {}
    for ax, (title, labels, counts, groups) in zip(axes.flat, panels, strict=False):
        x = np.arange(len(labels))
        colors = [_GROUP_COLORS.get(groups.get(name, ""), _GROUP_COLORS[""]) for name in labels]
        bars = ax.bar(x, counts, color=colors, width=0.75)
        for bar, name in zip(bars, labels, strict=True):
            seen_groups.setdefault(groups.get(name, ""), bar)
        ax.set_title(plain(title, 60), fontsize=10)
        ax.set_ylabel("training examples", fontsize=9, color=_MUTED)
        _style(ax)
        if len(labels) <= 40:
            ax.set_xticks(
                x,
                [plain(short, len(short)) for short in short_names(labels, 18).values()],
                rotation=45 if len(labels) > 4 else 0,
                ha="right" if len(labels) > 4 else "center",
            )
        else:
            ax.set_xticks([])
            ax.set_xlabel(f"{len(labels)} classes", fontsize=9, color=_MUTED)
    _hide_unused(axes, len(panels))
    order = [g for g in ("head", "medium", "tail") if g in seen_groups]
    if order:
        fig.legend(
            [seen_groups[g] for g in order],
            order,
            loc="outside upper right",
            frameon=False,
            fontsize=9,
            ncols=len(order),
        )
    return fig


def macro_f1_bars(
    variants: list[str],
    strategies: list[str],
    scores: dict[tuple[str, str], list[float]],
    colors: dict[str, str],
) -> Figure:
    """Macro-F1 per strategy, grouped by variant: bar = mean, error bar = sample std, dots = seeds.

    Args:
        variants: Variant names, in order.
        strategies: Strategy names, in order.
        scores: Macro-F1 per seed for each (variant, strategy).
        colors: Colour per strategy.
    """
    n_strat = len(strategies)
    fig = _figure(min(12.0, max(4.5, 1.6 + len(variants) * (0.55 * n_strat + 0.6))), 3.8)
    ax = fig.subplots()
    # A lone bar would otherwise fill the whole group.
    width = 0.8 / max(n_strat, 2)
    for j, strategy in enumerate(strategies):
        labelled = False
        for i, variant in enumerate(variants):
            values = scores.get((variant, strategy)) or []
            if not values:
                continue
            x = i + (j - (n_strat - 1) / 2) * width
            mean = float(np.mean(values))
            std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            ax.bar(
                x,
                mean,
                width * 0.9,
                color=colors[strategy],
                alpha=0.85,
                label=None if labelled else plain(strategy),
            )
            labelled = True
            if len(values) > 1:
                ax.errorbar(x, mean, yerr=std, color=_TEXT, capsize=3, linewidth=1)
            jitter = np.linspace(-width * 0.2, width * 0.2, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(x + np.asarray(jitter), values, s=12, color="white", edgecolor=_TEXT, linewidth=0.7, zorder=3)
    ax.set_xticks(range(len(variants)), [plain(v, 24) for v in variants])
    ax.set_xlim(-0.5, len(variants) - 0.5)
    ax.set_ylabel("macro-F1", fontsize=9, color=_MUTED)
    ax.set_ylim(0, 1.0)
    _style(ax)
    fig.legend(loc="outside right upper", frameon=False, fontsize=9)
    return fig


def per_class_vs_frequency(
    panels: list[tuple[str, dict[str, int], dict[str, dict[str, float | None]]]],
    colors: dict[str, str],
) -> Figure:
    """Per-class F1 (mean over seeds) against the class's training examples, log x axis.

    Args:
        panels: ``(title, train_count_per_class, {strategy: {class: mean F1}})`` per variant.
        colors: Colour per strategy.
    """
    rows, cols = _grid(len(panels), 2)
    fig = _figure(min(12.0, 5.2 * cols + 1.6), 3.9 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax, (title, counts, series) in zip(axes.flat, panels, strict=False):
        for strategy, f1s in series.items():
            points = sorted((counts[c], f) for c, f in f1s.items() if f is not None and counts.get(c, 0) > 0)
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs,
                ys,
                marker="o",
                markersize=5,
                linewidth=1.4,
                color=colors[strategy],
                label=plain(strategy),
                alpha=0.9,
            )
        ax.set_xscale("log")
        present = sorted({v for v in counts.values() if v > 0})
        if 0 < len(present) <= 6:
            # Ticks at the actual class sizes read better than powers of ten for a handful of classes.
            ax.xaxis.set_major_locator(FixedLocator(present))
        else:
            # Within one or two decades plain 1-2-5 ticks are easier to read than 10^k with minor labels.
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(plain(title, 60), fontsize=10)
        ax.set_xlabel("training examples of the class (log scale)", fontsize=9, color=_MUTED)
        _style(ax)
        ax.grid(True, axis="x", color=_GRID, linewidth=0.8)
    for ax in axes[:, 0]:
        ax.set_ylabel("F1 (mean over seeds)", fontsize=9, color=_MUTED)
    _hide_unused(axes, len(panels))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=9)
    return fig


def confusion_matrices(labels: list[str], shares: dict[str, np.ndarray], titles: dict[str, str]) -> Figure:
    """Row-normalised confusion matrices, one panel per strategy (rows: true label, columns: predicted).

    Up to 15 classes each cell is written out (past 12 smaller, and empty cells left blank); past that only the
    colours show it (the report draws at most 15 classes).

    Args:
        labels: Class names, in matrix order.
        shares: Per strategy, the share of each true class's examples predicted as each class.
        titles: Panel title per strategy.
    """
    n = len(labels)
    rows, cols = _grid(len(shares))
    # Panels are square; size them from the width actually available so rows do not leave gaps.
    side = min(5.0, max(3.2, 0.32 * n + 1.6), (12.5 - 1.0) / cols)
    fig = _figure(side * cols + 1.0, side * rows + 0.3)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax, (strategy, normed) in zip(axes.flat, shares.items(), strict=False):
        image = ax.imshow(normed, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_title(plain(titles.get(strategy, strategy), 60), fontsize=10, color=_TEXT)
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    value = normed[i, j]
                    if value == 0 and n > 12:
                        continue  # many empty cells: "0.00" everywhere would hide the ones that count
                    ax.text(
                        j,
                        i,
                        f"{value:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8 if n <= 12 else 6,
                        color="white" if value > 0.6 else _TEXT,
                    )
        if n <= 30:
            short = [plain(name, len(name)) for name in short_names(labels, 14).values()]
            size = 8 if n <= 12 else 6
            ax.set_xticks(
                range(n),
                short,
                rotation=45 if n <= 12 else 90,
                ha="right" if n <= 12 else "center",
                fontsize=size,
            )
            ax.set_yticks(range(n), short, fontsize=size)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_xlabel("predicted", fontsize=9, color=_MUTED)
        ax.set_ylabel("true", fontsize=9, color=_MUTED)
    _hide_unused(axes, len(shares))
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_label("share of the true class", fontsize=9, color=_MUTED)
        bar.ax.tick_params(labelsize=8)
    return fig


def ratio_curves(
    series: dict[str, list[tuple[float, float, float | None]]],
    colors: dict[str, str],
) -> Figure:
    """Macro-F1 against imbalance ratio, one line per strategy (error bars: sample std over seeds).

    Args:
        series: ``[(ratio, mean, std), ...]`` per line name; names are strategies, optionally followed by a
            profile in parentheses (the colour follows the strategy).
        colors: Colour per strategy.
    """
    fig = _figure(7.5, 3.9)
    ax = fig.subplots()
    styles = ["-", "--", ":", "-."]
    profiles: dict[str, int] = {}
    ratios: set[float] = set()
    for name, points in series.items():
        points = sorted(points)
        strategy, _, profile = name.partition(" (")
        style = styles[profiles.setdefault(profile, len(profiles)) % len(styles)]
        xs = [p[0] for p in points]
        ratios.update(xs)
        ax.errorbar(
            xs,
            [p[1] for p in points],
            yerr=[p[2] or 0.0 for p in points],
            marker="o",
            markersize=5,
            capsize=3,
            linewidth=1.5,
            linestyle=style,
            color=colors.get(strategy, _MUTED),
            label=plain(name, 40),
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(ratios)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("imbalance ratio (largest / smallest class, log scale)", fontsize=9, color=_MUTED)
    ax.set_ylabel("macro-F1", fontsize=9, color=_MUTED)
    ax.set_ylim(0, 1.0)
    _style(ax)
    fig.legend(loc="outside right upper", frameon=False, fontsize=9)
    return fig
