"""Retouching by software we did not write, as a test only: facetweak's warps, OpenCV's smoothing, Pillow's and
scikit-image's tone changes.

Usage: python benchmarks/outside.py OUT_DIR --software facetweak|opencv|tone [--data DIR] [--split test] [-n 400]
                                    [--seed 0] [--strength 0.3,1.0] [--reframe B [--reframe-jpeg Q]] [--overwrite]
       python benchmarks/whole_photo.py --data OUT_DIR -n 400 --out report.json

Every figure of the held-out table measures implementations we wrote, held out from training. These measure
implementations we did not write. No code of them is in this repository, no weight was ever trained or selected
on their output, and it must stay that way: they are tests, never training data (docs/results.md reports them
once per release, with the shipped weights).

- ``facetweak`` (0.2.0, MIT, https://pypi.org/project/facetweak/; ``pip install --no-deps facetweak==0.2.0``): a
  landmark-guided warp tool; its face slimming and eye size controls. It reads 68 landmarks: the shard's own 478
  MediaPipe points picked by facetweak's own 478 -> 68 table, so its landmark model (a download) is not needed.
  Faces in turn: face slimmed, eyes enlarged, both, untouched.
- ``opencv`` (the installed opencv-python): a whole-photo smoothing, as an app's "smooth" slider may apply it, by
  two OpenCV filters from families no training implementation of ours uses: non-local means
  (``cv2.fastNlMeansDenoisingColored``, ``h`` 2-10) and the domain-transform edge-preserving filter
  (``cv2.edgePreservingFilter``, recursive, ``sigma_s`` 10-40, ``sigma_r`` 0.05-0.2; our held-out ``domain``
  smoothing is another implementation of that family). Faces in turn: smoothed by the one, by the other,
  untouched.
- ``tone`` (the installed Pillow, scikit-image and OpenCV): a whitening, as an app's "brighten" or "fair skin"
  slider may apply it, by two library tone changes: Pillow's ``ImageEnhance`` brightness then colour (brighter by
  up to 12 %, saturation down by up to 25 %: lighter, paler skin) and scikit-image's ``exposure.adjust_gamma``
  (gamma 1 down to 0.8: shadows and mid-tones lifted); each on the whole photo (``... on photo``) or on the pixels
  a colour rule takes for skin (``... on skin``: OpenCV's ``inRange`` on YCrCb, Cr 133-173 and Cb 77-127, feathered
  by a Gaussian of 3 px; no landmarks, a mask family none of our implementations uses). Faces in turn: the four,
  untouched.

Faces of ``--split`` (the FairFace shards, 224 px) are taken in shard order from face ``seed x n`` on; each
operation at a strength drawn uniformly from ``--strength`` (0 nothing, 1 the strongest setting above). The pairs
go to ``OUT_DIR`` as a ``mofrr synth``-style folder (``original/``, ``retouched/``, ``manifest.json`` with the
software, filter and strength of every pair; a degree of 1 only marks an operation as present), which
``benchmarks/whole_photo.py --data OUT_DIR`` (whole photos: restoration, untouched faces, detection) and
``mofrr eval --data OUT_DIR`` read as they are. A photo the software left exactly as it was (``tone`` on a photo
without a skin-coloured pixel) is an untouched pair, its manifest item saying ``unchanged_by``.
An existing ``OUT_DIR`` is refused unless ``--overwrite``.
``--reframe B`` frames every photo looser (a reflected border of ``B`` times its side) and resizes it back to
224 px before the software runs, as a portrait cropped and resized before an app retouched it; the reframed photo
is the original (:func:`mofrr_core.data.realign.reframe_for_retouch`); with ``--reframe-jpeg Q`` saved as a JPEG of
quality Q first, as a stored photo reaches the software.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from photo_conditions import add_reframe_argument
from photo_conditions import reframe as reframe_config
from tqdm import tqdm

from mofrr_core.data.degrees import write_json_atomic
from mofrr_core.data.pairs import DEFAULT_TYPES
from mofrr_core.data.shards import read_shards
from mofrr_core.data.splits import filter_split
from mofrr_core.eval.samples import face_offset
from mofrr_core.io import save_image_atomic

# one retouching: (ops, implementation); the software's kinds are applied to the faces in turn, () = untouched
Kind = tuple[tuple[str, ...], str | None]
Retoucher = Callable[[np.ndarray, np.ndarray, dict[str, float], str | None], np.ndarray]


def facetweak_software() -> tuple[Retoucher, str, list[Kind]]:
    """facetweak's face slimming and eye size as ``retouch(image, landmarks478, {type: strength}, None)``."""
    try:
        import facetweak
        from facetweak.effects import Adjustments, apply
        from facetweak.landmarks import MESH_68
    except ImportError as error:
        raise SystemExit(f"facetweak is not installed ({error}): pip install --no-deps facetweak==0.2.0") from None
    controls = {"face": "face_slim", "eye": "eye_size"}

    def retouch(image: np.ndarray, landmarks: np.ndarray, strengths: dict[str, float], _: str | None) -> np.ndarray:
        points = np.asarray(landmarks, dtype=np.float64)[MESH_68]
        return apply(image, points, Adjustments(**{controls[op]: value for op, value in strengths.items()}))

    kinds: list[Kind] = [(("face",), None), (("eye",), None), (("face", "eye"), None), ((), None)]
    return retouch, f"facetweak {facetweak.__version__}", kinds


