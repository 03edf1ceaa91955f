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
no-idem, no-degree, no-hfcam and no-warp switch off a part of the *trained* WaveFRR experts at
inference time (config switches use_idem, use_degree, use_hfcam, use_warp: R = 0, constant degree 3,
HFCAM skipped, FlowWarp skipped), no-refine the Combine Module's refinement net (use_refinement);
the paper retrains a model per ablation instead (mofrr-train can, with the same switches).

With face shards the run writes two reports, in-domain/ (pairs made with the training implementations)
and held-out/ (only the implementations no weight was trained on, mofrr_core/retouch/heldout.yaml),
each with an untouched share of faces (do-no-harm table) and the router's detection table.

examples:
  mofrr eval --data ../shared/data/faces -n 600 --out report/       (in-domain/ and held-out/)
  mofrr eval --data ../shared/data/faces -n 600 --apis-set heldout --resolution 224 --out report224/
  mofrr eval --data pairs/test --pipeline trained/ --baseline shared unet runs/unet/final --out report/
  mofrr eval --data ../shared/data/faces --apis smooth=guided --out report-xapi/     (Table 3)
  mofrr eval --data ../shared/data/faces --ablation none no-router no-shared no-idem --out ablate/
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mofrr_core import metrics
from mofrr_core.data.shards import face_metadata
from mofrr_core.eval import plots, tables
from mofrr_core.eval.detection import detection_report, false_calls_by_group
from mofrr_core.eval.methods import ABLATION_HELP, ABLATIONS, Method, ablation, load_baseline
from mofrr_core.eval.report import EvalResult, check_output, headline, render_table, write_report, write_text_atomic
from mofrr_core.eval.samples import is_shards, load_samples
from mofrr_core.pipeline import Pipeline, load_pipeline, router_types
from mofrr_core.retouch.heldout import heldout_version
from mofrr_core.utils.image import resize, to_uint8


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
                           "images: the paper's Table 2 protocol), single, multi, mixed (0-4 ops), untouched (no "
                           "retouching: false calls and do no harm alone), or a comma list of ops applied to every "
                           "image (default: balanced)")
    data.add_argument("--apis", nargs="+", metavar="OP=API",
                      help="shards only: cross-implementation test (paper Table 3), e.g. smooth=guided: pairs made "
                           "only with that implementation of the op")
    data.add_argument("--degrees", default="auto",
                      help="shards only: degree labels: auto (the paper's PSNR thresholds fitted on the train "
                           "split, cached), none (strength fallback), or a thresholds JSON (default: auto)")
    data.add_argument("--fit-n", type=int, default=1000,
                      help="shards only: training samples per type when fitting degree thresholds (default: 1000)")
    data.add_argument("--data-seed", type=int, default=0,
                      help="shards only: seed of the pair generator; seed S takes the faces from face S x -n on")
    data.add_argument("--apis-set", choices=("both", "train", "heldout"), default="both",
                      help="shards only: which retouching implementations make the test pairs: train (in-domain), "
                           "heldout (mofrr_core/retouch/heldout.yaml: never trained on, the generalisation "
                           "test) or both, each in its own sub-report (default: both)")
    data.add_argument("--postprocess", default=None, metavar="PRESET",
                      help="shards only: degrade every input as a photo app's export would (app: resampling, "
                           "sharpening, noise, JPEG; jpeg: JPEG 60-100), untouched faces included (default: none)")
    data.add_argument("--no-untouched", action="store_true",
                      help="shards, --ops balanced: leave out the share of untouched faces (the paper's protocol)")
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


