"""Evaluate MoFRR (and baselines, ablations) on a paired test split: the paper's Tables 2-4 and Fig. 6.

Restores every test image with each method and writes to --out:
  table.md        PSNR / SSIM per retouching type (single-op images by their type, 2+ ops = Multi),
                  gain over the input, Single/Multi/All summary, identity similarity, router and
                  degree-estimator accuracy, speed, and which weights produced the numbers
  per_image.json  every per-image number (one entry per test image)
  summary.json    the aggregated numbers and the run's settings
  montage.png     input | restored (each method) | original | |MoFRR - original| x4, first images
  identity_density.png  Fig. 6: density of the identity cosine to the original per method
                  (needs dlib: pip install 'mofrr[eval]'; otherwise skipped with the reason)

Data (--data): a folder of face shards (*.tar: pairs are synthesised on the fly, deterministic
per --data-seed), a `mofrr synth` output, original/ + retouched/ folders, or the authors'
RetouchingFFHQ++ layout. Metrics are computed on uint8 RGB at the evaluation resolution.

Ablations (--ablation, paper Table 4): no-router and no-shared are options of the pipeline;
no-idem, no-degree, no-hfcam and no-warp patch the *trained* WaveFRR experts at inference time
(R = 0, constant degree 3, HFCAM skipped, FlowWarp skipped), no-refine skips the Combine Module's
refinement net; the paper retrains a model per ablation instead.

examples:
  mofrr eval --data ../shared/data/faces -n 200 --out report/
  mofrr eval --data pairs/test --pipeline trained/ --baseline shared unet runs/unet/final --out report/
  mofrr eval --data ../shared/data/faces --apis smooth=guided --out report-xapi/     (Table 3)
  mofrr eval --data ../shared/data/faces --ablation none no-router no-shared no-idem --out ablate/
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mofrr_core import metrics
from mofrr_core.eval import plots, tables
from mofrr_core.eval.methods import ABLATION_HELP, ABLATIONS, Method, ablation, load_baseline
from mofrr_core.pipeline import INDEX_FILE, Pipeline, router_types
from mofrr_core.utils.image import resize, to_uint8

OPS_MODES = {"single": (1, 1), "multi": (2, 4), "mixed": (0, 4)}
OUTPUT_FILES = ("table.md", "per_image.json", "summary.json", "montage.png", "identity_density.png")
DEFAULT_TYPES = tables.CANONICAL_TYPES


# -- command line ----------------------------------------------------------------------------------
def parse_apis(values: Sequence[str] | None) -> dict[str, str] | None:
    """``["smooth=guided", "eye=a,face=b"]`` -> ``{"smooth": "guided", "eye": "a", "face": "b"}``."""
    result: dict[str, str] = {}
    for value in values or []:
        for part in filter(None, (p.strip() for p in value.split(","))):
            op, sep, api = part.partition("=")
            if not sep or not op or not api:
                raise ValueError(f"--apis {part!r}: expected OP=API (e.g. smooth=guided)")
            if op in result:
                raise ValueError(f"--apis: op {op!r} given twice")
            result[op] = api
    return result or None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mofrr eval``."""
    data = parser.add_argument_group("test data")
    data.add_argument("--data", type=Path, default=None,
                      help="face shards folder (*.tar), mofrr synth output, original/+retouched/ folders, or the "
                           "authors' layout (default: $MOFRR_DATA or ../shared/data/faces)")
    data.add_argument("--split", choices=("train", "val", "test"), default="test", help="split (default: test)")
    data.add_argument("-n", "--num", type=int, default=200, dest="n", help="number of test images (default: 200)")
    data.add_argument("--resolution", type=int, default=None,
                      help="evaluation resolution in px (default: the pipeline's working resolution)")
    data.add_argument("--ops", default="balanced",
                      help="shards only: balanced (equal shares of single-op images per type and of 2-4-op "
                           "images: the paper's Table 2 protocol), single, multi, mixed (0-4 ops), or a comma "
                           "list of ops applied to every image (default: balanced)")
    data.add_argument("--apis", nargs="+", metavar="OP=API",
                      help="shards only: cross-implementation test (paper Table 3), e.g. smooth=guided: pairs made "
                           "only with that implementation of the op")
    data.add_argument("--degrees", default="auto",
                      help="shards only: degree labels: auto (the paper's PSNR thresholds fitted on the train "
                           "split, cached), none (strength fallback), or a thresholds JSON (default: auto)")
    data.add_argument("--fit-n", type=int, default=1000,
                      help="shards only: training samples per type when fitting degree thresholds (default: 1000)")
    data.add_argument("--data-seed", type=int, default=0, help="shards only: seed of the pair generator")
    methods = parser.add_argument_group("what to evaluate")
    methods.add_argument("--pipeline", type=Path, default=None, metavar="REGISTRY_OR_DIR",
                         help="a registry.yaml or a Pipeline.save_pretrained folder (default: the packaged registry)")
    methods.add_argument("--experts", help="comma-separated expert names (registry only; default: all)")
    methods.add_argument("--allow-untrained", action="store_true",
                         help="build experts without weights untrained (identity) instead of skipping them")
    methods.add_argument("--baseline", nargs="+", default=[], metavar="NAME_OR_DIR",
                         help="baselines: a save_pretrained folder (e.g. a trained UNetBaseline or another "
                              "pipeline), 'shared' (the shared expert alone), an expert name (that WaveFRR "
                              "alone), 'unet' (the shipped UNetBaseline trained with one expert's budget) or "
                              "'unet-untrained' (identity, for wiring checks)")
    methods.add_argument("--ablation", nargs="+", default=["none"], choices=ABLATIONS, metavar="NAME",
                         help="one or more of: " + "; ".join(f"{k}: {v}" for k, v in ABLATION_HELP.items())
                              + " (default: none)")
    methods.add_argument("--single-expert", metavar="NAME_OR_DIR",
                         help="the WaveFRR of --ablation single-expert (default: the pipeline's first expert)")
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument("--working-resolution", type=int, default=None,
                          help="run the networks at this size (default: the pipeline's; e.g. the training size)")
    sampling.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the pipeline's)")
    sampling.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    sampling.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default: 4)")
    sampling.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, required=True, help="report folder (created if needed)")
    output.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    output.add_argument("--montage", type=int, default=4, help="test images in montage.png (default: 4; 0: none)")
    output.add_argument("--no-identity", action="store_true", help="skip the identity similarity")
    output.add_argument("--quiet", action="store_true", help="no progress bar")


