"""Chart several ``benchmarks/whole_photo.py --out`` reports side by side: gain and images made worse per column.

Usage: python benchmarks/plot_whole_photo.py REPORT.json [REPORT.json ...] --out chart.png [--labels a,b,...]

One row per report (by default labelled with its file name: ``reports/conditions/denoise.json`` -> ``denoise``),
one column per retouching column of the table (White ... Multi, All) and the untouched photos: on the left the
gain over the input in dB, on the right the share of photos the restoration made worse (for the untouched ones:
the share on which some expert ran). The issue's targets are in the titles. Each cell is written as well as
coloured, so the chart reads without its legend.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

COLUMNS = ("white", "smooth", "face", "eye", "Multi", "All")  # the keys of a report's summary["fidelity"]


def rows(report: dict) -> tuple[list[float], list[float]]:
    """One report's gains (dB) per column, and its made-worse shares (%) per column with the untouched photos'
    share on which an expert ran last."""
    fidelity, untouched = report["summary"]["fidelity"], report["summary"]["untouched"]
    gains = [fidelity.get(c, {}).get("gain", np.nan) for c in COLUMNS]
    worse = [100 * fidelity.get(c, {}).get("worse", np.nan) for c in COLUMNS]
    return gains, worse + [100 * (1 - untouched.get("no_expert", np.nan))]


def plot(table: Sequence[tuple[list[float], list[float]]], labels: Sequence[str], path: Path) -> None:
    """``table``: :func:`rows` of each report, in the order of ``labels``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    gains, worse = (np.array(values, dtype=float) for values in zip(*table))
    names = [c.capitalize() for c in COLUMNS]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.4 * len(labels) + 1.8), sharey=True,
                                      width_ratios=(len(names), len(names) + 1))
    panels = ((left, gains, names, "RdYlGn", (-1.0, 1.0), "{:+.2f}", "gain over the input, dB (target: > 0)"),
              (right, worse, names + ["untouched"], "Reds", (0.0, 30.0), "{:.0f}",
               "made worse, % (target 10); untouched: an expert ran, % (target 5)"))
    for axis, values, ticks, cmap, (low, high), text, title in panels:
        axis.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=low, vmax=high, aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                axis.text(j, i, text.format(value), ha="center", va="center", fontsize=8)
        axis.set_xticks(range(len(ticks)), ticks)
        axis.set_title(title, fontsize=9)
    left.set_yticks(range(len(labels)), labels)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="whole_photo.py --out files, one row each")
    parser.add_argument("--out", type=Path, required=True, help="the chart (PNG)")
    parser.add_argument("--labels", default=None, help="comma-separated row labels (default: the file names)")
    args = parser.parse_args(argv)
    args.labels = args.labels.split(",") if args.labels else [p.stem for p in args.reports]
    if len(args.labels) != len(args.reports):
        parser.error(f"--labels: {len(args.labels)} labels for {len(args.reports)} reports")
    if args.out.exists():
        parser.error(f"--out {args.out}: exists (remove it first)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    table = []
    for path in args.reports:
        try:
            table.append(rows(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            print(f"error: {path}: not a whole_photo.py report ({type(error).__name__}: {error})", file=sys.stderr)
            return 1
    plot(table, args.labels, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
