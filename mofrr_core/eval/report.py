"""The report of ``mofrr eval``: what was measured (:class:`EvalResult`), ``table.md``, the JSON files and figures."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mofrr_core import metrics
from mofrr_core.eval import plots, tables

OUTPUT_FILES = ("table.md", "per_image.json", "summary.json", "montage.png", "identity_density.png")


@dataclass
class EvalResult:
    """Everything ``mofrr eval`` measured."""

    records: list[dict[str, Any]]
    types: list[str]
    columns: list[str]
    summary: dict[str, dict[str, dict[str, float]]]
    identity: dict[str, list[float]] | None
    identity_reason: str | None
    router: dict[str, dict[str, float]] | None
    router_reason: str | None
    degree: dict[str, dict[str, float]]
    routing: str | None = None
    montage_rows: list[list[np.ndarray]] = field(default_factory=list)
    montage_titles: list[str] = field(default_factory=list)
    weights: dict[str, dict[str, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    detection: dict[str, dict[str, float]] | None = None  # router ROC AUC / ECE / false calls (eval.detection)
    false_calls: dict[str, dict[str, dict[str, float]]] | None = None  # {race|gender: {group: {type: rate}}}
    main: str | None = None  # the method whose router is scored


def write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace an existing report unless ``overwrite``."""
    existing = [out / name for name in OUTPUT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists (a report is already in {out}); pass --overwrite to replace "
                              "it or choose another --out")


def render_table(result: EvalResult, meta: Mapping[str, Any]) -> str:
    """The whole ``table.md``."""
    res = meta.get("resolution")
    lines = ["# MoFRR evaluation", "",
             f"Data: {meta.get('data')}; {len(result.records)} test images at {res}x{res} px; "
             f"DDIM steps {meta.get('steps')}; seed {meta.get('seed')}.", "",
             "## Fidelity per retouching type (paper Table 2)", "",
             tables.fidelity_table(result.summary, result.columns), "",
             f"Cells: PSNR (dB) / SSIM, in brackets the PSNR gain over the input. Computed on uint8 RGB at the "
             f"evaluation resolution {res}x{res} (data_range 255; SSIM with a Gaussian window, sigma 1.5, "
             "scikit-image). Single-op images are counted under their type, images with 2+ ops under Multi"
             + (", untouched ones under None." if tables.NONE in result.columns else "."), "",
             "## Single / Multi (paper Tables 3 and 4 layout)", "",
             tables.protocol_table(result.summary), "",
             "## Identity similarity (paper Fig. 6)", ""]
    if result.identity is not None:
        lines += [f"Cosine similarity to the original face in the {metrics.IDENTITY_MODEL} embedding "
                  "(the paper uses AdaFace/ArcFace; only dlib is available offline). Density plot: "
                  "`identity_density.png`.", "", tables.identity_table(result.identity)]
    else:
        lines += [f"Skipped: {result.identity_reason}"]
    lines += ["", "## Untouched faces (do no harm)", ""]
    if any(r["group"] == tables.NONE for r in result.records):
        lines += ["What each method changes of a face nobody retouched: PSNR between its output and its input "
                  "(higher is better; identical images count as 100 dB), the share of faces kept at 45 dB or more "
                  "and below 40 dB, and the share on which no expert ran at all.", "",
                  tables.untouched_table(result.records)]
    else:
        lines += ["Not measured: no untouched faces in the test data."]
    lines += ["", "## Detection (router)", ""]
    if result.detection is not None:
        lines += ["ROC AUC per type: faces carrying the type against all others; any: retouched against untouched "
                  "faces, scored by the highest type probability. ECE: expected calibration error of the printed "
                  "probabilities (15 bins).", "", tables.detection_table(result.detection)]
        for by, groups in (result.false_calls or {}).items():
            types = [t for t in result.detection if t != "any"]
            lines += ["", f"False calls on untouched faces by {by} (FairFace labels):", "",
                      tables.false_calls_table(groups, types, by)]
    else:
        lines += [f"Not measured: {result.router_reason}."]
    lines += ["", "## Router accuracy", ""]
    if result.router is not None:
        lines += [tables.router_table(result.router, meta.get("threshold", 0.5))]
    else:
        lines += [f"Not measured: {result.router_reason}."]
    if result.routing is not None:
        lines += ["", "### Gain by routing outcome", "",
                  "Mean PSNR gain (dB) of the pipeline on single-op images, by which specialised experts ran "
                  "(number of images in brackets): where the column's gain or loss comes from.", "",
                  result.routing]
    lines += ["", "## Degree estimators", ""]
    if result.degree:
        lines += ["Predicted degree (the estimator's expected degree, rounded) against the label, on the images "
                  "where the expert's op was applied.", "", tables.degree_table(result.degree)]
    else:
        lines += ["Not measured: no expert with a degree estimator saw an image carrying its op."]
    lines += ["", "## Speed", "", "| method | s / image |", "|---|---|"]
    lines += [f"| {name} | {s:.3f} |" for name, s in result.seconds.items()]
    lines += ["", f"(device {meta.get('device')}, batch size {meta.get('batch_size')}, wall clock including "
                  "resizing)", "", "## Methods and weights", ""]
    lines += [f"- {name}: {desc}" for name, desc in result.descriptions.items() if desc]
    lines += ["", *tables.weights_lines(result.weights)]
    if any(name.startswith("MoFRR no-") for name in result.descriptions):
        lines += ["", "Ablations no-idem / no-degree / no-hfcam / no-warp / no-refine are inference-time switches of "
                      "the trained model (R = 0, constant degree 3, HFCAM skipped, FlowWarp skipped, Combine "
                      "Module refinement skipped); "
                      "the paper fine-tunes a model per ablation, so these rows are a lower bound on what "
                      "retraining would give."]
    lines += ["", f"Command: `{meta.get('command')}`", ""]
    return "\n".join(lines)


