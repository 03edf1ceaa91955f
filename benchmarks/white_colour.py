"""How much of a whitening colour statistics give away: a colour detector next to the router's white gate.

Usage: python benchmarks/white_colour.py [--data DIR] [--train-n 1200] [-n 300] [--split val|test]
                                         [--scales 1,1.25] [--features colour|router] [--out report.json]

Whitening is confounded with skin tone and exposure: a light face may be whitened or just light. A whitening
still leaves colour relations a person would check: the face against the neck and the surroundings (an edit on
the skin or the face oval stops there), the skin against the lips and the eyes, the spread of lightness on the
skin and the photo's black and white points (a tone curve on the whole image lifts them). This measures what
such statistics add to the router. Whitened, untouched, smoothed, face-lifted and eye-enlarged whole photos
(``load_samples``, a different face for every photo), each resized by one of ``--scales`` in turn after the
retouching, go through the installed landmark provider (MediaPipe, 478 points); per photo, 37 numbers: CIELAB
means, lightness spread and fine-detail energy of six landmark regions of the largest face (skin, cheeks, lips,
eyes, neck, a ring around the face), lightness percentiles of the skin and of the photo, and skin minus each
of neck, ring, lips and eyes. A logistic regression on them is fitted on training-split photos retouched with the
training implementations (whitened against all the others), then scored on ``--split`` photos retouched with
the held-out ones: ROC AUC of the colour score, of the router's white probability (as whole-photo mode
computes it) and of their sum in logits, whitened against untouched and against smoothed photos (the white
gate's most frequent confusion). Not a test and not shipped: a yardstick for what a colour detector could add.
``--features router`` fits the same regression on the router's own pooled features of the view the white gate
reads instead (a linear probe of the frozen router): what a white gate retrained on the same backbone could do.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from landmark_geometry import LastPhotoDetector, detector_parser, fit_logistic, gather

from mofrr_core.eval.detection import roc_auc
from mofrr_core.pipeline import Pipeline, load_pipeline
from mofrr_core.restore import NoFaceError, photo_faces
from mofrr_core.retouch import landmarks as mp
from mofrr_core.retouch.masks import polygon_mask
from mofrr_core.utils.image import to_tensor_list

KINDS = {"white": 40, "untouched": 41, "smooth": 42, "face": 43, "eye": 44}  # kind -> data seed


def regions(shape: tuple[int, ...], points: np.ndarray) -> dict[str, np.ndarray]:
    """Binary masks of six regions of a face from its 478 MediaPipe points."""
    def poly(indices: list[int]) -> np.ndarray:
        return polygon_mask(shape, points[indices])

    oval = poly(mp.MP_FACE_OVAL)
    features = sum(poly(i) for i in (mp.MP_LEFT_EYE, mp.MP_RIGHT_EYE, mp.MP_LEFT_BROW, mp.MP_RIGHT_BROW, mp.MP_LIPS))
    x0, x1 = points[mp.MP_JAW, 0].min(), points[mp.MP_JAW, 0].max()
    chin, height = points[mp.MP_CHIN, 1], points[mp.MP_CHIN, 1] - points[10, 1]  # 10: top of the forehead
    neck = np.zeros(shape[:2], np.float32)
    top, bottom = max(int(chin + 0.05 * height), 0), max(min(int(chin + 0.35 * height), shape[0]), 0)
    neck[top:bottom, max(int(x0 + 0.25 * (x1 - x0)), 0):max(int(x1 - 0.25 * (x1 - x0)), 0)] = 1
    ring = cv2.dilate(oval, np.ones((15, 15), np.uint8)) * (1 - oval)
    return {"skin": oval * (features == 0), "cheeks": np.maximum(poly(mp.MP_LEFT_CHEEK), poly(mp.MP_RIGHT_CHEEK)),
            "lips": poly(mp.MP_LIPS), "eyes": np.maximum(poly(mp.MP_LEFT_EYE), poly(mp.MP_RIGHT_EYE)),
            "neck": neck * (1 - oval), "ring": ring}


def colour_statistics(photo: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The 37 numbers of a photo's largest face (``nan`` where a region is empty or cut off)."""
    lab = cv2.cvtColor(photo, cv2.COLOR_RGB2LAB).astype(np.float32) - np.float32([0, 128, 128])
    lab[..., 0] *= 100 / 255
    detail = np.abs(lab[..., 0] - cv2.GaussianBlur(lab[..., 0], (0, 0), 1.0))
    masks, means, out = regions(photo.shape, points), {}, []
    for name, mask in masks.items():
        inside = mask > 0.5
        pixels = lab[inside] if inside.sum() >= 5 else np.full((1, 3), np.nan, np.float32)
        means[name] = pixels.mean(0)
        out += [*means[name], pixels[:, 0].std(), detail[inside].mean() if inside.sum() >= 5 else np.nan]
    skin = lab[masks["skin"] > 0.5][:, 0]
    out += list(np.percentile(skin, [5, 50, 95])) if skin.size >= 5 else [np.nan] * 3
    out += list(np.percentile(lab[..., 0], [1, 5, 50, 95, 99]))
    for other in ("neck", "ring", "lips", "eyes"):
        out += list(means["skin"] - means[other])
    return np.array(out, dtype=np.float64)