def load_pipeline(spec: Path | None, device: str | None = None, experts: str | None = None,
                  allow_untrained: bool = False) -> Pipeline:
    """``spec``: a ``Pipeline.save_pretrained`` folder, a registry YAML, or ``None`` (packaged registry)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if spec is not None and spec.is_dir():
        if not (spec / INDEX_FILE).is_file():
            raise FileNotFoundError(f"--pipeline {spec}: a folder but not a saved pipeline (no {INDEX_FILE})")
        return Pipeline.from_pretrained(spec, device=device)
    if spec is not None and not spec.is_file():
        raise FileNotFoundError(f"--pipeline {spec}: no such registry file or pipeline folder")
    names = [e.strip() for e in experts.split(",") if e.strip()] if experts else None
    return Pipeline.from_registry(spec, experts=names, device=device, allow_untrained=allow_untrained)


def _is_shards(path: Path | None) -> bool:
    return path is None or (path.is_dir() and any(path.glob("*.tar")))


def _degree_thresholds(choice: str, root: Path | None, resolution: int, quiet: bool, fit_n: int = 1000):
    if choice == "none":
        return None
    if choice == "auto":
        from mofrr_core.data.degrees import fit_degree_thresholds

        return fit_degree_thresholds(root, n=fit_n, resolution=resolution, progress=not quiet)
    from mofrr_core.data.degrees import DegreeThresholds

    return DegreeThresholds.load(choice)


def load_samples(data: Path | None, split: str = "test", n: int = 200, resolution: int = 256,
                 ops: str = "balanced", apis: Mapping[str, str] | None = None, degrees: str = "auto",
                 seed: int = 0, quiet: bool = False, fit_n: int = 1000,
                 ) -> tuple[Sequence[Mapping[str, Any]], list[str], str]:
    """The test samples (a lazy sequence of sample dicts), their type axis, and a description."""
    open_dataset = _open_dataset()

    if not _is_shards(data):
        if apis:
            raise ValueError(f"--apis applies to shard folders only; {data} holds fixed pairs (make them with "
                             "mofrr synth --apis ...)")
        dataset = open_dataset(data, split=split, resolution=resolution)
        if hasattr(dataset, "has_labels") and not dataset.has_labels:
            warnings.warn(f"{data}: pairs without labels: per-type columns, router and degree accuracy are "
                          "unavailable", stacklevel=2)
        count = min(n, len(dataset))
        return _Head(dataset, count), list(getattr(dataset, "types", DEFAULT_TYPES)), repr(dataset)
    thresholds = _degree_thresholds(degrees, data, resolution, quiet, fit_n)
    common = {"split": split, "resolution": resolution, "seed": seed, "apis": dict(apis) if apis else None,
              "degree_thresholds": thresholds}
    if ops == "balanced":
        types = list(DEFAULT_TYPES)
        parts = [open_dataset(data, ops=[t], length=n, **common) for t in types]
        parts.append(open_dataset(data, num_ops=OPS_MODES["multi"], length=n, **common))
        dataset = _Interleaved(parts, n)
        types = list(parts[0].types)
    else:
        if ops in OPS_MODES:
            dataset = open_dataset(data, num_ops=OPS_MODES[ops], length=n, **common)
        else:
            chosen = [o.strip() for o in ops.split(",") if o.strip()]
            if not chosen:
                raise ValueError(f"--ops {ops!r}: expected balanced, single, multi, mixed or a comma list of ops")
            dataset = open_dataset(data, ops=chosen, length=n, **common)
        types = list(dataset.types)
    source = getattr(thresholds, "cuts", None)
    description = (f"shards {data or '(default)'}: split {split}, ops {ops}, seed {seed}, apis {dict(apis or {})}, "
                   f"degrees {'PSNR thresholds' if source is not None else degrees}")
    return _Head(dataset, min(n, len(dataset))), types, description


def _open_dataset():
    try:
        from mofrr_core.data import open_dataset
    except ImportError:  # the package re-export may not exist yet
        from mofrr_core.data.folders import open_dataset
    return open_dataset


class _Interleaved:
    """Item ``i`` is item ``i`` of part ``i % len(parts)``: types take turns (white, smooth, face, eye,
    multi, white, ...) so any prefix is balanced, and item ``i`` uses face ``i``, so faces differ."""

    def __init__(self, parts: Sequence[Any], n: int) -> None:
        self.parts, self.n = list(parts), n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Mapping[str, Any]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.parts[index % len(self.parts)][index]


class _Head:
    """The first ``n`` items of a map-style dataset, loaded lazily."""

    def __init__(self, dataset: Any, n: int) -> None:
        self.dataset, self.n = dataset, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.dataset[i]


# -- the evaluation ----------------------------------------------------------------------------------
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


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def _batches(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def evaluate(pipeline: Pipeline | None, methods: Sequence[Method], samples: Sequence[Mapping[str, Any]],
             types: Sequence[str], steps: int | None = None, seed: int = 0, batch_size: int = 4,
             identity: bool = True, montage: int = 4, progress: bool = True) -> EvalResult:
    """Restore every sample with every method and measure fidelity, identity, router and degree accuracy.

    ``pipeline`` is the MoFRR pipeline whose router and degree estimators are scored (``None``: skip).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    types = list(types)
    reason = metrics.identity_unavailable_reason() if identity else "disabled (--no-identity)"
    embed = metrics.identity_embedding if reason is None else None
    records: list[dict[str, Any]] = []
    probabilities: list[list[float]] = []
    labels: list[list[float]] = []
    degree_pairs: dict[str, tuple[list[float], list[float]]] = {}
    seconds = dict.fromkeys((m.name for m in methods), 0.0)
    main = next((m for m in methods if m.kind == "mofrr"), None) or next(
        (m for m in methods if m.kind == "ablation"), None)
    rtypes = router_types(pipeline.router) if pipeline is not None else []
    scored_types = [t for t in types if t in rtypes]
    montage_rows: list[list[np.ndarray]] = []

    bar = tqdm(total=len(samples), desc="evaluating", unit="img", disable=not progress, file=sys.stderr)
    for batch in _batches(len(samples), batch_size):
        items = [samples[i] for i in batch]
        retouched = [s["retouched"].float() for s in items]
        originals_u8 = [to_uint8(s["original"]) for s in items]
        inputs_u8 = [to_uint8(t) for t in retouched]
        batch_records = []
        for s, inp, orig in zip(items, inputs_u8, originals_u8):
            label = [float(v) for v in s["labels"].tolist()]
            degree = [int(v) for v in s["degrees"].tolist()]
            record = {"key": str(s["key"]), "group": tables.group_of(label, types),
                      "types": [t for t, v in zip(types, label) if v > 0.5],
                      "labels": {t: int(v > 0.5) for t, v in zip(types, label)},
                      "degrees": {t: d for t, d in zip(types, degree)},
                      "input": {"psnr": _round(metrics.psnr(inp, orig)), "ssim": _round(metrics.ssim(inp, orig))},
                      "methods": {}}
            if embed is not None:
                record["_orig_emb"] = embed(orig)
                record["input"]["identity"] = _round(metrics.cosine(embed(inp), record["_orig_emb"]), 5)
            batch_records.append(record)
        restored_for_montage: dict[str, list[np.ndarray]] = {}
        for method in methods:
            start = time.perf_counter()
            out = method.restore(retouched, num_inference_steps=steps, seed=seed, output_type="np")
            seconds[method.name] += time.perf_counter() - start
            restored_for_montage[method.name] = out.images
            for j, (record, image, orig) in enumerate(zip(batch_records, out.images, originals_u8)):
                entry: dict[str, Any] = {"psnr": _round(metrics.psnr(image, orig)),
                                         "ssim": _round(metrics.ssim(image, orig))}
                entry["psnr_gain"] = _round(entry["psnr"] - record["input"]["psnr"])
                entry["ssim_gain"] = _round(entry["ssim"] - record["input"]["ssim"])
                if embed is not None:
                    entry["identity"] = _round(metrics.cosine(embed(image), record["_orig_emb"]), 5)
                if out.probabilities[j]:
                    entry["probabilities"] = out.probabilities[j]
                entry["experts_run"] = out.experts_run[j]
                if out.degrees and out.degrees[j]:
                    entry["degrees"] = out.degrees[j]
                record["methods"][method.name] = entry
            if method is main and scored_types:
                for j, s in enumerate(items):
                    probabilities.append([out.probabilities[j][t] for t in scored_types])
                    labels.append([float(s["labels"][types.index(t)]) for t in scored_types])
        if pipeline is not None:
            _collect_degrees(pipeline, retouched, items, types, degree_pairs)
        for k, record in enumerate(batch_records):
            record.pop("_orig_emb", None)
            if len(montage_rows) < montage:
                row = [inputs_u8[k], *(restored_for_montage[m.name][k] for m in methods), originals_u8[k]]
                if main is not None:
                    row.append(plots.abs_diff(restored_for_montage[main.name][k], originals_u8[k]))
                montage_rows.append(row)
        records.extend(batch_records)
        bar.update(len(batch))
    bar.close()

    groups = [r["group"] for r in records]
    columns = tables.columns_for(types, groups)
    router_reason = None
    router = None
    if pipeline is None or main is None:
        router_reason = "no MoFRR pipeline evaluated"
    elif not scored_types:
        router_reason = f"the router's types {rtypes} share none with the data's {types}"
    elif not any(any(lab) for lab in labels):
        router_reason = "the test pairs carry no labels"
    else:
        router = metrics.classification_report(np.asarray(probabilities), np.asarray(labels), scored_types,
                                                pipeline.threshold)
    routing = None if main is None or pipeline is None else tables.routing_table(
        records, main.name, columns, {slot.name: slot.retouch_type for slot in pipeline.experts})
    titles = ["input", *(m.name for m in methods), "original"] + ([f"|{main.name}-orig|x4"] if main else [])
    return EvalResult(
        records=records, types=types, columns=columns, summary=tables.summarize(records, columns),
        identity=tables.identity_values(records) if reason is None else None, identity_reason=reason,
        router=router, router_reason=router_reason, routing=routing,
        degree={name: metrics.degree_report(np.asarray(p), np.asarray(t)) for name, (p, t) in degree_pairs.items()},
        montage_rows=montage_rows, montage_titles=titles, weights={m.name: m.weights for m in methods},
        seconds={name: s / max(len(records), 1) for name, s in seconds.items()},
        descriptions={m.name: m.description for m in methods},
    )


