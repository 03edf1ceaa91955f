"""Two pipelines on the same whole photos: per column, what the second gains or loses against the first.

Usage: python benchmarks/compare_whole_photo.py --base A.json [A2.json ...] --candidate B.json [B2.json ...]
                                                [--bins-column smooth] [--bins 40,44] [--check]
                                                [--max-drop 0.05] [--max-all-drop 0.03] [--max-worse-rise 2]

Reads the per-image reports of ``benchmarks/whole_photo.py --out`` made with the same photos (same ``--split``,
``-n``, ``--seed`` and conditions) and two pipelines, e.g. the packaged weights and a retrained registry::

    python benchmarks/whole_photo.py --split val -n 600 --seed 7 --out base.json
    python benchmarks/whole_photo.py --split val -n 600 --seed 7 --pipeline runs/x/registry.yaml --out new.json
    python benchmarks/compare_whole_photo.py --base base.json --candidate new.json --check

Several reports per side (other seeds, other photo conditions) are pooled pair by pair; each pair must hold the same
photos (key and input PSNR), or the comparison stops. Printed, as markdown: per column the gain and the share made
worse of each side and their differences, the untouched photos (share with no expert, below 40 dB, worst), and one
column split by the input's PSNR (``--bins-column``, edges ``--bins``) with the column's own estimated degree, where
a change of the gain usually hides. ``--check`` exits with 1 when the candidate loses: a column's gain lower by more
than ``--max-drop`` dB (``All``: ``--max-all-drop``) or its share made worse up by more than ``--max-worse-rise``
points, the no-regression rule a retrained set is held to before it replaces the shipped one (docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from whole_photo import column_stats, untouched_stats

from mofrr_core.eval.tables import ALL, NONE, columns_for


def load_records(path: Path) -> list[dict[str, Any]]:
    """The per-image records of a ``whole_photo.py --out`` report."""
    try:
        return json.loads(path.read_text())["images"]
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f"error: {path}: not a whole_photo.py --out report ({error})") from None


def check_same_photos(base: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]) -> None:
    """Stop unless both sides measured the same photos in the same order."""
    if len(base) != len(candidate):
        raise SystemExit(f"error: {len(base)} base images against {len(candidate)} candidate images")
    for b, c in zip(base, candidate):
        if b.get("key") != c.get("key") or abs(b["input_psnr"] - c["input_psnr"]) > 1e-6:
            raise SystemExit(f"error: image {b['index']} differs between the sides ({b.get('key')} against "
                             f"{c.get('key')}): were they made with the same --split, -n, --seed and conditions?")


def stats(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """:func:`whole_photo.column_stats`' ``n``, mean gain and share made worse (in %) of some records."""
    found = column_stats(records)
    return {"n": found["n"], "gain": found.get("gain", float("nan")), "worse": 100.0 * found.get("worse", float("nan"))}


def fidelity_rows(base: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]
                  ) -> list[tuple[str, dict[str, float], dict[str, float]]]:
    """Per retouched column and ``All``: the base's and the candidate's :func:`stats`."""
    rows = []
    for column in [*columns_for([], [r["group"] for r in base]), ALL]:
        pick = (lambda r: r["group"] != NONE) if column == ALL else (lambda r, c=column: r["group"] == c)
        rows.append((column, stats([r for r in base if pick(r)]), stats([r for r in candidate if pick(r)])))
    return rows


def untouched(records: Sequence[Mapping[str, Any]]) -> str:
    """:func:`whole_photo.untouched_stats` in one line."""
    s = untouched_stats(records)
    if not s["n"]:
        return "no untouched photo"
    return (f"{100 * s['no_expert']:.1f} % no expert, {round(s['below_floor'] * s['n'])} below 40 dB, "
            f"worst {s['worst']:.1f} dB")


