"""Restore the original face(s) in retouched photos.

By default every face is detected (a landmark provider: pip install 'mofrr[landmarks]'),
aligned to the training geometry, restored and pasted back with a feathered mask; --aligned
treats each input as one pre-aligned face crop. Outputs are written atomically as PNG (by
default) and an existing output is never replaced without --overwrite.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mofrr_core.io import ImageLoadError, load_image, plan_outputs, resolve_inputs, save_image_atomic
from mofrr_core.pipeline import Pipeline


class NoFaceError(RuntimeError):
    """No face was found in an image (whole-photo mode)."""


@dataclass
class RestoreResult:
    """A restored photo and what happened to each of its faces."""

    image: np.ndarray
    faces: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip inputs whose output exists (resume an interrupted batch)")
    parser.add_argument("--ext", default=".png", help="output format by suffix (default .png, lossless)")
    parser.add_argument("--aligned", action="store_true",
                        help="inputs are aligned face crops: skip face detection and paste-back")
    parser.add_argument("--max-faces", type=int, default=8, help="restore at most N faces per photo (largest)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write a forensic report per image (JSON, difference heatmap, side-by-side)")
    source = parser.add_argument_group("which pipeline")
    source.add_argument("--registry", type=Path, help="registry.yaml to build the pipeline from (default: packaged)")
    source.add_argument("--pipeline", type=Path, help="a folder written by Pipeline.save_pretrained")
    source.add_argument("--experts", help="comma-separated expert names to use (default: all in the registry)")
    source.add_argument("--allow-untrained", action="store_true",
                        help="build experts without weights untrained (identity) instead of skipping them")
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument("--steps", type=int, help="DDIM steps (default: from the registry)")
    sampling.add_argument("--seed", type=int, default=0, help="random seed (results are deterministic per seed)")
    sampling.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")


def load_pipeline(args: argparse.Namespace) -> Pipeline:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.pipeline:
        return Pipeline.from_pretrained(args.pipeline, device=device)
    experts = [e.strip() for e in args.experts.split(",") if e.strip()] if args.experts else None
    return Pipeline.from_registry(args.registry, experts=experts, device=device,
                                  allow_untrained=args.allow_untrained)


def face_detector():
    """The highest-priority installed landmark provider's ``detect`` function."""
    from mofrr_core.plugins import get_landmark_providers

    providers = sorted(get_landmark_providers().values(), key=lambda p: -p.priority)
    errors = []
    for provider in providers:
        try:
            return provider.factory()
        except ImportError as error:  # optional dependency not installed: try the next one
            errors.append(f"{provider.name}: {error}")
    raise RuntimeError("no face landmark provider is installed (pip install 'mofrr[landmarks]'), "
                       "or pass --aligned for pre-aligned face crops" + (f" [{'; '.join(errors)}]" if errors else ""))


def restore_photo(pipeline: Pipeline, image: np.ndarray, *, aligned: bool, detector=None, max_faces: int = 8,
                  steps: int | None = None, seed: int = 0) -> RestoreResult:
    """Restore one photo: the whole image as a crop (``aligned``) or every detected face."""
    start = time.perf_counter()
    if aligned:
        out = pipeline([image], num_inference_steps=steps, seed=seed, output_type="np")
        return RestoreResult(out.images[0], [face_info(out, 0)], {"restore_s": time.perf_counter() - start})
    from mofrr_core.faces import align_face, estimate_alignment, paste_back, points5_from_landmarks

    faces = detector(image)
    detect_s = time.perf_counter() - start
    if not faces:
        raise NoFaceError("no face found (use --aligned if this is a face crop)")
    points = [points5_from_landmarks(np.asarray(getattr(f, "points", f))) for f in faces]
    order = sorted(range(len(points)), key=lambda i: -np.ptp(points[i][:, 0]))[:max_faces]  # largest first
    restored, infos = image, []
    for rank, i in enumerate(order):
        matrix = estimate_alignment(points[i], pipeline.resolution)
        crop = align_face(image, matrix, pipeline.resolution)
        out = pipeline([crop], num_inference_steps=steps, seed=seed + rank, output_type="np")
        restored = paste_back(restored, out.images[0], matrix)
        infos.append({**face_info(out, 0), "points5": np.round(points[i], 1).tolist()})
    return RestoreResult(restored, infos, {"detect_s": detect_s, "restore_s": time.perf_counter() - start - detect_s})


def face_info(out, i: int) -> dict[str, Any]:
    return {"probabilities": out.probabilities[i], "experts_run": out.experts_run[i], "degrees": out.degrees[i]}


def describe(faces: list[dict[str, Any]], threshold: float) -> str:
    parts = []
    for face in faces:
        found = [f"{t} ({p:.2f})" for t, p in face["probabilities"].items() if p > threshold]
        parts.append(f"found {', '.join(found) or 'no retouching'}; experts run: {', '.join(face['experts_run'])}")
    return " | ".join(parts)


def run(args: argparse.Namespace) -> int:
    inputs = resolve_inputs(args.inputs)
    plan = plan_outputs(inputs, args.output, ext=args.ext, overwrite=args.overwrite,
                        skip_existing=args.skip_existing)
    todo = [(src, dst) for src, dst, action in plan if action == "write"]
    skipped = len(plan) - len(todo)
    if not todo:
        print(f"nothing to do ({skipped} output(s) exist; --overwrite to replace them)")
        return 0
    pipeline = load_pipeline(args)
    detector = None if args.aligned else face_detector()
    if args.report:
        from mofrr_core.report import write_report
    failures = 0
    for src, dst in tqdm(todo, desc="restoring", unit="img", disable=len(todo) < 2, file=sys.stderr):
        try:
            image = load_image(src)
            result = restore_photo(pipeline, image, aligned=args.aligned, detector=detector,
                                   max_faces=args.max_faces, steps=args.steps, seed=args.seed)
            save_image_atomic(result.image, dst, overwrite=args.overwrite)
            if args.report:
                write_report(args.report, dst.stem, image, result.image, report_info(pipeline, args, src, result))
        except (ImageLoadError, NoFaceError) as error:
            failures += 1
            tqdm.write(f"error: {src}: {error}" if str(src) not in str(error) else f"error: {error}", file=sys.stderr)
            continue
        tqdm.write(f"{src} -> {dst}: {describe(result.faces, pipeline.threshold)}")
    done = len(todo) - failures
    print(f"restored {done} image(s) into {args.output}" + (f", {failures} failed" if failures else "")
          + (f", {skipped} skipped" if skipped else ""))
    return 1 if failures else 0


def report_info(pipeline: Pipeline, args: argparse.Namespace, src: Path, result: RestoreResult) -> dict[str, Any]:
    return {
        "input": str(src),
        "faces": result.faces,
        "ddim_steps": args.steps or pipeline.num_inference_steps,
        "seed": args.seed,
        "threshold": pipeline.threshold,
        "resolution": pipeline.resolution,
        "weights_sha256": pipeline.weights,
        "timings": result.timings,
    }
