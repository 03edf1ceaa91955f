"""How much a displacement field *could* restore a geometric retouching: the per-image oracle (not a test).

Usage: python benchmarks/warp_oracle.py [--op face] [-n 32] [--steps 300] [--grid 16] [--data DIR] [--resolution 128]

For ``-n`` validation-split pairs of one op (seed 7), a free smooth field per image (a ``grid x grid``
field upsampled bilinearly to the image, as FlowWarp's) is fitted to the *original* by the photometric L1
loss alone (Adam, lr 0.05, ``--steps`` steps), and the input is resampled along it with FlowWarp's own
:func:`~mofrr_core.models.warp.warp`. The oracle knows the original, so its PSNR is a ceiling on what a
FlowWarp expert could reach; an expert must predict the field from the retouched image alone.
docs/results.md quotes its output for face lifting.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from mofrr_core.data import RetouchPairs
from mofrr_core.metrics import psnr_per_image
from mofrr_core.models.warp import warp


def fit_fields(x: torch.Tensor, y: torch.Tensor, grid: int, steps: int) -> torch.Tensor:
    """Per-image fields ``[B, 2, H, W]`` minimising ``|warp(x, field) - y|_1``, from zero."""
    params = torch.zeros(x.shape[0], 2, grid, grid, requires_grad=True)
    optimizer = torch.optim.Adam([params], lr=0.05)
    for _ in range(steps):
        field = F.interpolate(params, size=x.shape[-2:], mode="bilinear", align_corners=False)
        loss = F.l1_loss(warp(x, field), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return F.interpolate(params.detach(), size=x.shape[-2:], mode="bilinear", align_corners=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--op", default="face", help="retouching op of the pairs (default: face)")
    parser.add_argument("-n", type=int, default=32, help="validation pairs")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps per field")
    parser.add_argument("--grid", type=int, default=16, help="field resolution before upsampling")
    parser.add_argument("--data", default=None, help="face shards (default: $MOFRR_DATA or ../shared/data/faces)")
    parser.add_argument("--resolution", type=int, default=128)
    args = parser.parse_args()

    data = RetouchPairs(args.data, "val", args.resolution, ops=[args.op], seed=7, length=args.n)
    samples = [data[i] for i in range(args.n)]
    x = torch.stack([s["retouched"] for s in samples])
    y = torch.stack([s["original"] for s in samples])
    start = time.perf_counter()
    field = fit_fields(x, y, args.grid, args.steps)
    with torch.no_grad():
        restored = warp(x, field)
    shift = field.norm(dim=1)
    print(f"{args.n} '{args.op}' validation pairs at {args.resolution} px, oracle {args.grid}x{args.grid} fields, "
          f"{args.steps} steps ({time.perf_counter() - start:.0f} s)")
    before, after = psnr_per_image(x, y).mean(), psnr_per_image(restored, y).mean()
    print(f"input PSNR {before:.2f} dB -> oracle-warped {after:.2f} dB; "
          f"field: mean {shift.mean():.2f} px, max {shift.amax():.2f} px")


if __name__ == "__main__":
    main()