def write_report(result: EvalResult, out: Path, meta: Mapping[str, Any], overwrite: bool = False) -> list[Path]:
    """Write table.md, per_image.json, summary.json, montage.png and (with dlib) identity_density.png."""
    check_output(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / "table.md"
    write_text_atomic(path, render_table(result, meta))
    written.append(path)
    path = out / "per_image.json"
    write_text_atomic(path, json.dumps(result.records, indent=1) + "\n")
    written.append(path)
    summary = {"meta": dict(meta), "types": result.types, "columns": result.columns, "fidelity": result.summary,
               "identity_model": metrics.IDENTITY_MODEL if result.identity is not None else None,
               "identity_skipped": result.identity_reason,
               "identity": {k: {"n": len(v), "mean": float(np.mean(v)) if v else None}
                            for k, v in (result.identity or {}).items()},
               "router": result.router, "router_skipped": result.router_reason, "degree": result.degree,
               "detection": result.detection, "false_calls_by_group": result.false_calls,
               "seconds_per_image": result.seconds, "weights": result.weights}
    path = out / "summary.json"
    write_text_atomic(path, json.dumps(_finite(summary), indent=1, default=str) + "\n")
    written.append(path)
    if result.montage_rows:
        written.append(plots.montage(result.montage_rows, result.montage_titles, out / "montage.png"))
    if result.identity is not None:
        written.append(plots.identity_density_plot(result.identity, out / "identity_density.png",
                                                   metrics.IDENTITY_MODEL))
    stale = out / "identity_density.png"
    if result.identity is None and stale.exists():
        stale.unlink()  # from an earlier report we are overwriting
    mode = 0o666 & ~_umask()
    for path in written:  # temporary files are created private; reports are meant to be shared
        path.chmod(mode)
    return written


def _finite(value: Any) -> Any:
    """NaN / inf -> ``None`` everywhere (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def headline(result: EvalResult) -> str:
    rows = []
    for name, entries in result.summary.items():
        e = entries[tables.ALL]
        gain = "" if name == tables.INPUT else f" ({e['psnr_gain']:+.2f} dB)"
        rows.append(f"{name}: {e['psnr']:.2f} dB / {e['ssim']:.3f}{gain}")
    return "all images: " + "; ".join(rows)
