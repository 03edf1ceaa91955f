"""Per-image records -> the paper's tables (markdown): fidelity per retouching type, identity, router, degree.

A record (one per test image, what ``per_image.json`` holds)::

    {"key": str, "group": "white" | ... | "Multi" | "None", "types": [applied types],
     "labels": {type: 0/1}, "degrees": {type: 0..5},
     "input": {"psnr", "ssim", "identity"},            # retouched vs original
     "methods": {name: {"psnr", "ssim", "identity", "psnr_gain", "ssim_gain", ...}}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CANONICAL_TYPES = ("white", "smooth", "face", "eye")
MULTI, NONE, SINGLE, ALL = "Multi", "None", "Single", "All"
UNLABELED = "Unlabeled"  # pairs whose retouching is unknown (a folder without labels)
INPUT = "Input"


def group_of(labels: Sequence[float], types: Sequence[str]) -> str:
    """The table column of an image: its one type, ``Multi`` (2+ ops) or ``None`` (untouched)."""
    applied = [t for t, v in zip(types, labels) if float(v) > 0.5]
    if len(applied) == 1:
        return applied[0]
    return MULTI if applied else NONE


def columns_for(types: Sequence[str], groups: Sequence[str]) -> list[str]:
    """The four canonical types (always), plugin types of the data and ``Multi``: the retouched columns
    (untouched faces have their own table, :func:`untouched_table`)."""
    extra = [t for t in types if t not in CANONICAL_TYPES]
    extra += sorted({g for g in groups if g not in (*CANONICAL_TYPES, *extra, MULTI, NONE)})
    return [*CANONICAL_TYPES, *extra, MULTI]


def title(column: str) -> str:
    return column[:1].upper() + column[1:]


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def method_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Methods in the order they first appear in the records."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record["methods"]))
    return list(names)


def summarize(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``{row: {column: {n, psnr, ssim, psnr_gain, ssim_gain}}}`` for ``Input`` and every method.

    Columns are the groups plus ``Single`` (all one-op images) and ``All`` (every retouched image).
    """
    def members(column: str) -> list[Mapping[str, Any]]:
        if column == ALL:
            return [r for r in records if r["group"] != NONE]
        if column == SINGLE:
            return [r for r in records if r["group"] not in (MULTI, NONE, UNLABELED)]
        return [r for r in records if r["group"] == column]

    summary: dict[str, dict[str, dict[str, float]]] = {}
    for row in [INPUT, *method_names(records)]:
        summary[row] = {}
        for column in [*columns, SINGLE, ALL]:
            rs = [r for r in members(column) if row == INPUT or row in r["methods"]]
            scores = [r["input"] if row == INPUT else r["methods"][row] for r in rs]
            entry = {"n": float(len(rs)), "psnr": _mean([s["psnr"] for s in scores]),
                     "ssim": _mean([s["ssim"] for s in scores])}
            entry["psnr_gain"] = entry["psnr"] - _mean([r["input"]["psnr"] for r in rs])
            entry["ssim_gain"] = entry["ssim"] - _mean([r["input"]["ssim"] for r in rs])
            summary[row][column] = entry
    return summary


def _cell(entry: Mapping[str, float], gain: bool) -> str:
    if not entry["n"]:
        return "–"
    text = f"{entry['psnr']:.2f} / {entry['ssim']:.3f}"
    return f"{text} ({entry['psnr_gain']:+.2f})" if gain else text


def fidelity_table(summary: Mapping[str, Mapping[str, Mapping[str, float]]], columns: Sequence[str]) -> str:
    """Table 2: rows Input / methods, columns per type and Multi; cells ``PSNR / SSIM (gain dB)``."""
    n = summary[INPUT]
    header = "| Method | " + " | ".join(f"{title(c)} (n={int(n[c]['n'])})" for c in columns) + " |"
    lines = [header, "|---|" + "---|" * len(columns)]
    for row, entries in summary.items():
        lines.append(f"| {row} | " + " | ".join(_cell(entries[c], row != INPUT) for c in columns) + " |")
    return "\n".join(lines)