def opencv_software() -> tuple[Retoucher, str, list[Kind]]:
    """OpenCV's non-local means and edge-preserving filter on the whole photo, as a smoothing."""
    import cv2

    def retouch(image: np.ndarray, landmarks: np.ndarray, strengths: dict[str, float], filter_: str | None
                ) -> np.ndarray:
        s = strengths["smooth"]
        if filter_ == "nlmeans":
            return cv2.fastNlMeansDenoisingColored(image, None, 2 + 8 * s, 2 + 8 * s, 7, 21)
        return cv2.edgePreservingFilter(image, flags=cv2.RECURS_FILTER, sigma_s=10 + 30 * s, sigma_r=0.05 + 0.15 * s)

    kinds: list[Kind] = [(("smooth",), "nlmeans"), (("smooth",), "edge-preserving"), ((), None)]
    return retouch, f"opencv {cv2.__version__}", kinds


def tone_software() -> tuple[Retoucher, str, list[Kind]]:
    """Pillow's brightness and colour enhancers, or scikit-image's gamma, as a whitening: on the whole photo, or on
    the pixels OpenCV's YCrCb skin-colour rule finds."""
    import cv2
    import PIL
    import skimage
    from PIL import Image, ImageEnhance
    from skimage.exposure import adjust_gamma

    def skin_weight(image: np.ndarray) -> np.ndarray:
        """Skin by colour alone (Cr 133-173, Cb 77-127, the classic YCrCb rule), feathered: ``HxWx1`` in [0, 1]."""
        skin = cv2.inRange(cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb), (0, 133, 77), (255, 173, 127))
        return cv2.GaussianBlur(skin.astype(np.float32) / 255.0, (0, 0), 3.0)[..., None]

    def retouch(image: np.ndarray, landmarks: np.ndarray, strengths: dict[str, float], filter_: str | None
                ) -> np.ndarray:
        s = strengths["white"]
        tone, _, where = (filter_ or "").partition(" on ")
        if tone == "gamma":
            toned = adjust_gamma(image, gamma=1.0 - 0.2 * s)
        else:
            brighter = ImageEnhance.Brightness(Image.fromarray(image)).enhance(1.0 + 0.12 * s)
            toned = np.asarray(ImageEnhance.Color(brighter).enhance(1.0 - 0.25 * s))
        if where != "skin":
            return toned
        weight = skin_weight(image)
        return np.round(weight * toned + (1.0 - weight) * image).astype(np.uint8)

    kinds: list[Kind] = [(("white",), f"{tone} on {where}") for where in ("photo", "skin")
                         for tone in ("brightness-colour", "gamma")] + [((), None)]
    return retouch, f"pillow {PIL.__version__}, scikit-image {skimage.__version__}, opencv {cv2.__version__}", kinds


