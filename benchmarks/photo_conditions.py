"""The router on whole photos taken, lit and exported differently: detection and false calls per condition.

Usage: python benchmarks/photo_conditions.py [--data DIR] [--split test|val] [-n 600] [--apis-set heldout|train]
                                             [--conditions none,sharpen,...] [--pipeline REGISTRY_OR_DIR]
                                             [--seed S] [--retouch-scale S] [--reframe B [--reframe-jpeg Q]]
                                             [--out report.json] [--plot conditions.png]

A photo nobody has seen differs from FairFace in more than its retouching: studio light, a sharper or
cleaner camera, another size, another framing. A forensic router must not read those as retouching. This
takes the ``mofrr eval --ops balanced`` samples (white, smooth, face, eye, multi 2-4 ops, untouched, in
turn) at their native 224 px, retouched by the ``--apis-set`` implementations, changes every photo the
same way *after* the retouching (untouched ones too), and runs the router as ``mofrr restore`` does in
whole-photo mode (MediaPipe, the largest face, the registry's ``router_crop``). No expert runs.

Per condition: the share of photos the router read natively (``router_view``), ROC AUC per type and
retouched-vs-untouched (``any``), the share of untouched faces on which each gate fires at its threshold,
the share with any call (an untouched face that some expert would change), and the photos where no face
was found. The conditions (``CONDITIONS``): sharpening (unsharp mask, sigma 1 and 2), denoising (bilateral),
blur, brighter and darker exposure (gamma), JPEG 70, the photo at 0.6 and 1.5 times its size, enlarged by 1.3
and sharpened (an upscaled export), and a looser framing
(25 % more border on every side, reflected, the photo back at 256 px). ``--retouch-scale 2.5`` retouches every
face at 2.5 times its size and shrinks it back before the condition (untouched ones too), as a large photo
retouched by an app and exported small: what a warp or a filter leaves in the pixels is then mostly gone.
``--reframe 0.15`` frames every photo looser and resizes it back before the retouching (a portrait cropped and
resized before an app retouched it, as a shared photo often is): the face smaller, no JPEG grid, the traces kept; with
``--reframe-jpeg 90`` saved as a JPEG of quality 90 first, as a stored photo reaches an app (a fresh grid).
Tables go to stdout, progress to stderr, the numbers to ``--out`` (JSON) and a chart to ``--plot`` (PNG).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from mofrr_core.data.realign import rescale_photo
from mofrr_core.eval.detection import detection_report
from mofrr_core.eval.samples import load_samples
from mofrr_core.pipeline import load_pipeline
from mofrr_core.restore import face_detector, route_largest_face
from mofrr_core.retouch.postprocess import jpeg_roundtrip
from mofrr_core.utils.image import to_uint8


def unsharp(image: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma)
    return np.clip(image + amount * (image - blurred), 0, 255).astype(np.uint8)


def gamma(image: np.ndarray, value: float) -> np.ndarray:
    return np.clip(255.0 * (image / 255.0) ** value, 0, 255).astype(np.uint8)


def looser_framing(image: np.ndarray, border: float = 0.25, size: int = 256) -> np.ndarray:
    pad = round(image.shape[0] * border)
    framed = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    return cv2.resize(framed, (size, size), interpolation=cv2.INTER_AREA)


CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "sharpen": lambda x: unsharp(x, 1.0, 1.0),
    "sharpen-wide": lambda x: unsharp(x, 2.0, 0.8),
    "denoise": lambda x: cv2.bilateralFilter(x, 5, 20, 3),
    "blur": lambda x: cv2.GaussianBlur(x, (0, 0), 0.8),
    "brighter": lambda x: gamma(x, 0.75),
    "darker": lambda x: gamma(x, 1.3),
    "jpeg70": lambda x: jpeg_roundtrip(x, 70),
    "smaller": lambda x: rescale_photo(x, 0.6),
    "larger": lambda x: rescale_photo(x, 1.5),
    "upscaled-sharpened": lambda x: unsharp(rescale_photo(x, 1.3), 1.0, 0.7),
    "looser-framing": looser_framing,
}


def router_probabilities(pipeline: Any, detector: Any, image: np.ndarray, types: Sequence[str]
                         ) -> tuple[list[float], str] | None:
    """The router's probabilities of ``types`` for the largest face of a photo and what it read of it
    (``router_view``: native or resized); ``None``: no usable face."""
    routed = route_largest_face(pipeline, image, detector)
    return None if routed is None else ([routed[0][t] for t in types], routed[1])


def measure(pipeline: Any, detector: Any, photos: Sequence[np.ndarray], labels: np.ndarray,
            types: Sequence[str], condition: str) -> dict[str, Any]:
    """Detection figures of the router on ``photos`` changed by one condition."""
    change, rows, kept, views = CONDITIONS[condition], [], [], []
    for i, photo in enumerate(tqdm(photos, desc=condition, unit="img", file=sys.stderr, leave=False)):
        routed = router_probabilities(pipeline, detector, np.ascontiguousarray(change(photo)), types)
        if routed is not None:
            rows.append(routed[0])
            views.append(routed[1])
            kept.append(i)
    if not kept:
        return {"n": 0, "no_face": len(photos), "detection": None, "native_share": None}
    thresholds = [pipeline.thresholds_for(types, view) for view in views]  # a router calibrated per view
    report = detection_report(np.asarray(rows), labels[kept], types, np.asarray(thresholds))
    return {"n": len(kept), "no_face": len(photos) - len(kept), "detection": report,
            "native_share": float(np.mean([view == "native" for view in views]))}


def table(results: dict[str, dict[str, Any]], types: Sequence[str]) -> str:
    head = ("| condition | photos | no face | read native | " + " | ".join(f"AUC {t}" for t in types) + " | AUC any | "
            + " | ".join(f"untouched: {t} called" for t in types) + " | untouched: any call |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        d = r["detection"]
        if d is None:
            lines.append(f"| {name} | 0 | {r['no_face']} |" + " - |" * (2 * len(types) + 3))
            continue
        lines.append(f"| {name} | {r['n']} | {r['no_face']} | {r['native_share']:.0%} | "
                     + " | ".join(f"{d[t]['auc']:.2f}" for t in types)
                     + f" | {d['any']['auc']:.2f} | " + " | ".join(f"{d[t]['false_calls']:.0%}" for t in types)
                     + f" | {d['any']['false_calls']:.0%} |")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [n for n in results if results[n]["detection"] is not None]
    auc = [results[n]["detection"]["any"]["auc"] for n in names]
    called = [100 * results[n]["detection"]["any"]["false_calls"] for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.35 * len(names) + 1.5), sharey=True)
    left.barh(names, auc, color="tab:blue")
    left.axvline(0.95, color="k", ls="--", lw=1)
    left.set(xlim=(0.5, 1.0), xlabel="ROC AUC, retouched vs untouched (target 0.95)")
    right.barh(names, called, color="tab:red")
    right.axvline(5, color="k", ls="--", lw=1)
    right.set(xlim=(0, max(20, max(called) * 1.1)), xlabel="untouched photos with any call, % (target 5)")
    left.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("--split", default="test", choices=["test", "val"], help="face split (default: test)")
    parser.add_argument("-n", type=int, default=600, help="number of photos, a sixth of them untouched (default: 600)")
    parser.add_argument("--apis-set", default="heldout", choices=["heldout", "train"],
                        help="retouching implementations (default: heldout, the ones no weight was trained on)")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help=f"comma-separated conditions (default: all: {', '.join(CONDITIONS)})")
    parser.add_argument("--pipeline", type=Path, default=None,
                        help="registry YAML or saved pipeline folder (default: the installed model set)")
    parser.add_argument("--seed", type=int, default=0,
                        help="data seed; seed S takes the faces from face S x -n on (default: 0)")
    parser.add_argument("--retouch-scale", type=float, default=1.0,
                        help="retouch the faces at this many times their size, then shrink them back (1-4; default: 1)")
    add_reframe_argument(parser)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers to this JSON file")
    parser.add_argument("--plot", type=Path, default=None, help="write a chart of AUC any and untouched calls (PNG)")
    args = parser.parse_args(argv)
    args.conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in args.conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"--conditions: unknown {', '.join(unknown)} (known: {', '.join(CONDITIONS)})")
    return args


def retouch_size(scale: float) -> dict[str, Any] | None:
    """The ``retouch_size`` of ``load_samples`` for ``--retouch-scale`` (``None`` at 1: the native size)."""
    return None if scale == 1 else {"p": 1.0, "scale": [scale, scale]}


def add_reframe_argument(parser: argparse.ArgumentParser) -> None:
    """``--reframe B`` and ``--reframe-jpeg Q`` (this benchmark's, ``whole_photo.py``'s and ``outside.py``'s), read
    by :func:`reframe`."""
    parser.add_argument("--reframe", type=float, default=0.0,
                        help="before the retouching, add a reflected border of this share of the side and resize the "
                             "photo back (default: 0, off)")
    parser.add_argument("--reframe-jpeg", type=int, default=0, metavar="Q",
                        help="with --reframe: save the reframed photo as a JPEG of quality Q before the retouching, "
                             "as a stored photo reaches an app (default: 0, not saved)")


def reframe(border: float, jpeg: int = 0) -> dict[str, Any] | None:
    """The ``reframe`` of ``load_samples`` for ``--reframe`` and ``--reframe-jpeg`` (``None`` at border 0: the faces'
    own crops)."""
    if not border:
        return None
    return {"p": 1.0, "border": [border, border], **({"jpeg": [jpeg, jpeg]} if jpeg else {})}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    samples, types, description = load_samples(args.data, split=args.split, n=args.n, resolution=None,
                                               ops="balanced", degrees="none", seed=args.seed, quiet=True,
                                               apis_set=args.apis_set, retouch_size=retouch_size(args.retouch_scale),
                                               reframe=reframe(args.reframe, args.reframe_jpeg))
    pipeline = load_pipeline(args.pipeline, args.device, label="--pipeline")
    detector = face_detector()
    photos, labels = [], []
    for i in tqdm(range(len(samples)), desc="retouching", unit="img", file=sys.stderr):
        photos.append(to_uint8(samples[i]["retouched"]))
        labels.append(np.asarray(samples[i]["labels"], dtype=np.float64))
    results = {c: measure(pipeline, detector, photos, np.stack(labels), types, c) for c in args.conditions}
    print(f"Router on whole photos under photo conditions ({description}; thresholds: the gates' own)\n")
    print(table(results, types))
    if args.out:
        args.out.write_text(json.dumps({"description": description, "pipeline": str(args.pipeline or "packaged"),
                                        "results": results}, indent=1, default=float))
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
