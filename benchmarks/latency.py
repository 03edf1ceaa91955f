"""Latency of every network and of the whole MoFRR pipeline on CPU (not a test).

Usage: python benchmarks/latency.py [--what components pipeline] [--preset cpu] [--sizes 256 512]
           [--pipeline-sizes 256 512 1024] [--pipeline REGISTRY_OR_DIR] [--steps N] [--repeats 3]

components: each network of a preset, and router + 4 WaveFRR (all activated, the worst case) +
shared expert + combine, batch 1.
pipeline: the real ``Pipeline.__call__`` (default: the packaged registry, untrained experts built
from their presets; untrained weights cost the same time as trained ones) on a face of each size,
with the working resolution set to that size, in three modes: sparse routing (``active="router"``,
the experts the router picks), one expert (the typical single-operation case) and every expert
(``active="all"``, the "w/o router" ablation). Seconds per image, batch 1.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", nargs="+", choices=("components", "pipeline"), default=["components", "pipeline"])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="component table sizes")
    parser.add_argument("--pipeline-sizes", type=int, nargs="+", default=[256, 512, 1024],
                        help="whole-pipeline sizes (default: 256 512 1024)")
    parser.add_argument("--pipeline", type=Path, default=None, metavar="REGISTRY_OR_DIR",
                        help="registry.yaml or Pipeline.save_pretrained folder (default: packaged registry)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the preset's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--experts", type=int, default=4)
    args = parser.parse_args()
    if "components" in args.what:
        components(args)
    if "pipeline" in args.what:
        whole_pipeline(args)


def face(size: int) -> np.ndarray:
    """skimage's astronaut face crop at ``size`` px (uint8 HxWx3)."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).crop((140, 20, 340, 220)).resize((size, size), Image.BICUBIC))


@torch.no_grad()
def whole_pipeline(args: argparse.Namespace) -> None:
    """Seconds per image of ``Pipeline.__call__``: sparse routing vs one expert vs every expert."""
    from mofrr_core.pipeline import load_pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = load_pipeline(args.pipeline, "cpu", allow_untrained=True)
    steps = args.steps or pipeline.num_inference_steps
    names = [s.name for s in pipeline.experts]
    untrained = sum(v == "untrained" for v in pipeline.weights.values())
    print(f"\nwhole pipeline ({args.pipeline or 'packaged registry'}; {untrained}/{len(pipeline.weights)} "
          f"components untrained), experts {names}, DDIM steps {steps}, batch 1, working resolution = "
          f"image size, best of {args.repeats}\n")
    modes = {"sparse routing (router)": "router", "1 expert": names[:1], f"all {len(names)} experts": "all"}
    print("| mode | " + " | ".join(f"{s}px (s/img)" for s in args.pipeline_sizes) + " |")
    print("|---|" + "---|" * len(args.pipeline_sizes))
    rows: dict[str, list[str]] = {}
    for size in args.pipeline_sizes:
        pipeline.resolution = size
        image = face(size)
        for label, active in modes.items():
            run = [None]

            def call(active=active, run=run, image=image) -> None:
                run[0] = pipeline([image], num_inference_steps=steps, seed=0, active=active, output_type="np")

            seconds = timed(call, args.repeats)
            ran = len([e for e in run[0].experts_run[0] if e != "shared"])
            note = f" ({ran} ran)" if active == "router" else ""
            rows.setdefault(label, []).append(f"{seconds:.2f}{note}")
    for label, values in rows.items():
        print(f"| {label} | " + " | ".join(values) + " |")


@torch.no_grad()
def components(args: argparse.Namespace) -> None:
    """The component table (each network of the preset and a hand-wired pipeline)."""
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