SOFTWARE = {"facetweak": facetweak_software, "opencv": opencv_software, "tone": tone_software}


def write_pairs(out: Path, records: Sequence[Any], retouch: Retoucher, software: str, kinds: Sequence[Kind],
                seed: int = 0, strength: tuple[float, float] = (0.3, 1.0), reframe: float = 0.0,
                reframe_jpeg: int = 0) -> list[dict[str, Any]]:
    """Retouch ``records`` with ``kinds`` in turn (each photo reframed first by ``reframe``, and saved as a JPEG of
    quality ``reframe_jpeg`` if given) and write them to ``out``; the manifest's items."""
    from mofrr_core.data.realign import reframe_for_retouch
    from mofrr_core.retouch.landmarks import FaceLandmarks

    for side in ("original", "retouched"):
        (out / side).mkdir(parents=True, exist_ok=True)
    items = []
    for i, record in enumerate(tqdm(records, desc=software, unit="pair", file=sys.stderr)):
        ops, implementation = kinds[i % len(kinds)]
        rng = np.random.default_rng([seed, i])
        strengths = {op: round(float(rng.uniform(*strength)), 4) for op in ops}
        original, landmarks, _ = reframe_for_retouch(record.image(), FaceLandmarks(record.landmarks), rng,
                                                     reframe_config(reframe, reframe_jpeg))
        retouched = (np.ascontiguousarray(retouch(original, landmarks.points, strengths, implementation))
                     if ops else original)
        unchanged = bool(ops) and np.array_equal(retouched, original)  # e.g. no skin-coloured pixel: untouched
        item_id = f"{i:06d}"
        for side, image in (("original", original), ("retouched", retouched)):
            save_image_atomic(image, out / side / f"{item_id}.png")
        items.append({"id": item_id, "key": record.key, "original": f"original/{item_id}.png",
                      "retouched": f"retouched/{item_id}.png", "degrees": {} if unchanged else dict.fromkeys(ops, 1),
                      "implementation": None if unchanged else implementation, "strengths": strengths}
                     | ({"unchanged_by": implementation} if unchanged else {}))
    return items


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the pairs to (refused if it exists)")
    parser.add_argument("--software", required=True, choices=list(SOFTWARE), help="which outside software")
    parser.add_argument("--data", type=Path, default=None, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("--split", default="test", choices=["test", "val"], help="face split (default: test)")
    parser.add_argument("-n", type=int, default=400, help="number of photos (default: 400)")
    parser.add_argument("--seed", type=int, default=0, help="strengths, and the faces from face seed x n on")
    parser.add_argument("--strength", default="0.3,1.0", help="range of each operation's strength (default 0.3,1.0)")
    add_reframe_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT folder")
    args = parser.parse_args(argv)
    try:
        lo, hi = (float(v) for v in args.strength.split(","))
    except ValueError:
        parser.error(f"--strength: expected LO,HI, got {args.strength!r}")
    if not 0.0 <= lo <= hi <= 1.0:
        parser.error(f"--strength: need 0 <= LO <= HI <= 1, got {args.strength!r}")
    args.strength = (lo, hi)
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    retouch, software, kinds = SOFTWARE[args.software]()
    first = face_offset(args.seed, args.n)
    records = filter_split(read_shards(args.data), args.split)[first:first + args.n]
    if len(records) < args.n:
        print(f"warning: the {args.split} split has {len(records)} faces from face {first} on", file=sys.stderr)
    if args.out.exists():
        shutil.rmtree(args.out)
    items = write_pairs(args.out, records, retouch, software, kinds, args.seed, args.strength, args.reframe,
                        args.reframe_jpeg)
    manifest = {"format": "mofrr-outside", "software": software, "split": args.split, "seed": args.seed,
                "strength": list(args.strength), "reframe": args.reframe,
                "reframe_jpeg": args.reframe_jpeg, "types": list(DEFAULT_TYPES),
                "degree_source": "none", "count": len(items), "items": items}
    write_json_atomic(args.out / "manifest.json", manifest)
    print(f"{len(items)} pairs by {software} in {args.out}; measure: python benchmarks/whole_photo.py "
          f"--data {args.out} -n {len(items)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
