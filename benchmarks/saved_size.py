"""How often ``jpeg_grid.saved_size`` finds the size a photo was saved at, after enlarging it by each factor.

Usage: python benchmarks/saved_size.py [--scales 1.05 1.1 1.25 1.27 1.33 1.5] [-n 60] [--split val] [--seed 3]
                                        [--ops untouched|balanced]

Faces of the split (224 px, FairFace's JPEGs as saved; ``--ops balanced``: retouched by the held-out
implementations as ``whole_photo.py`` retouches them, a retouching wipes part of the grid), each enlarged by every
factor as ``whole_photo.py --photo-scale`` enlarges it; per factor the share of photos whose saved size (224 px)
is found, the share given a wrong size, and the seconds per photo. Also the photos as saved (factor 1: nothing to
find).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from mofrr_core.data.realign import rescale_photo
from mofrr_core.eval.samples import load_samples
from mofrr_core.jpeg_grid import saved_size
from mofrr_core.utils.image import to_uint8


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("-n", type=int, default=60, help="untouched faces (default 60)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--ops", default="untouched", choices=["untouched", "balanced"])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.05, 1.1, 1.25, 1.27, 1.33, 1.5])
    args = parser.parse_args(argv)
    samples, _, _ = load_samples(args.data, split=args.split, n=args.n, resolution=None, ops=args.ops,
                                 degrees="none", seed=args.seed, quiet=True)
    photos = [to_uint8(s["retouched"]) for s in samples]
    print(f"{len(photos)} {args.ops} {args.split} photos, saved at 224 px\n")
    print("| enlarged | size found | right (224 px) | wrong | s per photo |\n|---|---|---|---|---|")
    for scale in args.scales:
        start = time.perf_counter()
        found = [saved_size(rescale_photo(photo, scale) if scale != 1 else photo) for photo in photos]
        seconds = (time.perf_counter() - start) / len(photos)
        right = sum(f is not None and f.width == photos[0].shape[1] for f in found)
        wrong = sum(f is not None for f in found) - right
        print(f"| x{scale:g} | {(right + wrong) / len(found):.0%} | {right / len(found):.0%} | "
              f"{wrong / len(found):.0%} | {seconds:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
