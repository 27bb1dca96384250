"""Table and figure of the binary study (``examples/bbc-binary.yaml``) from its ``summary.json``.

Per rate and strategy: the minority class's test F1 and the macro-F1, mean ± standard deviation over seeds.
The figure plots both against the rate (log scale, so that 0.02 and 0.05 are readable), one line per strategy.

    tailtune compare --config examples/bbc-binary.yaml
    python benchmarks/binary_study.py runs/bbc-binary --figure benchmarks/results/bbc_binary.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from tailtune.experiments.summary import fmt_over_seeds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="the compare output folder (with summary.json)")
    parser.add_argument("--minority", default="politics")
    parser.add_argument("--figure", type=Path, help="write the PNG here")
    args = parser.parse_args()
    summary = json.loads((args.root / "summary.json").read_text())
    rows = [r for r in summary["rows"] if r["n_seeds"]]
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    by_key = {(r["variant"], r["strategy"]): r for r in rows}
    variants = sorted({r["variant"] for r in rows}, key=lambda v: float(v.split("-", 1)[1]))
    rates = [float(v.split("-", 1)[1]) for v in variants]

    header = "| rate | " + " | ".join(f"{s} minority F1 | {s} macro-F1" for s in strategies) + " |"
    print(header)
    print("|" + " --- |" * (1 + 2 * len(strategies)))
    series: dict[str, dict[str, list[tuple[float, float, float]]]] = {s: {"minority": [], "macro": []}
                                                                       for s in strategies}  # fmt: skip
    for variant in variants:
        rate = float(variant.split("-", 1)[1])
        cells = []
        for strategy in strategies:
            row = by_key.get((variant, strategy))
            if row is None:
                cells += ["-", "-"]
                continue
            minority = (row["per_class_f1_mean"][args.minority], row["per_class_f1_std"][args.minority])
            macro = (row["macro_f1_mean"], row["macro_f1_std"])
            cells += [fmt_over_seeds(row, "per_class_f1", args.minority), fmt_over_seeds(row, "macro_f1")]
            for key, (mean, std) in (("minority", minority), ("macro", macro)):
                if mean is not None:  # no seed measured it: no point
                    series[strategy][key].append((rate, mean, std or 0.0))
        n = {by_key[(variant, s)]["n_seeds"] for s in strategies if (variant, s) in by_key}
        print(f"| {rate:g} | " + " | ".join(cells) + f" |{'' if n == {3} else f' (seeds: {sorted(n)})'}")
    if args.figure:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
        for ax, key, title in ((axes[0], "minority", f"minority ({args.minority}) F1"), (axes[1], "macro", "macro-F1")):
            for strategy in strategies:
                points = series[strategy][key]
                if points:
                    x, mean, std = zip(*points, strict=True)
                    ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=strategy)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(rates, [f"{r:g}" for r in rates])
            ax.set_xlabel("minority size / majority size")
            ax.set_title(title)
            ax.grid(alpha=0.3)
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)
        print(f"figure written to {args.figure}")


if __name__ == "__main__":
    main()
