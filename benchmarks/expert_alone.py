"""One specialised expert forced on every face: its gain where its retouching is, its harm where it is not.

Usage: python benchmarks/expert_alone.py EXPERT [WEIGHTS_DIR ...] [--split val] [-n 600] [--apis-set heldout]
                                          [--postprocess app] [--data DIR] [--steps 2]

The faces are ``mofrr eval``'s balanced samples at 128 px (:func:`mofrr_core.eval.samples.load_samples`).
Each expert (the installed package's weights, then every ``WEIGHTS_DIR``, e.g. a run's ``best`` folder) runs
alone on every retouched face, with no router and no Combine Module, and the PSNR gain over the input is
averaged over three kinds of faces: ``own`` (one operation, the expert's type), ``foreign`` (one operation
of another type: the gain the pipeline gets when the router calls this expert wrongly, so 0 is the best it
can do) and ``multi`` (2-4 operations). The last column tells whether the expert's degree estimator follows
how strong its retouching is: the rank correlation (Spearman) of the estimated degree with the input's PSNR on
the ``own`` faces (negative: a stronger retouching, a lower PSNR, gets a higher degree; about 0: the estimator
says the same whatever the face), and the spread (standard deviation) of its degrees. Not a test: it compares
experts before a pipeline is assembled.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mofrr_core.eval import tables
from mofrr_core.eval.samples import load_samples
from mofrr_core.metrics import psnr_per_image
from mofrr_core.pipeline import load_pipeline
from mofrr_core.train.stages import load_network


def load_experts(name: str, folders: list[Path]) -> dict[str, torch.nn.Module]:
    """``{label: expert}``: the installed one, then one per weights folder (its class from config.json)."""
    slot = next((s for s in load_pipeline(None, "cpu").experts if s.name == name), None)
    if slot is None:
        raise SystemExit(f"expert {name!r} is not in the packaged pipeline")
    return {"installed": slot.model, **{str(folder): load_network(folder).eval() for folder in folders}}


def kind_of(group: str, name: str) -> str | None:
    if group == "None":
        return None  # untouched faces: mofrr eval's do-no-harm table covers them
    return "own" if group == name else "multi" if group == "Multi" else "foreign"


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("expert", help="expert name (white, smooth, face, eye, ...)")
    parser.add_argument("weights", nargs="*", type=Path, help="other weights folders of the same expert")
    parser.add_argument("--data", type=Path, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("-n", type=int, default=600, help="faces (default 600: 100 per column)")
    parser.add_argument("--apis-set", default="heldout", choices=["heldout", "train"])
    parser.add_argument("--postprocess", default=None, help="degrade every input as a photo app would (app)")
    parser.add_argument("--steps", type=int, default=2, help="DDIM steps (default 2, as registry.yaml)")
    args = parser.parse_args()
    samples, types, description = load_samples(args.data, split=args.split, n=args.n, resolution=128,
                                               ops="balanced", degrees="none", seed=0, quiet=True,
                                               apis_set=args.apis_set, postprocess=args.postprocess)
    experts = load_experts(args.expert, args.weights)
    gains: dict[tuple[str, str], list[float]] = {}
    own_psnr, degrees = [], {label: [] for label in experts}
    for sample in samples:
        kind = kind_of(tables.group_of(sample["labels"].tolist(), types), args.expert)
        if kind is None:
            continue
        x, y = sample["retouched"][None], sample["original"][None]
        before = float(psnr_per_image(x, y)[0])
        if kind == "own":
            own_psnr.append(before)
        for label, model in experts.items():
            out = model.restore(x, num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0))
            gains.setdefault((label, kind), []).append(float(psnr_per_image(out.image.clamp(-1, 1), y)[0]) - before)
            if kind == "own" and out.degree is not None:  # the degree the restoration was conditioned on
                degrees[label].append(float(out.degree[0]))
    print(f"{args.expert} alone ({description})\n")
    print("| weights | own | foreign | multi | degree vs input PSNR (own) |\n|---|---|---|---|---|")
    for label in experts:
        cells = [f"{np.mean(v):+.2f} dB ({np.mean(np.array(v) < 0):.0%} worse, n={len(v)})"
                 for kind in ("own", "foreign", "multi") if (v := gains.get((label, kind)))]
        spread = float(np.std(degrees[label])) if degrees[label] else float("nan")
        print(f"| {label} | " + " | ".join(cells) + f" | {rank_correlation(degrees[label], own_psnr):+.2f} "
              f"(sd {spread:.2f}) |")


def rank_correlation(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (``nan`` with fewer than 3 values or a constant side)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ranks = [np.argsort(np.argsort(v)) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


if __name__ == "__main__":
    main()
