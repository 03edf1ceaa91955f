"""Latency of every network and of the whole MoFRR pipeline on CPU (not a test).

Usage: python benchmarks/latency.py [--preset cpu] [--sizes 256 512] [--steps N] [--repeats 3]
Pipeline = router + 4 WaveFRR (all activated, the worst case) + shared expert + combine, batch 1.
"""

from __future__ import annotations

import argparse
import time

import torch

from mofrr_core.models.presets import build_model


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the preset's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--experts", type=int, default=4)
    args = parser.parse_args()

    router = build_model("router", args.preset).eval()
    experts = [build_model("wavefrr", args.preset).eval() for _ in range(args.experts)]
    shared = build_model("shared_expert", args.preset).eval()
    combine = build_model("combine", args.preset).eval()
    steps_w = args.steps or experts[0].config.num_inference_steps
    steps_s = args.steps or shared.config.num_inference_steps
    gen = torch.Generator().manual_seed(0)

    print(
        f"preset `{args.preset}`, torch threads {torch.get_num_threads()}, DDIM steps WaveFRR {steps_w} / "
        f"shared {steps_s}, batch 1, best of {args.repeats}\n"
    )
    print("| component | " + " | ".join(f"{s}px (s)" for s in args.sizes) + " |")
    print("|---|" + "---|" * len(args.sizes))
    rows: dict[str, list[float]] = {}
    for size in args.sizes:
        x = torch.rand(1, 3, size, size) * 2 - 1
        mask = torch.ones(1, args.experts, dtype=torch.bool)

        def pipeline(x: torch.Tensor = x, mask: torch.Tensor = mask) -> torch.Tensor:
            router(x)
            outs = torch.stack([e.restore(x, steps_w, gen).image for e in experts], dim=1)
            y_se = shared.restore(x, steps_s, gen).image
            return combine(x, y_se, outs, mask)

        stacked = x[:, None].repeat(1, args.experts, 1, 1, 1)
        timings = {
            "router": timed(lambda x=x: router(x), args.repeats),
            "degree estimator": timed(lambda x=x: experts[0].degree_estimator(x), args.repeats),
            "WaveFRR (1 expert)": timed(lambda x=x: experts[0].restore(x, steps_w, gen), args.repeats),
            "shared expert": timed(lambda x=x: shared.restore(x, steps_s, gen), args.repeats),
            f"combine (K={args.experts})": timed(
                lambda x=x, s=stacked, m=mask: combine(x, x, s, m), args.repeats
            ),
            f"**pipeline** ({args.experts} experts)": timed(pipeline, args.repeats),
        }
        for name, value in timings.items():
            rows.setdefault(name, []).append(value)
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


if __name__ == "__main__":
    main()
