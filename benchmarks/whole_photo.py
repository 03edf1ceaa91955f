"""Whole-photo restoration on full 224 px FairFace crops: the do-no-harm and held-out targets (not a test).

Usage: python benchmarks/whole_photo.py [--data DIR] [--split test|val] [-n 300] [--apis-set heldout|train]
                                        [--ops balanced|untouched] [--apis OP=API ...] [--photo-scale S]
                                        [--condition NAME] [--reframe B [--reframe-jpeg Q]] [--postprocess app]
                                        [--min-sharpness S] [--pipeline REGISTRY_OR_DIR]
                                        [--steps K] [--seed S] [--out report.json]

``mofrr eval`` scores aligned 128 px crops; this scores what ``mofrr restore`` (without ``--aligned``)
does to a whole photo. The faces are the ``mofrr eval --ops balanced`` samples (white, smooth, face,
eye, multi 2-4 ops, untouched, in turn; :func:`mofrr_core.eval.samples.load_samples`) at their native
224 px, retouched by the engine with the ``--apis-set`` implementations (``heldout``: the ones no
weight was trained on, ``mofrr_core/retouch/heldout.yaml``). Each retouched image goes through
:func:`mofrr_core.restore.restore_photo` with the installed landmark provider (MediaPipe): detect,
align, restore, paste back inside the feathered face mask. So the numbers include what the mask
leaves alone: a whole-image edit also changes hair, neck and background, which no restoration reaches.

Measured on the whole image, per column: PSNR(input, original), PSNR(restored, original), the gain,
the share of images the restoration made worse than its input, and the mask ceiling (the PSNR if
every pixel the paste-back may change were restored exactly and the others kept). Untouched faces:
PSNR(output, input) (mean, share >= 45 dB, share < 40 dB, worst), the share where no expert ran (the
shared expert counts: it runs unless the pipeline passes untouched faces through) and where no router
gate fired. Detection: the router's ROC AUC, ECE and false calls (``mofrr eval``'s table) on the largest
face of each photo, as whole-photo mode aligned it.
``--postprocess app`` gives every input (untouched ones too) a photo app's export: resampling, sharpening,
noise, JPEG 60-100 (:mod:`mofrr_core.retouch.postprocess`; the original stays the target).
``--photo-scale S`` resizes every photo, original and input alike, by ``S`` after the retouching (a photo
exported or shared at another size: the interpolation traces of a retouching warp do not survive it).
``--condition NAME`` changes every photo, original and input alike, after the retouching (and the resizing) in one
of the ways of ``benchmarks/photo_conditions.py`` (sharpened, denoised, re-exposed, re-compressed, re-sized,
reframed): what the restoration, not only the router, does to photos that differ from FairFace.
``--reframe B`` frames every photo looser (a reflected border of ``B`` times its side) and brings it back to 224 px
*before* the retouching, as a portrait cropped looser and resized before an app retouched it: the face smaller,
no JPEG grid, the retouching's traces kept (:func:`mofrr_core.data.realign.reframe_for_retouch`); ``--reframe-jpeg Q``
saves the reframed photo as a JPEG of quality Q first, with a fresh grid.
``--min-sharpness 2.0`` keeps the faces with real skin detail (FairFace's sharpness metadata; 180 of the 1102 test
faces, each used more than once beyond that): the closest these shards come to sharp studio portraits.
Images where no face is found are left out of the PSNR numbers and counted per column ("no face").
``--ops untouched`` leaves every face untouched (``-n 1102 --split test``: the whole test split) and breaks
the do-no-harm numbers down by FairFace race and gender group: with a sixth of 300 photos untouched a group
holds a dozen faces and one false call moves it by 5-10 points; with the whole split it holds 100-190.
A pair folder whose ``manifest.json`` names each pair's implementation (``benchmarks/outside.py``) gets a table
per implementation too. The last table checks the targets of the generalisation issue. Progress goes to stderr,
the tables to stdout, the per-image numbers to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from photo_conditions import CONDITIONS, add_reframe_argument, reframe
from tqdm import tqdm

from mofrr_core.data.realign import SCALE_LIMITS, rescale_photo
from mofrr_core.data.shards import DataRootError, face_metadata
from mofrr_core.eval import tables
from mofrr_core.eval.detection import detection_report, false_calls_by_group, worst_group_rate
from mofrr_core.eval.run import parse_apis
from mofrr_core.eval.samples import is_shards, load_samples
from mofrr_core.faces import face_alignment, full_paste_mask
from mofrr_core.metrics import per_type_thresholds, psnr
from mofrr_core.pipeline import load_pipeline
from mofrr_core.restore import NoFaceError, face_detector, restore_photo
from mofrr_core.retouch.postprocess import POSTPROCESS_PRESETS
from mofrr_core.retouch.smoothing import REGION_SHARES, smoothing_region
from mofrr_core.utils.image import to_uint8

GROUPS = ("race", "gender")  # FairFace labels the untouched faces are broken down by
GOOD_DB, FLOOR_DB = tables.DO_NO_HARM_DB  # untouched faces: PSNR(output, input) for most of them / every one
KEPT_SHARE = 0.95  # share of untouched faces that must stay >= GOOD_DB and see no expert
WORSE_SHARE = 0.10  # held-out apis: share of images a column may make worse than the input
GROUP_SHARE = 0.05  # untouched faces: false calls per type allowed in every race and gender group


def reachable(faces: Sequence[Mapping[str, Any]], size: int, shape: tuple[int, ...],
              alignment: str = "similarity") -> np.ndarray:
    """``[H, W]`` bool: the pixels the paste-back of these faces (their ``points5``) may change."""
    reach = np.zeros(shape[:2], dtype=bool)
    for face in faces:
        matrix = face_alignment(np.asarray(face["points5"], dtype=np.float64), size, alignment)
        reach |= full_paste_mask(matrix, size, shape) > 0
    return reach


def measure(pipeline: Any, detector: Any, sample: Mapping[str, Any], types: Sequence[str], index: int,
            steps: int | None, seed: int, photo_scale: float = 1.0, condition: str = "none") -> dict[str, Any]:
    """One sample restored as a whole photo, and its numbers (``no_face`` when no usable face is found).
    ``photo_scale`` and then ``condition`` (:data:`photo_conditions.CONDITIONS`) change the original and the input
    alike."""
    original, retouched = (to_uint8(sample[key]) for key in ("original", "retouched"))
    if photo_scale != 1.0:
        original, retouched = rescale_photo(original, photo_scale), rescale_photo(retouched, photo_scale)
    original, retouched = (np.ascontiguousarray(CONDITIONS[condition](image)) for image in (original, retouched))
    record: dict[str, Any] = {"index": index, "key": sample.get("key"),
                              "group": tables.group_of(sample["labels"].tolist(), types),
                              "labels": [float(v) for v in sample["labels"].tolist()],
                              "input_psnr": psnr(retouched, original)}
    start = time.perf_counter()
    try:
        result = restore_photo(pipeline, retouched, aligned=False, detector=detector, steps=steps, seed=seed)
    except NoFaceError as error:
        record.update(no_face=True, reason=str(error), seconds=time.perf_counter() - start)
        return record
    record["seconds"] = time.perf_counter() - start
    record.update(no_face=False, faces=len(result.faces), restored_psnr=psnr(result.image, original),
                  psnr_to_input=psnr(result.image, retouched),
                  experts_run=[face["experts_run"] for face in result.faces],
                  detected=[face["detected"] for face in result.faces],
                  probabilities=result.faces[0]["probabilities"],  # the largest face: the one retouched
                  degrees=result.faces[0]["degrees"],
                  router_view=result.faces[0]["router_view"],
                  **{k: v for k, v in result.faces[0].items() if k == "gate_thresholds"})  # judged by its view
    reach = reachable(result.faces, pipeline.face_crop_size, original.shape, pipeline.alignment)
    # the best a paste-back can do: every pixel it may change restored exactly, the others kept
    record.update(mask_share=float(reach.mean()),
                  mask_ceiling=psnr(np.where(reach[..., None], original, retouched), original))
    record["gain"] = record["restored_psnr"] - record["input_psnr"]
    record["worse"] = bool(record["restored_psnr"] < record["input_psnr"])
    return record


def column_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``n`` (faces found), ``no_face`` and the mean PSNRs, gain, worse share and mask ceiling of some records."""
    found = [r for r in records if not r["no_face"]]
    stats: dict[str, float] = {"n": len(found), "no_face": len(records) - len(found)}
    if found:
        for key in ("input_psnr", "restored_psnr", "gain", "worse", "mask_ceiling"):
            stats[key] = float(np.mean([r[key] for r in found]))
    return stats