def bins_table(base: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]], column: str,
               edges: Sequence[float]) -> str:
    """``column``'s photos by input PSNR: n, each side's gain, made worse and mean estimated degree of the column."""
    bounds = [-np.inf, *edges, np.inf]
    lines = [f"| {column}: input PSNR | n | base gain | candidate gain | base worse | candidate worse "
             "| base degree | candidate degree |", "|---|---|---|---|---|---|---|---|"]
    pairs = [(b, c) for b, c in zip(base, candidate) if b["group"] == column and not b["no_face"]
             and not c["no_face"]]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        rows = [(b, c) for b, c in pairs if lo <= b["input_psnr"] < hi]
        if not rows:
            continue
        cells = [len(rows)]
        cells += [f"{np.mean([side['gain'] for side in sides]):+.2f}" for sides in zip(*rows)]
        cells += [str(sum(side["worse"] for side in sides)) for sides in zip(*rows)]
        cells += [degree_cell(sides, column) for sides in zip(*rows)]
        lines.append(f"| {lo:.0f}-{hi:.0f} dB | " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def degree_cell(records: Sequence[Mapping[str, Any]], column: str) -> str:
    values = [r["degrees"][column] for r in records if (r.get("degrees") or {}).get(column) is not None]
    return f"{np.mean(values):.2f}" if values else "-"


def failures(rows: Sequence[tuple[str, Mapping[str, float], Mapping[str, float]]], max_drop: float,
             max_all_drop: float, max_worse_rise: float) -> list[str]:
    """What breaks the no-regression rule, one line each (empty: the candidate passes)."""
    found = []
    for column, b, c in rows:
        limit = max_all_drop if column == ALL else max_drop
        if c["gain"] < b["gain"] - limit:
            found.append(f"{column}: gain {b['gain']:+.2f} -> {c['gain']:+.2f} dB (more than {limit} dB lower)")
        if c["worse"] > b["worse"] + max_worse_rise:
            found.append(f"{column}: made worse {b['worse']:.1f} -> {c['worse']:.1f} % "
                         f"(more than {max_worse_rise} points up)")
    return found


def report(rows: Sequence[tuple[str, Mapping[str, float], Mapping[str, float]]]) -> str:
    lines = ["| column | n | base gain (worse) | candidate gain (worse) | gain change | made worse change |",
             "|---|---|---|---|---|---|"]
    for column, b, c in rows:
        lines.append(f"| {column} | {b['n']} | {b['gain']:+.2f} ({b['worse']:.1f} %) | {c['gain']:+.2f} "
                     f"({c['worse']:.1f} %) | {c['gain'] - b['gain']:+.2f} dB | {c['worse'] - b['worse']:+.1f} pt |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, nargs="+", required=True, help="reports of the pipeline to beat")
    parser.add_argument("--candidate", type=Path, nargs="+", required=True,
                        help="reports of the other pipeline on the same photos, in the same order")
    parser.add_argument("--bins-column", default="smooth", help="column split by input PSNR (default: smooth)")
    parser.add_argument("--bins", default="36,40,44", help="input-PSNR edges in dB (default: 36,40,44)")
    parser.add_argument("--check", action="store_true", help="exit with 1 if the candidate breaks the rule below")
    parser.add_argument("--max-drop", type=float, default=0.05, help="a column's largest gain loss (dB)")
    parser.add_argument("--max-all-drop", type=float, default=0.03, help="All's largest gain loss (dB)")
    parser.add_argument("--max-worse-rise", type=float, default=2.0,
                        help="largest rise of a column's share made worse (points)")
    args = parser.parse_args(argv)
    if len(args.base) != len(args.candidate):
        parser.error(f"--base has {len(args.base)} reports and --candidate {len(args.candidate)}: pair them")
    try:
        args.bins = [float(v) for v in args.bins.split(",") if v]
    except ValueError:
        parser.error(f"--bins: expected comma-separated dB values, got {args.bins!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base, candidate = [], []
    for b_path, c_path in zip(args.base, args.candidate):
        b, c = load_records(b_path), load_records(c_path)
        check_same_photos(b, c)
        base, candidate = base + b, candidate + c
    rows = fidelity_rows(base, candidate)
    print(report(rows))
    print(f"\nuntouched: base {untouched(base)}; candidate {untouched(candidate)}\n")
    print(bins_table(base, candidate, args.bins_column, args.bins))
    broken = failures(rows, args.max_drop, args.max_all_drop, args.max_worse_rise)
    print("\n" + ("\n".join(f"fails: {line}" for line in broken) if broken else "no column regresses"))
    return 1 if args.check and broken else 0


if __name__ == "__main__":
    sys.exit(main())
