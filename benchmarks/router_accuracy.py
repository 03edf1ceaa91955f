"""Compare trained routers on the same fresh validation pairs (not a test).

Usage: python benchmarks/router_accuracy.py ROUTER_DIR [ROUTER_DIR ...] [--data DIR] [-n 800] [--resolution 128]

Two sets of ``-n`` validation-split pairs each, retouched by the engine with their own seeds (not the
pairs a training run validates on): single-operation pairs of the four built-in types in equal
shares, and the evaluation's op mix (80 % single-op, 20 % 2-4 ops, 10 % untouched, as
``--p-single 0.8``). Per router and set, at the pipeline's threshold 0.5: exact label-set match,
macro F1, and per-type precision / recall; and how often each type is called present on the
untouched originals of the single-op pairs (false-positive rate on clean faces). docs/results.md
quotes its output for the shipped router.
"""

from __future__ import annotations

import argparse

import torch

from mofrr_core.data import RetouchPairs
from mofrr_core.data.cache import CachedPairs
from mofrr_core.train.stages import load_network

TYPES = ["white", "smooth", "face", "eye"]


def pair_sets(root: str | None, n: int,
              resolution: int) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """``({name: (retouched [n, 3, H, W], labels [n, 4] bool)}, untouched originals of the single-op pairs)``."""
    datasets = {
        "single-op": RetouchPairs(root, "val", resolution, num_ops=(1, 1), types=TYPES, seed=98, length=n),
        "eval mix": RetouchPairs(root, "val", resolution, num_ops=(1, 4), types=TYPES, seed=97, length=n,
                                 p_single=0.8, p_clean=0.1),
    }
    sets, originals = {}, None
    for name, dataset in datasets.items():
        pairs = CachedPairs(dataset, n, mirror=False, desc=f"retouching {name} pairs")
        cached = [pairs[i] for i in range(n)]
        sets[name] = (torch.stack([c["retouched"] for c in cached]), torch.stack([c["labels"] for c in cached]) > 0.5)
        if originals is None:
            originals = torch.stack([c["original"] for c in cached])
    return sets, originals


@torch.no_grad()
def predict(router: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Router decisions at the pipeline's threshold 0.5 (logit > 0): ``[n, types]`` bool."""
    return torch.cat([router(x[i:i + 64]) for i in range(0, len(x), 64)]) > 0


def scores(p: torch.Tensor, y: torch.Tensor) -> str:
    tp, fp, fn = (p & y).sum(0), (p & ~y).sum(0), (~p & y).sum(0)
    precision, recall = tp / (tp + fp).clamp(min=1), tp / (tp + fn).clamp(min=1)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    per_type = " ".join(f"{t} P{a:.2f}/R{b:.2f}" for t, a, b in zip(TYPES, precision.tolist(), recall.tolist()))
    return f"exact {(p == y).all(1).float().mean():.3f} macroF1 {f1.mean():.3f} | {per_type}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("routers", nargs="+", help="Router weight folders (save_pretrained / mofrr-train runs' best)")
    parser.add_argument("--data", default=None,
                        help="face shards folder (default: $MOFRR_DATA or ../shared/data/faces beside the checkout)")
    parser.add_argument("-n", type=int, default=800, help="pairs per set (default 800)")
    parser.add_argument("--resolution", type=int, default=128, help="router input size (default 128)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets, originals = pair_sets(args.data, args.n, args.resolution)
    for path in args.routers:
        router = load_network(path, "Router").eval()
        for name, (x, y) in sets.items():
            print(f"{path:40s} {name:9s} {scores(predict(router, x), y)}", flush=True)
        rates = predict(router, originals).float().mean(0).tolist()  # untouched: every call is a false one
        print(f"{path:40s} untouched called present: " + " ".join(f"{t} {r:.3f}" for t, r in zip(TYPES, rates)),
              flush=True)


if __name__ == "__main__":
    main()