def untouched_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Do no harm on the untouched faces: PSNR(output, input) and how often no expert ran."""
    rows = [r for r in records if r["group"] == tables.NONE]
    found = [r for r in rows if not r["no_face"]]
    stats: dict[str, float] = {"n": len(found), "no_face": len(rows) - len(found)}
    if found:
        values = np.asarray([r["psnr_to_input"] for r in found], dtype=np.float64)
        stats.update(mean=float(values.mean()), good=float((values >= GOOD_DB).mean()),
                     below_floor=float((values < FLOOR_DB).mean()), worst=float(values.min()),
                     no_expert=float(np.mean([not any(r["experts_run"]) for r in found])),
                     no_gate=float(np.mean([not any(r["detected"]) for r in found])))
    return stats


def probability_rows(records: Sequence[Mapping[str, Any]], types: Sequence[str]) -> np.ndarray:
    """``[N, len(types)]``: the router's probabilities of ``types`` on each record's largest face."""
    return np.array([[r["probabilities"].get(t, 0.0) for t in types] for r in records])


def face_thresholds(records: Sequence[Mapping[str, Any]], types: Sequence[str],
                    threshold: float | Sequence[float]) -> np.ndarray:
    """``[N, len(types)]``: the thresholds each record's largest face was judged with: its own (``gate_thresholds``,
    a router calibrated per view) or ``threshold``."""
    base = per_type_thresholds(threshold, types)
    return np.array([[r["gate_thresholds"].get(t, b) for t, b in zip(types, base)] if r.get("gate_thresholds")
                     else list(base) for r in records], dtype=np.float64).reshape(len(records), len(types))


def untouched_by_group(records: Sequence[Mapping[str, Any]], types: Sequence[str],
                       threshold: float | Sequence[float], meta: Mapping[str, Mapping[str, Any]]
                       ) -> dict[str, dict[str, dict[str, float]]]:
    """Per FairFace grouping (:data:`GROUPS`) and group, on the untouched faces found: each gate's false-call
    rate and ``n`` (:func:`false_calls_by_group`), the share on which any expert ran and the worst
    PSNR(output, input)."""
    found = [r for r in records if r["group"] == tables.NONE and not r["no_face"]]
    if not found:
        return {}
    p = probability_rows(found, types)
    labels = np.zeros_like(p)
    result = {}
    for by in GROUPS:
        names = [str(meta.get(r["key"], {}).get(by, "unknown")) for r in found]
        rates = false_calls_by_group(p, labels, names, types, face_thresholds(found, types, threshold))
        for group, entry in rates.items():
            rows = [r for r, name in zip(found, names) if name == group]
            entry.update(expert=float(np.mean([any(r["experts_run"]) for r in rows])),
                         worst=float(min(r["psnr_to_input"] for r in rows)))
        result[by] = rates
    return result


def summarize(records: Sequence[Mapping[str, Any]], types: Sequence[str],
              threshold: float | Sequence[float] = 0.5,
              meta: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Per-column fidelity (the retouched columns and ``All``), the untouched-face numbers and the router's
    detection figures on the faces whole-photo mode found (``None`` without a found face); ``threshold``:
    one, or one per type (the pipeline's gate thresholds). With the faces' FairFace ``meta`` (by key), the
    untouched faces by group too."""
    columns = tables.columns_for(types, [r["group"] for r in records])
    fidelity = {c: column_stats([r for r in records if r["group"] == c]) for c in columns}
    fidelity[tables.ALL] = column_stats([r for r in records if r["group"] != tables.NONE])
    found = [r for r in records if not r["no_face"]]
    detection = None if not found else detection_report(
        probability_rows(found, types), np.array([r["labels"] for r in found]), types,
        face_thresholds(found, types, threshold))
    summary = {"fidelity": fidelity, "untouched": untouched_stats(records), "detection": detection,
               "native_share": float(np.mean([r["router_view"] == "native" for r in found])) if found else None}
    if meta is not None:
        summary["untouched_by_group"] = untouched_by_group(records, types, threshold, meta)
    implementations = sorted({r["implementation"] for r in records if r.get("implementation")})
    if implementations:
        summary["by_implementation"] = {name: column_stats([r for r in records if r.get("implementation") == name])
                                        for name in implementations}
    return summary