# -- the evaluation ----------------------------------------------------------------------------------
def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def _batches(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def _input_record(sample: Mapping[str, Any], inp: np.ndarray, orig: np.ndarray, types: Sequence[str],
                  embed: Any, labelled: bool = True) -> dict[str, Any]:
    """The per-image record of one test sample: its labels, degrees and the input's fidelity (pairs without
    labels go to the ``Unlabeled`` column, not to the untouched faces)."""
    label = [float(v) for v in sample["labels"].tolist()]
    degree = [int(v) for v in sample["degrees"].tolist()]
    record = {"key": str(sample["key"]), "group": tables.group_of(label, types) if labelled else tables.UNLABELED,
              "types": [t for t, v in zip(types, label) if v > 0.5],
              "labels": {t: int(v > 0.5) for t, v in zip(types, label)},
              "degrees": {t: d for t, d in zip(types, degree)},
              "input": {"psnr": _round(metrics.psnr(inp, orig)), "ssim": _round(metrics.ssim(inp, orig))},
              "methods": {}}
    if embed is not None:
        record["_orig_emb"] = embed(orig)
        record["input"]["identity"] = _round(metrics.cosine(embed(inp), record["_orig_emb"]), 5)
    return record


def _method_entry(image: np.ndarray, orig: np.ndarray, inp: np.ndarray, record: Mapping[str, Any], out: Any,
                  j: int, embed: Any) -> dict[str, Any]:
    """One method's numbers on image ``j`` of a batch (``out``: its PipelineOutput); on an untouched face
    also ``psnr_to_input``, what the method changed of a face it should leave alone."""
    entry: dict[str, Any] = {"psnr": _round(metrics.psnr(image, orig)), "ssim": _round(metrics.ssim(image, orig))}
    if record["group"] == tables.NONE:
        entry["psnr_to_input"] = _round(metrics.psnr(image, inp))
    entry["psnr_gain"] = _round(entry["psnr"] - record["input"]["psnr"])
    entry["ssim_gain"] = _round(entry["ssim"] - record["input"]["ssim"])
    if embed is not None:
        entry["identity"] = _round(metrics.cosine(embed(image), record["_orig_emb"]), 5)
    if out.probabilities[j]:
        entry["probabilities"] = out.probabilities[j]
    entry["experts_run"] = out.experts_run[j]
    if out.degrees and out.degrees[j]:
        entry["degrees"] = out.degrees[j]
    return entry


class _Tally:
    """What :func:`evaluate` collects over the batches."""

    def __init__(self, methods: Sequence[Method], pipeline: Pipeline | None, types: Sequence[str]) -> None:
        self.records: list[dict[str, Any]] = []
        self.probabilities: list[list[float]] = []
        self.labels: list[list[float]] = []
        self.degree_pairs: dict[str, tuple[list[float], list[float]]] = {}
        self.seconds = dict.fromkeys((m.name for m in methods), 0.0)
        self.montage_rows: list[list[np.ndarray]] = []
        self.main = next((m for m in methods if m.kind == "mofrr"), None) or next(
            (m for m in methods if m.kind == "ablation"), None)
        self.router_types = router_types(pipeline.router) if pipeline is not None else []
        self.labelled = True  # False for pairs without labels (original/ + retouched/ folders)
        self.scored_types = [t for t in types if t in self.router_types]


def _evaluate_batch(tally: _Tally, pipeline: Pipeline | None, methods: Sequence[Method],
                    items: Sequence[Mapping[str, Any]], types: Sequence[str], steps: int | None, seed: int,
                    embed: Any, montage: int) -> None:
    """Restore one batch with every method and add its numbers (and montage rows) to ``tally``."""
    retouched = [s["retouched"].float() for s in items]
    originals_u8 = [to_uint8(s["original"]) for s in items]
    inputs_u8 = [to_uint8(t) for t in retouched]
    batch_records = [_input_record(s, inp, orig, types, embed, tally.labelled)
                     for s, inp, orig in zip(items, inputs_u8, originals_u8)]
    restored_for_montage: dict[str, list[np.ndarray]] = {}
    for method in methods:
        start = time.perf_counter()
        out = method.restore(retouched, num_inference_steps=steps, seed=seed, output_type="np")
        tally.seconds[method.name] += time.perf_counter() - start
        restored_for_montage[method.name] = out.images
        for j, (record, image, orig) in enumerate(zip(batch_records, out.images, originals_u8)):
            record["methods"][method.name] = _method_entry(image, orig, inputs_u8[j], record, out, j, embed)
        if method is tally.main and tally.scored_types:
            for j, s in enumerate(items):
                tally.probabilities.append([out.probabilities[j][t] for t in tally.scored_types])
                tally.labels.append([float(s["labels"][types.index(t)]) for t in tally.scored_types])
    if pipeline is not None:
        _collect_degrees(pipeline, retouched, items, types, tally.degree_pairs)
    for k, record in enumerate(batch_records):
        record.pop("_orig_emb", None)
        if len(tally.montage_rows) < montage:
            row = [inputs_u8[k], *(restored_for_montage[m.name][k] for m in methods), originals_u8[k]]
            if tally.main is not None:
                row.append(plots.abs_diff(restored_for_montage[tally.main.name][k], originals_u8[k]))
            tally.montage_rows.append(row)
    tally.records.extend(batch_records)


def _router_report(tally: _Tally, pipeline: Pipeline | None,
                   types: Sequence[str]) -> tuple[dict[str, dict[str, float]] | None, str | None]:
    """The router's per-type accuracy, or ``None`` and the reason it was not measured."""
    if pipeline is None or tally.main is None:
        return None, "no MoFRR pipeline evaluated"
    if not tally.scored_types:
        return None, f"the router's types {tally.router_types} share none with the data's {list(types)}"
    if not tally.labelled or not tally.labels:
        return None, "the test pairs carry no labels"
    return metrics.classification_report(np.asarray(tally.probabilities), np.asarray(tally.labels),
                                         tally.scored_types, pipeline.thresholds_for(tally.scored_types)), None


def false_calls_per_group(result: EvalResult, meta_by_key: Mapping[str, Mapping[str, Any]],
                          thresholds: Mapping[str, float], by: Sequence[str] = ("race", "gender")
                          ) -> dict[str, Any] | None:
    """False calls of the router on the untouched faces of each FairFace group (``None`` without the labels),
    each type at its gate's threshold (``thresholds``)."""
    rows = [r for r in result.records if "probabilities" in r["methods"].get(result.main or "", {})]
    if not rows or result.detection is None or not all(r["key"] in meta_by_key for r in rows):
        return None
    types = [t for t in result.types if t in rows[0]["methods"][result.main]["probabilities"]]
    p = np.asarray([[r["methods"][result.main]["probabilities"][t] for t in types] for r in rows])
    y = np.asarray([[r["labels"][t] for t in types] for r in rows])
    return {name: false_calls_by_group(p, y, [str(meta_by_key[r["key"]].get(name, "unknown")) for r in rows],
                                       types, [thresholds[t] for t in types]) for name in by}


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
    tally = _Tally(methods, pipeline, types)
    tally.labelled = getattr(getattr(samples, "dataset", samples), "has_labels", True)
    bar = tqdm(total=len(samples), desc="evaluating", unit="img", disable=not progress, file=sys.stderr)
    for batch in _batches(len(samples), batch_size):
        _evaluate_batch(tally, pipeline, methods, [samples[i] for i in batch], types, steps, seed, embed, montage)
        bar.update(len(batch))
    bar.close()

    records, main = tally.records, tally.main
    columns = tables.columns_for(types, [r["group"] for r in records])
    router, router_reason = _router_report(tally, pipeline, types)
    detection = None if router is None else detection_report(
        np.asarray(tally.probabilities), np.asarray(tally.labels), tally.scored_types,
        pipeline.thresholds_for(tally.scored_types))
    routing = None if main is None or pipeline is None else tables.routing_table(
        records, main.name, columns, {slot.name: slot.retouch_type for slot in pipeline.experts})
    titles = ["input", *(m.name for m in methods), "original"] + ([f"|{main.name}-orig|x4"] if main else [])
    return EvalResult(
        records=records, types=types, columns=columns, summary=tables.summarize(records, columns),
        identity=tables.identity_values(records) if reason is None else None, identity_reason=reason,
        router=router, router_reason=router_reason, routing=routing, detection=detection,
        main=main.name if main is not None else None,
        degree={name: metrics.degree_report(np.asarray(p), np.asarray(t))
                for name, (p, t) in tally.degree_pairs.items()},
        montage_rows=tally.montage_rows, montage_titles=titles, weights={m.name: m.weights for m in methods},
        seconds={name: s / max(len(records), 1) for name, s in tally.seconds.items()},
        descriptions={m.name: m.description for m in methods},
    )


@torch.no_grad()
def _collect_degrees(pipeline: Pipeline, retouched: list[torch.Tensor], items: Sequence[Mapping[str, Any]],
                     types: Sequence[str], pairs: dict[str, tuple[list[float], list[float]]]) -> None:
    """Each expert's degree estimate on the images where its op was applied, against the label."""
    size = (pipeline.resolution, pipeline.resolution)
    x = torch.cat([resize(t[None].to(pipeline.device), size) for t in retouched]).clamp(-1, 1)
    for slot in pipeline.experts:
        if slot.retouch_type not in types or not hasattr(slot.model, "degree_estimator"):
            continue
        j = types.index(slot.retouch_type)
        target = torch.tensor([int(s["degrees"][j]) for s in items])
        rows = (target > 0).nonzero().flatten()
        if rows.numel() == 0:
            continue
        predicted = slot.model.degree_estimator.expected_degree(x[rows.to(x.device)]).float().cpu()
        got = pairs.setdefault(slot.name, ([], []))
        got[0].extend(predicted.tolist())
        got[1].extend(target[rows].float().tolist())


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


APIS_SET_FOLDERS = {"train": "in-domain", "heldout": "held-out"}


def run(args: argparse.Namespace) -> int:
    """``mofrr eval``: one report, or with ``--apis-set both`` (shards) an in-domain and a held-out report."""
    if args.n <= 0:
        raise ValueError(f"-n must be positive, got {args.n}")
    shards = is_shards(args.data)
    sets = ["train", "heldout"] if args.apis_set == "both" and shards else [args.apis_set]
    if not shards:
        sets = [None]
    outs = {s: args.out / APIS_SET_FOLDERS[s] if len(sets) > 1 else args.out for s in sets}
    for out in outs.values():
        check_output(out, args.overwrite)
    if len(outs) > 1 and (args.out / "table.md").exists() and not args.overwrite:
        raise FileExistsError(f"{args.out / 'table.md'} exists; pass --overwrite to replace it or choose another --out")
    pipeline = load_pipeline(args.pipeline, args.device, args.experts, args.allow_untrained)
    if not pipeline.experts and "none" in args.ablation:
        warnings.warn("the pipeline has no specialised expert (no weights installed? try --allow-untrained)",
                      stacklevel=1)
    if args.working_resolution:
        pipeline.resolution = args.working_resolution
    meta_by_key = face_metadata(args.data) if shards else None
    tables_md = []
    for apis_set, out in outs.items():
        table = _run_one(args, pipeline, apis_set, out, meta_by_key)
        tables_md.append(f"# {APIS_SET_FOLDERS.get(apis_set, 'evaluation')}\n\n" + table.split("\n", 1)[1])
    if len(outs) > 1:
        path = args.out / "table.md"
        write_text_atomic(path, "\n".join(tables_md))
        print(f"wrote {path} (both reports)")
    return 0


def _run_one(args: argparse.Namespace, pipeline: Pipeline, apis_set: str | None, out: Path,
             meta_by_key: Mapping[str, Mapping[str, Any]] | None) -> str:
    """Evaluate on one set of implementations, write its report in ``out``; returns its table.md text."""
    apis = parse_apis(args.apis)
    resolution = args.resolution or pipeline.resolution
    extra = {} if apis_set is None else {"apis_set": apis_set, "postprocess": args.postprocess,
                                         "untouched": not args.no_untouched}
    samples, types, description = load_samples(args.data, args.split, args.n, resolution, args.ops, apis,
                                               args.degrees, args.data_seed, args.quiet, args.fit_n, **extra)
    methods = build_methods(pipeline, args.ablation, args.baseline, args.single_expert)
    result = evaluate(pipeline, methods, samples, types, steps=args.steps, seed=args.seed,
                      batch_size=args.batch_size, identity=not args.no_identity, montage=args.montage,
                      progress=not args.quiet)
    if meta_by_key:
        result.false_calls = false_calls_per_group(result, meta_by_key, pipeline.gate_thresholds)
    meta = {"data": description, "split": args.split, "n": len(result.records), "resolution": resolution,
            "steps": args.steps or pipeline.num_inference_steps, "seed": args.seed, "apis": apis,
            "apis_set": apis_set, "heldout_version": heldout_version() if apis_set else None,
            "threshold": pipeline.threshold, "gate_thresholds": pipeline.gate_thresholds,
            "device": str(pipeline.device), "batch_size": args.batch_size,
            "command": "mofrr eval " + " ".join(_argv_of(args))}
    written = write_report(result, out, meta, overwrite=args.overwrite)
    if result.identity is None:
        print(f"identity similarity skipped: {result.identity_reason}")
    print(f"[{APIS_SET_FOLDERS.get(apis_set, 'evaluation')}] " + headline(result))
    print("wrote " + ", ".join(str(p) for p in written))
    return render_table(result, meta)


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
