"""Compare trained routers on the same fresh validation pairs (not a test).

Usage: python benchmarks/router_accuracy.py ROUTER_DIR [ROUTER_DIR ...] [--data DIR] [-n 800] [--resolution 128]

Two sets of ``-n`` validation-split pairs each, retouched by the engine with their own seeds (not the
pairs a training run validates on): single-operation pairs of the four built-in types in equal
shares, and the evaluation's op mix (80 % single-op, 20 % 2-4 ops, 10 % untouched, as
``--p-single 0.8``). Per router and set, at the pipeline's threshold 0.5: exact label-set match,
macro F1, and per-type precision / recall; and how often each type is called present on the
untouched originals of the single-op pairs (false-positive rate on clean faces). docs/weights.md
(fifth session) and docs/results.md quote its output.
"""

from __future__ import annotations

import argparse
import os

import torch

from mofrr_core.data import RetouchPairs
from mofrr_core.data.cache import CachedPairs
from mofrr_core.train.stages import load_network

TYPES = ["white", "smooth", "face", "eye"]


def pair_sets(root: str, n: int, resolution: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{name: (images [n, 3, H, W], labels [n, 4] bool)}``: the two validation sets and the untouched originals."""
    datasets = {
        "single-op": RetouchPairs(root, "val", resolution, num_ops=(1, 1), types=TYPES, seed=98, length=n),
        "eval mix": RetouchPairs(root, "val", resolution, num_ops=(1, 4), types=TYPES, seed=97, length=n,
                                 p_single=0.8, p_clean=0.1),
    }
    sets = {}
    for name, dataset in datasets.items():
        cached = CachedPairs(dataset, n, mirror=False, desc=f"retouching {name} pairs")
        x = torch.stack([cached[i]["retouched"] for i in range(n)])
        sets[name] = (x, torch.stack([cached[i]["labels"] for i in range(n)]) > 0.5)
        if name == "single-op":
            originals = torch.stack([cached[i]["original"] for i in range(n)])
            sets["untouched"] = (originals, torch.zeros(n, len(TYPES), dtype=torch.bool))
    return sets


@torch.no_grad()
def scores(router: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> str:
    p = torch.cat([router(x[i:i + 64]) for i in range(0, len(x), 64)]) > 0
    if not y.any():  # untouched faces: every positive is a false one
        rates = p.float().mean(0).tolist()
        return "called present: " + " ".join(f"{t} {r:.3f}" for t, r in zip(TYPES, rates))
    tp, fp, fn = (p & y).sum(0), (p & ~y).sum(0), (~p & y).sum(0)
    precision, recall = tp / (tp + fp).clamp(min=1), tp / (tp + fn).clamp(min=1)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    per_type = " ".join(f"{t} P{a:.2f}/R{b:.2f}" for t, a, b in zip(TYPES, precision.tolist(), recall.tolist()))
    return f"exact {(p == y).all(1).float().mean():.3f} macroF1 {f1.mean():.3f} | {per_type}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("routers", nargs="+", help="Router weight folders (save_pretrained / mofrr-train runs' best)")
    parser.add_argument("--data", default=os.environ.get("MOFRR_DATA", "../shared/data/faces"),
                        help="face shards folder (default: $MOFRR_DATA or ../shared/data/faces)")
    parser.add_argument("-n", type=int, default=800, help="pairs per set (default 800)")
    parser.add_argument("--resolution", type=int, default=128, help="router input size (default 128)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = pair_sets(args.data, args.n, args.resolution)
    for path in args.routers:
        router = load_network(path, "Router").eval()
        for name, (x, y) in sets.items():
            print(f"{path:40s} {name:9s} {scores(router, x, y)}", flush=True)


if __name__ == "__main__":
    main()