def fidelity_table(fidelity: Mapping[str, Mapping[str, float]]) -> str:
    head = ("| column | n | no face | input PSNR | restored PSNR | gain (dB) | worse than input | mask ceiling |\n"
            "|---|---|---|---|---|---|---|---|")
    rows = []
    for column, s in fidelity.items():
        cells = ([f"{s['input_psnr']:.2f}", f"{s['restored_psnr']:.2f}", f"{s['gain']:+.2f}", f"{s['worse']:.2f}",
                  f"{s['mask_ceiling']:.2f}"] if s["n"] else ["–"] * 5)
        rows.append(f"| {tables.title(column)} | {s['n']} | {s['no_face']} | " + " | ".join(cells) + " |")
    return "\n".join([head, *rows])


def untouched_table(s: Mapping[str, float]) -> str:
    head = (f"| n | no face | PSNR(output, input) mean | >= {GOOD_DB:g} dB | < {FLOOR_DB:g} dB | worst | "
            "no expert ran | no gate fired |\n|---|---|---|---|---|---|---|---|")
    cells = ([f"{s['mean']:.2f}", f"{s['good']:.2f}", f"{s['below_floor']:.2f}", f"{s['worst']:.2f}",
              f"{s['no_expert']:.2f}", f"{s['no_gate']:.2f}"] if s["n"] else ["–"] * 6)
    return head + f"\n| {s['n']} | {s['no_face']} | " + " | ".join(cells) + " |"


