"""Retouching by outside software, as a test only: face slimming and eye enlarging by facetweak.

Usage: pip install --no-deps facetweak==0.2.0
       python benchmarks/outside_facetweak.py OUT_DIR [--data DIR] [--split test] [-n 300] [--seed 0]
                                              [--strength 0.3,1.0] [--overwrite]
       python benchmarks/whole_photo.py --data OUT_DIR -n 300 --out report.json

Every figure of the held-out table measures implementations we wrote ourselves, held out from training. This
one measures an implementation we did not write: facetweak (MIT, https://pypi.org/project/facetweak/), a
landmark-guided warp tool with an eye size and a face slimming control, among others. No code of it is in this
repository, no weight was ever trained or selected on its output, and it must stay that way: it is a test,
never training data (docs/results.md reports it once per release, with the shipped weights).

Faces of ``--split`` (the FairFace shards, 224 px) are taken in shard order from face ``seed x n`` on and retouched
in turn: face slimmed, eyes enlarged, both, untouched; each control at a strength drawn uniformly from
``--strength`` (facetweak's scale: 0 nothing, 1 its strongest). facetweak reads 68 landmarks; they are the shard's
own 478 MediaPipe points picked by facetweak's own 478 -> 68 table, so its landmark model is not needed (it would
be downloaded). The pairs go to ``OUT_DIR`` as a ``mofrr synth``-style folder (``original/``, ``retouched/``,
``manifest.json`` with the strengths; a degree of 1 only marks an operation as present), which
``benchmarks/whole_photo.py --data OUT_DIR`` (whole photos: restoration, untouched faces, detection) and
``mofrr eval --data OUT_DIR`` read as they are. An existing ``OUT_DIR`` is refused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mofrr_core.data.shards import read_shards
from mofrr_core.data.splits import split_of
from mofrr_core.io import save_image_atomic

KINDS: tuple[tuple[str, ...], ...] = (("face",), ("eye",), ("face", "eye"), ())  # in turn; () = untouched
CONTROLS = {"face": "face_slim", "eye": "eye_size"}  # our type -> facetweak's adjustment
Retoucher = Callable[[np.ndarray, np.ndarray, dict[str, float]], np.ndarray]


def facetweak_retoucher() -> tuple[Retoucher, str]:
    """facetweak's warp as ``retouch(image, landmarks478, {type: strength})``, and its version."""
    try:
        import facetweak
        from facetweak.effects import Adjustments, apply
        from facetweak.landmarks import MESH_68
    except ImportError as error:
        raise SystemExit(f"facetweak is not installed ({error}): pip install --no-deps facetweak==0.2.0") from None

    def retouch(image: np.ndarray, landmarks: np.ndarray, strengths: dict[str, float]) -> np.ndarray:
        points = np.asarray(landmarks, dtype=np.float64)[MESH_68]
        return apply(image, points, Adjustments(**{CONTROLS[op]: value for op, value in strengths.items()}))

    return retouch, f"facetweak {facetweak.__version__}"


def write_pairs(out: Path, records: Sequence[Any], retouch: Retoucher, software: str, seed: int = 0,
                strength: tuple[float, float] = (0.3, 1.0)) -> list[dict[str, Any]]:
    """Retouch ``records`` in turn as :data:`KINDS` says and write them to ``out``; the manifest's items."""
    for side in ("original", "retouched"):
        (out / side).mkdir(parents=True, exist_ok=True)
    items = []
    for i, record in enumerate(tqdm(records, desc=software, unit="pair", file=sys.stderr)):
        ops = KINDS[i % len(KINDS)]
        rng = np.random.default_rng([seed, i])
        strengths = {op: round(float(rng.uniform(*strength)), 4) for op in ops}
        original = record.image()
        retouched = np.ascontiguousarray(retouch(original, record.landmarks, strengths)) if ops else original
        item_id = f"{i:06d}"
        for side, image in (("original", original), ("retouched", retouched)):
            save_image_atomic(image, out / side / f"{item_id}.png")
        items.append({"id": item_id, "key": record.key, "original": f"original/{item_id}.png",
                      "retouched": f"retouched/{item_id}.png", "degrees": dict.fromkeys(ops, 1),
                      "strengths": strengths})
    return items


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the pairs to (refused if it exists)")
    parser.add_argument("--data", type=Path, default=None, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("--split", default="test", choices=["test", "val"], help="face split (default: test)")
    parser.add_argument("-n", type=int, default=300, help="number of photos, a quarter untouched (default: 300)")
    parser.add_argument("--seed", type=int, default=0, help="strengths, and the faces from face seed x n on")
    parser.add_argument("--strength", default="0.3,1.0", help="range of each control's strength (default 0.3,1.0)")
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
    retouch, software = facetweak_retoucher()
    faces = [r for r in read_shards(args.data) if split_of(r.key) == args.split]
    records = faces[args.seed * args.n:][:args.n]
    if len(records) < args.n:
        print(f"warning: the {args.split} split has {len(records)} faces from face {args.seed * args.n} on",
              file=sys.stderr)
    if args.out.exists():
        shutil.rmtree(args.out)
    items = write_pairs(args.out, records, retouch, software, args.seed, args.strength)
    manifest = {"format": "mofrr-outside", "software": software, "split": args.split, "seed": args.seed,
                "strength": list(args.strength), "types": ["white", "smooth", "face", "eye"],
                "degree_source": "none", "count": len(items), "items": items}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{len(items)} pairs by {software} in {args.out}; measure: python benchmarks/whole_photo.py "
          f"--data {args.out} -n {len(items)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