def protocol_table(summary: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Tables 3/4 layout: Single / Multi / All, PSNR and SSIM in their own columns plus the PSNR gain."""
    cols = [SINGLE, MULTI, ALL]
    n = summary[INPUT]
    lines = ["| Method | " + " | ".join(f"{c} PSNR | {c} SSIM" for c in cols) + " | gain Single | gain Multi |",
             "|---|" + "---|---|" * len(cols) + "---|---|"]
    for row, entries in summary.items():
        cells = []
        for c in cols:
            e = entries[c]
            cells += [f"{e['psnr']:.2f}", f"{e['ssim']:.3f}"] if e["n"] else ["–", "–"]
        gains = [f"{entries[c]['psnr_gain']:+.2f}" if entries[c]["n"] and row != INPUT else "" for c in cols[:2]]
        lines.append(f"| {row} | " + " | ".join(cells + gains) + " |")
    lines.append("\n(n: " + ", ".join(f"{c} {int(n[c]['n'])}" for c in cols) + ")")
    return "\n".join(lines)


def identity_values(records: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Cosine similarities to the original per row (``Retouched`` = the input), ``None`` values dropped."""
    values: dict[str, list[float]] = {"Retouched (input)": [r["input"].get("identity") for r in records]}
    for name in method_names(records):
        values[name] = [r["methods"].get(name, {}).get("identity") for r in records]
    return {k: [float(v) for v in vs if v is not None] for k, vs in values.items()}


def identity_table(values: Mapping[str, Sequence[float]]) -> str:
    """Mean / median / 10th percentile of identity cosine and the share above 0.9."""
    lines = ["| vs original | n | mean | median | 10th pct | share > 0.9 |", "|---|---|---|---|---|---|"]
    for name, vs in values.items():
        if not len(vs):
            lines.append(f"| {name} | 0 | – | – | – | – |")
            continue
        a = np.asarray(vs)
        lines.append(f"| {name} | {a.size} | {a.mean():.4f} | {np.median(a):.4f} | {np.percentile(a, 10):.4f} | "
                     f"{(a > 0.9).mean():.2f} |")
    return "\n".join(lines)


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def router_table(report: Mapping[str, Mapping[str, float]], threshold: float) -> str:
    """Per-type precision / recall / F1 / accuracy of the router at ``threshold``."""
    lines = [f"| type (p > {threshold:g}) | support | precision | recall | F1 | accuracy |",
             "|---|---|---|---|---|---|"]
    for name, r in report.items():
        label = "all (micro)" if name == "all" else name
        lines.append(f"| {label} | {int(r['support'])}/{int(r['n'])} | {_fmt(r['precision'])} | {_fmt(r['recall'])} "
                     f"| {_fmt(r['f1'])} | {_fmt(r['accuracy'])} |")
    if "all" in report:
        lines.append(f"\nExact label-set accuracy: {_fmt(report['all']['exact'])}")
    return "\n".join(lines)


ROUTING_OUTCOMES = ("own expert only", "own + other experts", "other experts only", "no expert")


def routing_outcome(applied: str, ran: Sequence[str]) -> str:
    """Which experts ran on a single-op image of type ``applied`` (``ran``: the types of the experts run)."""
    own, other = applied in ran, any(t != applied for t in ran)
    return ROUTING_OUTCOMES[0 if own and not other else 1 if own else 2 if other else 3]


def routing_table(records: Sequence[Mapping[str, Any]], method: str, columns: Sequence[str],
                  expert_types: Mapping[str, str]) -> str:
    """Mean PSNR gain of ``method`` on single-op images, split by which experts the router ran on them.

    ``expert_types`` maps an expert's name (``experts_run``) to its retouching type; others (the shared
    expert) are ignored. Cells: mean gain (dB) and, in brackets, the number of images.
    """
    gains: dict[tuple[str, str], list[float]] = {}
    for record in records:
        entry = record["methods"].get(method)
        if entry is None or record["group"] in (MULTI, NONE) or "experts_run" not in entry:
            continue
        ran = [expert_types[e] for e in entry["experts_run"] if e in expert_types]
        gains.setdefault((routing_outcome(record["group"], ran), record["group"]), []).append(entry["psnr_gain"])
    single = [c for c in columns if c not in (MULTI, NONE)]
    lines = ["| experts run | " + " | ".join(title(c) for c in single) + " |", "|---|" + "---|" * len(single)]
    for outcome in ROUTING_OUTCOMES:
        cells = [f"{_mean(gains[(outcome, c)]):+.2f} ({len(gains[(outcome, c)])})" if (outcome, c) in gains else "–"
                 for c in single]
        lines.append(f"| {outcome} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


DO_NO_HARM_DB = (45.0, 40.0)  # PSNR(output, input) an untouched face should keep: most of them, and every one


def untouched_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Per method, on untouched faces: how close the output stays to the input, and how often nothing ran."""
    rows = [r for r in records if r["group"] == NONE]
    good, floor = DO_NO_HARM_DB
    lines = [f"| method | n | PSNR(output, input) mean | >= {good:g} dB | < {floor:g} dB | worst | no expert ran |",
             "|---|---|---|---|---|---|---|"]
    for name in method_names(rows):
        entries = [r["methods"][name] for r in rows if name in r["methods"]]
        psnr = np.asarray([e["psnr_to_input"] for e in entries], dtype=np.float64)
        idle = np.mean([not e.get("experts_run") for e in entries])
        lines.append(f"| {name} | {len(entries)} | {psnr.mean():.2f} | {(psnr >= good).mean():.2f} | "
                     f"{(psnr < floor).mean():.2f} | {psnr.min():.2f} | {idle:.2f} |")
    return "\n".join(lines)


def detection_table(report: Mapping[str, Mapping[str, float]]) -> str:
    """Router detection: ROC AUC, calibration (ECE) and false calls on untouched faces, per type and any."""
    lines = ["| type | positives | ROC AUC | ECE | false calls on untouched (at the gate's threshold) |",
             "|---|---|---|---|---|"]
    for name, r in report.items():
        label = "any (retouched vs untouched, max p)" if name == "any" else name
        lines.append(f"| {label} | {int(r['positives'])} | {_fmt(r['auc'])} | {_fmt(r['ece'])} | "
                     f"{_fmt(r['false_calls'], 2)} |")
    return "\n".join(lines)


def false_calls_table(by_group: Mapping[str, Mapping[str, float]], types: Sequence[str], by: str) -> str:
    """False-call rate per type on the untouched faces of each group (FairFace labels)."""
    lines = [f"| {by} | untouched faces | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]
    for group, entry in by_group.items():
        lines.append(f"| {group} | {int(entry['n'])} | " + " | ".join(f"{entry[t]:.2f}" for t in types) + " |")
    return "\n".join(lines)


def degree_table(reports: Mapping[str, Mapping[str, float]]) -> str:
    """Per expert: degree-estimator accuracy on the images where its op was applied."""
    lines = ["| expert | n | accuracy | within ±1 | MAE |", "|---|---|---|---|---|"]
    for name, r in reports.items():
        lines.append(f"| {name} | {int(r['n'])} | {_fmt(r['accuracy'])} | {_fmt(r['within_one'])} | "
                     f"{_fmt(r['mae'], 2)} |")
    return "\n".join(lines)


def weights_lines(weights: Mapping[str, Mapping[str, str]]) -> list[str]:
    """One line per method: which weights (sha256 prefix) or ``untrained``."""
    lines = []
    for method, components in weights.items():
        parts = [f"{k} {v[:12] if v not in ('untrained', 'unknown') else v}" for k, v in components.items()]
        untrained = sum(v == "untrained" for v in components.values())
        note = f" — **{untrained}/{len(components)} untrained (identity)**" if untrained else ""
        lines.append(f"- {method}: {', '.join(parts) or 'n/a'}{note}")
    return lines
