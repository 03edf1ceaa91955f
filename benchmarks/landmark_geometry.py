"""How much of a warp the face's shape alone gives away: a landmark-geometry detector next to the router.

Usage: python benchmarks/landmark_geometry.py [--data DIR] [--train-n 2000] [-n 400] [--split val|test]
                                              [--scales 0.6,1,1.25] [--components 60] [--out report.json]

Face lifting and eye enlarging move pixels. Where a photo kept its pixels, the router reads the traces of that
move (the broken JPEG block pattern); where the photo was resized after the retouching, what is left is the
face's shape. This measures how far shape alone goes. Face-lifted, eye-enlarged and untouched whole photos
(``load_samples`` with ``ops`` face, eye, untouched; a different face for every photo), each resized by one of
``--scales`` in turn after the retouching, go through the installed landmark provider (MediaPipe, 478 points);
the largest face's points, aligned by a similarity transform on the eye corners and the nose line (which a
face lift does not move), are the features. A logistic regression on their first ``--components`` principal
components is fitted on training-split photos retouched with the training implementations, then scored on
``--split`` photos retouched with the held-out ones, per type against the untouched photos: ROC AUC of the
geometry score, of the router's probability (as whole-photo mode computes it), and of their sum in logits.
Not a test and not shipped: a yardstick for what a shape-based detector could add.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mofrr_core.data.realign import rescale_photo
from mofrr_core.eval.detection import roc_auc
from mofrr_core.eval.samples import load_samples
from mofrr_core.pipeline import load_pipeline
from mofrr_core.restore import face_detector, route_largest_face
from mofrr_core.utils.image import to_uint8

KINDS = {"face": 30, "eye": 31, "untouched": 32}  # kind -> data seed (faces from seed x n on)
ANCHORS = [168, 6, 197, 195, 5, 4, 1, 33, 133, 263, 362]  # MediaPipe: nose line and eye corners


class LastPhotoDetector:
    """A face detector that remembers its last photo, so that the landmarks, the router's view and a ``describe``
    of one photo come from one detection (give the same instance to a ``describe`` that detects faces itself)."""

    def __init__(self, detector: Callable[[np.ndarray], Any] | None = None) -> None:
        self.detector, self.photo, self.found = detector or face_detector(), None, None

    def __call__(self, image: np.ndarray) -> Any:
        if image is not self.photo:
            self.photo, self.found = image, self.detector(image)
        return self.found


def gather(split: str, apis_set: str, n: int, scales: Sequence[float], data: Path | None, pipeline: Any = None,
           kinds: dict[str, int] = KINDS, describe: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
           router_types: Sequence[str] = ("face", "eye"), detector: LastPhotoDetector | None = None
           ) -> dict[str, np.ndarray]:
    """Landmarks ``[N, P, 2]`` (in the unscaled photo's pixels), kind, scale, ``describe(photo, points)`` (the
    photo as resized and its largest face's points in it, if given) and (with ``pipeline``) the router's
    ``router_types`` probabilities of every photo in which a face was found; ``kinds``: kind -> data seed."""
    detector, rows = detector or LastPhotoDetector(), {"points": [], "kind": [], "scale": [], "router": [],
                                                       "features": []}
    for kind, seed in kinds.items():
        samples, _, _ = load_samples(data, split=split, n=n, resolution=None, ops=kind, degrees="none", seed=seed,
                                     quiet=True, apis_set=apis_set)
        for i in tqdm(range(len(samples)), desc=f"{split} {kind}", unit="img", file=sys.stderr):
            scale = scales[i % len(scales)]
            photo = to_uint8(samples[i]["retouched"])
            photo = np.ascontiguousarray(rescale_photo(photo, scale)) if scale != 1 else photo
            found = [np.asarray(getattr(f, "points", f), dtype=np.float64) for f in detector(photo) or []]
            if not found:
                continue
            points = max(found, key=lambda p: np.ptp(p[:, 0]))
            rows["points"].append(points / scale)
            rows["kind"].append(kind)
            rows["scale"].append(scale)
            rows["router"].append(router_probabilities(pipeline, detector, photo, router_types))
            if describe is not None:
                rows["features"].append(describe(photo, points))
    return {key: np.asarray(value) for key, value in rows.items()}


def router_probabilities(pipeline: Any, detector: Any, photo: np.ndarray, types: Sequence[str]) -> tuple[float, ...]:
    routed = None if pipeline is None else route_largest_face(pipeline, photo, detector)
    return tuple(np.nan if routed is None else routed[0][t] for t in types)


def aligned(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Every shape ``[N, P, 2]`` moved by the similarity that best maps its anchors onto ``reference``'s."""
    z = points[..., 0] + 1j * points[..., 1]
    ref = reference[ANCHORS, 0] + 1j * reference[ANCHORS, 1]
    anchors = z[:, ANCHORS]
    centre, ref_centre = anchors.mean(1, keepdims=True), ref.mean()
    a = anchors - centre
    factor = (np.conj(a) * (ref - ref_centre)).sum(1, keepdims=True) / (np.abs(a) ** 2).sum(1, keepdims=True)
    moved = factor * (z - centre) + ref_centre
    return np.stack([moved.real, moved.imag], -1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2-regularised logistic regression (LBFGS)."""
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def evaluate(train: dict[str, np.ndarray], test: dict[str, np.ndarray], components: int) -> dict[str, Any]:
    reference = aligned(train["points"], train["points"][0]).mean(0)
    features = {name: (aligned(part["points"], reference) - reference).reshape(len(part["points"]), -1)
                for name, part in (("train", train), ("test", test))}
    mean, std = features["train"].mean(0), features["train"].std(0) + 1e-6
    basis = np.linalg.svd((features["train"] - mean) / std, full_matrices=False)[2][:components].T
    projected = {name: (f - mean) / std @ basis for name, f in features.items()}
    report = {}
    for column, kind in enumerate(("face", "eye")):
        fit = np.isin(train["kind"], [kind, "untouched"])
        w, b = fit_logistic(projected["train"][fit], (train["kind"][fit] == kind).astype(float))
        scored = np.isin(test["kind"], [kind, "untouched"])
        geometry = projected["test"][scored] @ w + b
        router = np.clip(test["router"][scored, column], 1e-6, 1 - 1e-6)
        both = geometry + np.log(router / (1 - router))
        positive, scales = test["kind"][scored] == kind, test["scale"][scored]
        report[kind] = {str(s): {"n": int((scales == s).sum()),
                                 **{name: roc_auc(score[scales == s], positive[scales == s])
                                    for name, score in (("geometry", geometry), ("router", router), ("sum", both))}}
                        for s in np.unique(scales)}
    return report


def detector_parser(doc: str, train_n: int, n: int, scales: str) -> argparse.ArgumentParser:
    """The options of a detector yardstick (this one and white_colour.py): data, photo counts, split, scales."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("--train-n", type=int, default=train_n, help=f"training photos per kind (default {train_n})")
    parser.add_argument("-n", type=int, default=n, help=f"scored photos per kind (default {n})")
    parser.add_argument("--split", default="val", choices=["val", "test"], help="scored split (default val)")
    parser.add_argument("--scales", default=scales, help="photo sizes after the retouching, in turn")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = detector_parser(__doc__, 2000, 400, "0.6,1,1.25")
    parser.add_argument("--components", type=int, default=60, help="principal components kept (default 60)")
    args = parser.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",")]
    train = gather("train", "train", args.train_n, scales, args.data)
    test = gather(args.split, "heldout", args.n, scales, args.data, load_pipeline(None, None, label="pipeline"))
    report = evaluate(train, test, args.components)
    print(f"ROC AUC against untouched photos ({args.split}, held-out implementations; geometry fitted on "
          f"{len(train['kind'])} training photos)\n")
    print("| type | photo scale | photos | geometry | router | sum of logits |\n|---|---|---|---|---|---|")
    for kind, rows in report.items():
        for scale, r in rows.items():
            print(f"| {kind} | x{scale} | {r['n']} | {r['geometry']:.2f} | {r['router']:.2f} | {r['sum']:.2f} |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