@torch.no_grad()
def _collect_degrees(pipeline: Pipeline, retouched: list[torch.Tensor], items: Sequence[Mapping[str, Any]],
                     types: Sequence[str], pairs: dict[str, tuple[list[float], list[float]]]) -> None:
    """Each expert's degree estimate on the images where its op was applied, against the label."""
    size = (pipeline.resolution, pipeline.resolution)
    x = torch.cat([resize(t[None].to(pipeline.device), size) for t in retouched]).clamp(-1, 1)
    for slot in pipeline.experts:
        if slot.retouch_type not in types or not hasattr(slot.model, "estimate_degree"):
            continue
        j = types.index(slot.retouch_type)
        target = torch.tensor([int(s["degrees"][j]) for s in items])
        rows = (target > 0).nonzero().flatten()
        if rows.numel() == 0:
            continue
        estimator = type(slot.model).estimate_degree  # the class method: unaffected by ablation patches
        predicted = estimator(slot.model, x[rows.to(x.device)]).float().cpu()
        got = pairs.setdefault(slot.name, ([], []))
        got[0].extend(predicted.tolist())
        got[1].extend(target[rows].float().tolist())


# -- the report ----------------------------------------------------------------------------------------
def _write_text(path: Path, text: str) -> None:
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
    _write_text(path, render_table(result, meta))
    written.append(path)
    path = out / "per_image.json"
    _write_text(path, json.dumps(result.records, indent=1) + "\n")
    written.append(path)
    summary = {"meta": dict(meta), "types": result.types, "columns": result.columns, "fidelity": result.summary,
               "identity_model": metrics.IDENTITY_MODEL if result.identity is not None else None,
               "identity_skipped": result.identity_reason,
               "identity": {k: {"n": len(v), "mean": float(np.mean(v)) if v else None}
                            for k, v in (result.identity or {}).items()},
               "router": result.router, "router_skipped": result.router_reason, "degree": result.degree,
               "seconds_per_image": result.seconds, "weights": result.weights}
    path = out / "summary.json"
    _write_text(path, json.dumps(_finite(summary), indent=1, default=str) + "\n")
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