def gate_types(by_group: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The router types of an :func:`untouched_by_group` grouping (its entries' keys but the counts)."""
    return [t for t in next(iter(by_group.values())) if t not in ("n", "expert", "worst")]


def group_table(by_group: Mapping[str, Mapping[str, float]], by: str) -> str:
    """The untouched faces of each group: gate false calls, an expert run, worst PSNR(output, input)."""
    types = gate_types(by_group)
    lines = [f"| {by} | untouched faces | an expert ran | " + " | ".join(types) + " | worst (dB) |",
             "|---|---|---|" + "---|" * len(types) + "---|"]
    for group, e in by_group.items():
        lines.append(f"| {group} | {int(e['n'])} | {e['expert']:.1%} | " + " | ".join(f"{e[t]:.1%}" for t in types)
                     + f" | {e['worst']:.1f} |")
    return "\n".join(lines)


def targets(summary: Mapping[str, Any], apis_set: str) -> list[tuple[str, str, bool]]:
    """``(target, measured, met)`` for the issue's do-no-harm targets (held-out ones with ``heldout`` only)."""
    u, checks = summary["untouched"], []
    if u["n"]:
        checks += [(f"untouched: share >= {GOOD_DB:g} dB >= {KEPT_SHARE:.2f}", f"{u['good']:.2f}",
                    u["good"] >= KEPT_SHARE),
                   (f"untouched: worst >= {FLOOR_DB:g} dB", f"{u['worst']:.2f}", u["worst"] >= FLOOR_DB),
                   (f"untouched: no expert ran >= {KEPT_SHARE:.2f}", f"{u['no_expert']:.2f}",
                    u["no_expert"] >= KEPT_SHARE)]
    for by, groups in summary.get("untouched_by_group", {}).items():
        worst, where = worst_group_rate(groups, gate_types(groups))
        checks.append((f"untouched, every {by} group: false calls per type <= {GROUP_SHARE:.2f}",
                       f"{worst:.3f}" + (f" ({where})" if where else ""), worst <= GROUP_SHARE))
    if apis_set == "heldout":
        for column, s in summary["fidelity"].items():
            if column != tables.ALL and s["n"]:
                checks += [(f"{column}: gain > 0", f"{s['gain']:+.2f}", s["gain"] > 0),
                           (f"{column}: worse than input <= {WORSE_SHARE:.2f}", f"{s['worse']:.2f}",
                            s["worse"] <= WORSE_SHARE)]
    return checks


def report(summary: Mapping[str, Any], apis_set: str, description: str, seconds: float) -> str:
    lines = [f"Whole-photo restoration ({description}); {seconds:.2f} s per image in restore_photo (detect, "
             "restore, paste back).", "",
             "## Fidelity on the whole image (PSNR vs original; worse: share with restored < input)", "",
             fidelity_table(summary["fidelity"]), "", "## Untouched faces (do no harm)", "",
             untouched_table(summary["untouched"]), ""]
    if summary.get("by_implementation"):
        lines += ["## Retouched photos by implementation (the pair folder's manifest)", "",
                  fidelity_table(summary["by_implementation"]), ""]
    for by, groups in summary.get("untouched_by_group", {}).items():
        lines += [f"## Untouched faces by {by} (FairFace labels)", "", group_table(groups, by), ""]
    if summary.get("detection"):
        lines += ["## Detection (the router on the faces as whole-photo mode aligns them)", "",
                  tables.detection_table(summary["detection"]), "",
                  f"The router read the photo's own pixels (`router_view: native`) on {summary['native_share']:.0%} "
                  "of the photos with a face, a resized crop on the others.", ""]
    lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'yes' if met else 'NO'} |" for name, value, met in targets(summary, apis_set)]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("--split", default="test", choices=["test", "val"], help="face split (default: test)")
    parser.add_argument("-n", type=int, default=300, help="number of photos (default: 300)")
    parser.add_argument("--apis-set", default="heldout", choices=["heldout", "train"],
                        help="retouching implementations: held out from training (default) or the training ones")
    parser.add_argument("--ops", default="balanced", choices=["balanced", "untouched"],
                        help="balanced: the five retouched columns and untouched faces in turn; untouched: every "
                             "face untouched, broken down by race and gender (default: balanced)")
    parser.add_argument("--apis", nargs="+", metavar="OP=API", default=None,
                        help="retouch each op with this one implementation (e.g. face=idw; default: any of "
                             "the --apis-set)")
    parser.add_argument("--photo-scale", type=float, default=1.0,
                        help="resize every photo by this factor after the retouching (default: 1)")
    parser.add_argument("--condition", default="none", choices=list(CONDITIONS),
                        help="change every photo after the retouching as benchmarks/photo_conditions.py does "
                             "(default: none)")
    add_reframe_argument(parser)
    parser.add_argument("--smooth-region", default=None, choices=list(REGION_SHARES),
                        help="every smoothing filters this region, whatever its implementation declares (image: "
                             "the held-out smoothings on the whole photo, as a beauty app's slider may apply them; "
                             "default: their own region)")
    parser.add_argument("--postprocess", default=None, choices=[k for k, v in POSTPROCESS_PRESETS.items() if v],
                        help="degrade every input as a photo app's export would (default: none)")
    parser.add_argument("--min-sharpness", type=float, default=None,
                        help="only faces whose FairFace sharpness is at least this (2.0: real skin detail, 180 "
                             "test faces; the closest to studio portraits; default: every face)")
    parser.add_argument("--pipeline", type=Path, default=None,
                        help="registry.yaml or Pipeline.save_pretrained folder (default: the packaged registry)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: from the registry)")
    parser.add_argument("--seed", type=int, default=0,
                        help="data and sampling seed; seed S takes the faces from face S x -n on (default: 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--out", type=Path, default=None, help="write the per-image numbers to this JSON file")
    args = parser.parse_args(argv)
    try:
        args.apis = parse_apis(args.apis)
    except ValueError as error:
        parser.error(str(error))
    if args.n < 1:
        parser.error(f"-n must be positive, got {args.n}")
    if not SCALE_LIMITS[0] <= args.photo_scale <= SCALE_LIMITS[1]:
        parser.error(f"--photo-scale must be between {SCALE_LIMITS[0]:g} and {SCALE_LIMITS[1]:g}, "
                     f"got {args.photo_scale}")
    return args


def manifest_implementations(data: Path | None) -> dict[str, str]:
    """``{key: implementation}`` of a pair folder whose ``manifest.json`` names them (``benchmarks/outside.py``)."""
    path = data / "manifest.json" if data is not None else None
    if path is None or not path.is_file():
        return {}
    items = json.loads(path.read_text()).get("items", [])
    return {item["key"]: item["implementation"] for item in items if item.get("implementation")}


def face_labels(data: Path | None) -> dict[str, dict] | None:
    """The faces' FairFace labels by key: from the shards, or for a pair folder (``--data``) from ``$MOFRR_DATA``'s
    shards, which hold its faces' keys; ``None`` where there are no shards (no breakdown by group)."""
    try:
        return face_metadata(data if is_shards(data) else None)
    except DataRootError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    samples, types, description = load_samples(args.data, split=args.split, n=args.n, resolution=None,
                                               ops=args.ops, degrees="none", seed=args.seed, quiet=True,
                                               apis_set=args.apis_set, postprocess=args.postprocess,
                                               apis=args.apis, reframe=reframe(args.reframe, args.reframe_jpeg),
                                               min_sharpness=args.min_sharpness)
    detector = face_detector()
    pipeline = load_pipeline(args.pipeline, args.device, label="--pipeline")
    if args.photo_scale != 1.0:
        description += f", photos resized x{args.photo_scale:g} after retouching"
    if args.condition != "none":
        description += f", condition {args.condition} after retouching"
    if args.smooth_region is not None:
        description += f", smoothings on the {args.smooth_region} region"
    with smoothing_region(args.smooth_region):  # samples are retouched as they are read
        records = [measure(pipeline, detector, samples[i], types, i, args.steps, args.seed, args.photo_scale,
                           args.condition)
                   for i in tqdm(range(len(samples)), desc="whole photo", unit="img", file=sys.stderr)]
    implementations = manifest_implementations(args.data)
    for record in records:
        if record["key"] in implementations:
            record["implementation"] = implementations[record["key"]]
    meta = face_labels(args.data)
    summary = summarize(records, types, pipeline.thresholds_for(types), meta)
    seconds = float(np.mean([r["seconds"] for r in records]))
    print(report(summary, args.apis_set, description, seconds))
    if args.out:
        args.out.write_text(json.dumps({"description": description, "pipeline": str(args.pipeline or "packaged"),
                                        "apis_set": args.apis_set, "seconds_per_image": seconds,
                                        "summary": summary, "images": records}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