def router_features(pipeline: Pipeline, detector: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A ``describe`` giving the router's pooled features of the largest face's view that its white gate reads
    (a close-up's resized crop with ``router_context_types``, else the router's view); ``nan`` without a face."""
    width = pipeline.router.feature_dim

    @torch.no_grad()
    def describe(photo: np.ndarray, points: np.ndarray) -> np.ndarray:
        try:
            _, crops, views = photo_faces(pipeline, photo, detector, max_faces=1)
        except NoFaceError:
            return np.full(width, np.nan)
        white = (views.gate_images or {}).get("white", [None])[0]
        face = to_tensor_list([white if white is not None else
                               (crops[0] if views.images is None else views.images[0])])[0].to(pipeline.device)
        return pipeline.router.features(pipeline.router_input([face], None, [face]))[0].cpu().double().numpy()

    return describe


def evaluate(train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, float]]]:
    """Per negative kind and photo scale: ROC AUC of the regression fitted on ``features`` (``regression``: colour
    statistics or router features), of the router's white probability and of their sum."""
    mean = np.nanmean(train["features"], 0)
    std = np.nanstd(train["features"], 0) + 1e-6
    scaled = {name: np.nan_to_num((part["features"] - mean) / std) for name, part in (("train", train), ("test", test))}
    w, b = fit_logistic(scaled["train"], (train["kind"] == "white").astype(float))
    fitted = scaled["test"] @ w + b
    router, read = np.clip(test["router"][:, 0], 1e-6, 1 - 1e-6), ~np.isnan(test["router"][:, 0])
    both = fitted + np.log(router / (1 - router))
    scores = {"regression": fitted, "router": router, "sum": both}
    report: dict[str, dict[str, dict[str, float]]] = {}
    for against in ("untouched", "smooth"):
        for scale in np.unique(test["scale"]):
            rows = np.isin(test["kind"], ["white", against]) & (test["scale"] == scale) & read
            positive = test["kind"][rows] == "white"
            report.setdefault(against, {})[str(scale)] = {
                "n": int(rows.sum()), **{name: roc_auc(score[rows], positive) for name, score in scores.items()}}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = detector_parser(__doc__, 1200, 300, "1,1.25")
    parser.add_argument("--features", default="colour", choices=["colour", "router"],
                        help="what the regression reads: the 37 colour statistics, or the router's own pooled "
                             "features of the white gate's view (default: colour)")
    args = parser.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",")]
    pipeline = load_pipeline(None, None, label="pipeline")
    detector = LastPhotoDetector()  # one detection per photo for the landmarks, the router and router_features
    describe = colour_statistics if args.features == "colour" else router_features(pipeline, detector)
    common = {"kinds": KINDS, "describe": describe, "router_types": ("white",), "detector": detector}
    train = gather("train", "train", args.train_n, scales, args.data, **common)
    test = gather(args.split, "heldout", args.n, scales, args.data, pipeline, **common)
    report = evaluate(train, test)
    name = {"colour": "colour statistics", "router": "router features"}[args.features]
    print(f"ROC AUC of whitened against other photos ({args.split}, held-out implementations; {name} "
          f"fitted on {len(train['kind'])} training photos)\n")
    print(f"| whitened against | photo scale | photos | {name} | router | sum of logits |\n"
          "|---|---|---|---|---|---|")
    for against, rows in report.items():
        for scale, r in rows.items():
            print(f"| {against} | x{float(scale):g} | {r['n']} | {r['regression']:.2f} | {r['router']:.2f} | "
                  f"{r['sum']:.2f} |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