def build_methods(pipeline: Pipeline, ablations: Sequence[str], baselines: Sequence[str],
                  single_expert: str | None = None) -> list[Method]:
    """Baselines first, then the MoFRR rows (ablations, the full pipeline last)."""
    methods = [load_baseline(b, pipeline) for b in baselines]
    ordered = [a for a in ablations if a != "none"] + (["none"] if "none" in ablations else [])
    methods += [ablation(pipeline, a, single_expert) for a in dict.fromkeys(ordered)]
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"two methods share a name: {names}")
    return methods


def run(args: argparse.Namespace) -> int:
    """``mofrr eval``."""
    check_output(args.out, args.overwrite)
    if args.n <= 0:
        raise ValueError(f"-n must be positive, got {args.n}")
    apis = parse_apis(args.apis)
    pipeline = load_pipeline(args.pipeline, args.device, args.experts, args.allow_untrained)
    if not pipeline.experts and "none" in args.ablation:
        warnings.warn("the pipeline has no specialised expert (no weights installed? try --allow-untrained)",
                      stacklevel=1)
    if args.working_resolution:
        pipeline.resolution = args.working_resolution
    resolution = args.resolution or pipeline.resolution
    samples, types, description = load_samples(args.data, args.split, args.n, resolution, args.ops, apis,
                                               args.degrees, args.data_seed, args.quiet, args.fit_n)
    methods = build_methods(pipeline, args.ablation, args.baseline, args.single_expert)
    result = evaluate(pipeline, methods, samples, types, steps=args.steps, seed=args.seed,
                      batch_size=args.batch_size, identity=not args.no_identity, montage=args.montage,
                      progress=not args.quiet)
    meta = {"data": description, "split": args.split, "n": len(result.records), "resolution": resolution,
            "steps": args.steps or pipeline.num_inference_steps, "seed": args.seed, "apis": apis,
            "threshold": pipeline.threshold, "device": str(pipeline.device), "batch_size": args.batch_size,
            "command": "mofrr eval " + " ".join(_argv_of(args))}
    written = write_report(result, args.out, meta, overwrite=args.overwrite)
    if result.identity is None:
        print(f"identity similarity skipped: {result.identity_reason}")
    print(_headline(result))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _argv_of(args: argparse.Namespace) -> list[str]:
    """The options of this run that differ from the defaults, as command-line text (for the report)."""
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    parts = []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "quiet", "overwrite"):
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default and action.dest != "out":
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(value, bool):
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            parts.append(f"{flag} {' '.join(map(str, value))}")
        else:
            parts.append(f"{flag} {value}")
    return parts


def _headline(result: EvalResult) -> str:
    rows = []
    for name, entries in result.summary.items():
        e = entries[tables.ALL]
        gain = "" if name == tables.INPUT else f" ({e['psnr_gain']:+.2f} dB)"
        rows.append(f"{name}: {e['psnr']:.2f} dB / {e['ssim']:.3f}{gain}")
    return "all images: " + "; ".join(rows)
