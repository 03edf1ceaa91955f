"""DDIM steps vs fidelity and time: PSNR / SSIM / seconds per image at 2, 5, 10, 20 steps (not a test).

Usage: python benchmarks/steps_tradeoff.py [--data SHARDS_OR_PAIRS] [-n 5] [--steps 2 5 10 20]
           [--pipeline REGISTRY_OR_DIR] [--allow-untrained] [--repeats 1] [--plot steps_tradeoff.png]
           [--overwrite]

Restores the same few synthetic test pairs (the balanced protocol of ``mofrr eval``: single-op
images of every type and multi-op images) with the given pipeline (default: the packaged
registry) at each step count and prints a markdown table; the figure shows PSNR and seconds per
image against the steps. Untrained (identity) experts give the input's PSNR at every step count.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from mofrr_core import metrics
from mofrr_core.eval.plots import steps_plot
from mofrr_core.eval.samples import load_samples
from mofrr_core.pipeline import load_pipeline
from mofrr_core.utils.image import to_uint8


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="shards or paired folder (default: $MOFRR_DATA)")
    parser.add_argument("-n", type=int, default=5, help="test pairs (default: 5)")
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 5, 10, 20])
    parser.add_argument("--pipeline", type=Path, default=None, metavar="REGISTRY_OR_DIR")
    parser.add_argument("--allow-untrained", action="store_true", help="build experts without weights untrained")
    parser.add_argument("--resolution", type=int, default=None, help="evaluation size (default: the pipeline's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="time each step count this often, keep the best")
    parser.add_argument("--plot", type=Path, default=Path("steps_tradeoff.png"), help="figure path")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing figure")
    args = parser.parse_args()
    if args.plot.exists() and not args.overwrite:
        raise SystemExit(f"error: {args.plot} exists; pass --overwrite or choose another --plot")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = load_pipeline(args.pipeline, "cpu", allow_untrained=args.allow_untrained)
    resolution = args.resolution or pipeline.resolution
    samples, _, description = load_samples(args.data, n=args.n, resolution=resolution, degrees="none", quiet=True)
    items = [samples[i] for i in range(len(samples))]
    retouched = [s["retouched"] for s in items]
    originals = [to_uint8(s["original"]) for s in items]
    input_psnr = float(np.mean([metrics.psnr(to_uint8(r), o) for r, o in zip(retouched, originals)]))
    untrained = sum(v == "untrained" for v in pipeline.weights.values())
    print(f"{description}; {len(items)} pairs at {resolution} px; pipeline {args.pipeline or 'packaged registry'} "
          f"({untrained}/{len(pipeline.weights)} components untrained); torch threads {torch.get_num_threads()}\n")
    print("| DDIM steps | PSNR (dB) | SSIM | gain (dB) | s / image |")
    print("|---|---|---|---|---|")
    table: dict[int, dict[str, float]] = {}
    pipeline(retouched[:1], num_inference_steps=1, seed=args.seed, output_type="np")  # warm-up, not timed
    for steps in args.steps:
        seconds = float("inf")
        for _ in range(max(args.repeats, 1)):  # same seed: every repeat gives the same images
            start = time.perf_counter()
            out = pipeline(retouched, num_inference_steps=steps, seed=args.seed, output_type="np")
            seconds = min(seconds, (time.perf_counter() - start) / len(items))
        psnr = float(np.mean([metrics.psnr(a, b) for a, b in zip(out.images, originals)]))
        ssim = float(np.mean([metrics.ssim(a, b) for a, b in zip(out.images, originals)]))
        table[steps] = {"psnr": psnr, "ssim": ssim, "seconds": seconds, "input_psnr": input_psnr}
        print(f"| {steps} | {psnr:.2f} | {ssim:.4f} | {psnr - input_psnr:+.2f} | {seconds:.2f} |")
    print(f"\ninput PSNR {input_psnr:.2f} dB")
    steps_plot(table, args.plot, title=f"{len(items)} pairs at {resolution} px")
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
