"""Retouching-engine quality: input PSNR(retouched, original) per op, and a montage (not a test).

Usage: python benchmarks/retouch_quality.py --data ../shared/data/faces -n 500 [--montage docs/retouch_montage.png]

For each of the first ``n`` faces of the shards, every built-in op is applied alone at a strength
drawn from ``sample_strength`` (api at random among ``--apis-set``: train, heldout or all), then a
random multi-op retouching (2-4 ops). Reports mean / std / 10th-90th percentile PSNR per op and
per api (held-out apis marked ``*``), and the time per op and per api. The montage shows, for
``--montage-rows`` faces, one row per type: the original, then every api of that type at the
montage strength (held-out apis captioned with ``*``). The
paper's RetouchingFFHQ++ has about 29 dB (white), 35.6 (smooth), 29.5 (face), 35.8 (eye) and
26-28 dB for multi-retouching. Faces are read from FairFace shards (CC BY 4.0).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mofrr_core.metrics import psnr
from mofrr_core.plugins import get_retouch_ops
from mofrr_core.retouch import TYPES, FaceLandmarks, random_ops, retouch, sample_strength
from mofrr_core.retouch.heldout import apis_in_set, is_heldout

PAPER = {"white": 29.0, "smooth": 35.6, "face": 29.5, "eye": 35.8, "multi": 27.0}


def default_data() -> Path:
    return Path(os.environ.get("MOFRR_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "faces"))


def iter_faces(root: Path, n: int, min_sharpness: float = 0.0
               ) -> Iterator[tuple[str, np.ndarray, FaceLandmarks, float]]:
    """The first ``n`` complete samples (key, image, landmarks, sharpness) of the shards under ``root``."""
    shards = sorted(root.glob("faces-*.tar"))
    if not shards:
        raise SystemExit(f"error: no faces-*.tar shards in {root} (pass --data or set MOFRR_DATA)")
    count = 0
    for shard in shards:
        with tarfile.open(shard) as tar:
            pending: dict[str, dict[str, bytes]] = defaultdict(dict)
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.partition(".")
                pending[key][ext] = tar.extractfile(member).read()
                sample = pending[key]
                if not {"jpg", "json", "landmarks.npy"} <= set(sample):
                    continue
                del pending[key]
                sharpness = float(json.loads(sample["json"]).get("sharpness", 0.0))
                if sharpness < min_sharpness:
                    continue
                image = np.asarray(Image.open(io.BytesIO(sample["jpg"])).convert("RGB"))
                points = np.load(io.BytesIO(sample["landmarks.npy"])).astype(np.float32)
                yield key, image, FaceLandmarks(points), sharpness
                count += 1
                if count >= n:
                    return


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with ``text`` written in its bottom-left corner (white on a dark box)."""
    import cv2

    out = image.copy()
    scale = image.shape[0] / 448
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, out.shape[0] - h - 8), (w + 8, out.shape[0]), (0, 0, 0), -1)
    cv2.putText(out, text, (4, out.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def montage(rows: list[list[np.ndarray]], labels: list[str], tile: int = 224) -> np.ndarray:
    """A grid of tiles with a header row of column labels."""
    import cv2

    header = 22
    grid = np.full((header + tile * len(rows), tile * len(labels), 3), 255, np.uint8)
    for j, label in enumerate(labels):
        cv2.putText(grid, label, (j * tile + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            resized = np.asarray(Image.fromarray(image).resize((tile, tile), Image.LANCZOS))
            grid[header + i * tile: header + (i + 1) * tile, j * tile: (j + 1) * tile] = resized
    return grid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data(), help="folder of faces-*.tar shards")
    parser.add_argument("-n", type=int, default=100, help="number of faces (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--min-sharpness", type=float, default=0.0, help="only faces with sharpness >= this")
    parser.add_argument("--montage", type=Path, help="write a montage PNG (original | each op | multi)")
    parser.add_argument("--montage-rows", type=int, default=2, help="faces in the montage (default 2)")
    parser.add_argument("--apis-set", choices=("train", "heldout", "all"), default="all",
                        help="implementations drawn for the PSNR table (default: all)")
    parser.add_argument("--montage-sharpness", type=float, default=2.0,
                        help="montage faces need at least this sharpness (default 2.0: visible skin detail)")
    parser.add_argument("--strength", type=float, default=None,
                        help="montage strength (default: 0.8, a clearly visible but typical edit)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing montage")
    args = parser.parse_args()
    if args.montage and args.montage.exists() and not args.overwrite:
        print(f"error: {args.montage} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2

    ops = get_retouch_ops()
    scores: dict[str, list[float]] = defaultdict(list)
    per_api: dict[tuple[str, str], list[float]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    api_seconds: dict[tuple[str, str], float] = defaultdict(float)
    excluded = {op: set(ops[op]) - set(apis_in_set(op, args.apis_set, list(ops[op]))) for op in TYPES}
    strength_shown = args.strength if args.strength is not None else 0.8
    rows = []
    faces = iter_faces(args.data, args.n, args.min_sharpness)
    for index, (key, image, landmarks, sharpness) in enumerate(tqdm(faces, total=args.n, desc="faces", unit="face")):
        shown = len(rows) < args.montage_rows * len(TYPES) and sharpness >= args.montage_sharpness
        rng = np.random.default_rng([args.seed, index])
        for op in TYPES:
            strength = sample_strength(rng)
            start = time.perf_counter()
            result = retouch(image, landmarks, [op], rng, [strength], exclude_apis=excluded, where=key)
            elapsed = time.perf_counter() - start
            api = result.record["ops"][0]["api"]
            seconds[op] += elapsed
            api_seconds[(op, api)] += elapsed
            value = psnr(image, result.image)
            scores[op].append(value)
            per_api[(op, api)].append(value)
            if shown:
                row = [image] + [caption(retouch(image, landmarks, [op], np.random.default_rng(index), [strength_shown],
                                                 apis={op: name}).image, f"{op}/{name}" + "*" * is_heldout(op, name))
                                 for name in sorted(ops[op])]
                rows.append(row)
        multi_ops = random_ops(rng)
        start = time.perf_counter()
        result = retouch(image, landmarks, multi_ops, rng, exclude_apis=excluded, where=key)
        seconds["multi"] += time.perf_counter() - start
        scores["multi"].append(psnr(image, result.image))

    count = len(scores["multi"])
    print(f"\n{count} faces from {args.data} (seed {args.seed}); strengths from sample_strength")
    print(f"{'op':8s} {'api':10s} {'mean PSNR':>9s} {'std':>5s} {'p10':>6s} {'p90':>6s} {'paper':>6s} {'ms/img':>7s}"
          f" (apis: {args.apis_set}; * held out)")
    for op in [*TYPES, "multi"]:
        values = np.array(scores[op])
        print(f"{op:8s} {'(all)':10s} {values.mean():9.2f} {values.std():5.2f} {np.percentile(values, 10):6.2f} "
              f"{np.percentile(values, 90):6.2f} {PAPER.get(op, float('nan')):6.1f} {1000 * seconds[op] / count:7.1f}")
        for api in sorted(ops.get(op, {})):
            values = np.array(per_api.get((op, api), []))
            if len(values):
                name = api + "*" * is_heldout(op, api)
                print(f"{'':8s} {name:10s} {values.mean():9.2f} {values.std():5.2f} "
                      f"{np.percentile(values, 10):6.2f} {np.percentile(values, 90):6.2f} {'':6s} "
                      f"{1000 * api_seconds[(op, api)] / len(values):7.1f}")
    if args.montage:
        width = max(len(row) for row in rows)
        rows = [row + [np.full_like(row[0], 255)] * (width - len(row)) for row in rows]
        grid = montage(rows, ["original", *[f"api {j}" for j in range(1, width)]], tile=192)
        args.montage.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(args.montage)
        print(f"montage -> {args.montage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
