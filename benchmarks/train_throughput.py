"""Training throughput (optimizer steps per second) of every mofrr-train stage (not a test).

Usage: python benchmarks/train_throughput.py [--preset cpu] [--steps 3] [--batch-size 4] [--resolution 256]
                                              [--data synthetic|DIR] [--stages router degree ...] [--threads N]

Each stage runs the real Trainer (accelerate, EMA, grad clipping) for ``--steps`` steps after one
warm-up step, in a temporary folder; the table reports the median over the timed steps (the
per-step ``it_s`` of metrics.jsonl). Setup (model build, combine cache, validation) is excluded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file

from mofrr_core.train.config import make_config
from mofrr_core.train.trainer import Trainer

STAGES = ("router", "degree", "expert", "shared", "gate", "combine")
EXPERT = {"degree": "eye", "expert": "eye", "gate": "eye"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", help="training preset (model preset: --model-preset)")
    parser.add_argument("--model-preset", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stage (after 1 warm-up step)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--data", default="synthetic", help="'synthetic' or the face shard folder")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    steps = args.steps + 1
    data = {"type": "SyntheticPairs", "length": 64} if args.data == "synthetic" else {"type": "RetouchPairs"}
    rows = []
    for stage in args.stages:
        with tempfile.TemporaryDirectory() as tmp:
            config = make_config(
                args.preset, stage=stage, expert=EXPERT.get(stage), model_preset=args.model_preset,
                resolution=args.resolution, batch_size=args.batch_size, max_steps=steps, log_every=1,
                val_every=10**9, checkpoint_every=10**9, output_dir=str(Path(tmp) / stage), data=data,
                data_root=None if args.data == "synthetic" else args.data, num_workers=args.num_workers,
                combine_cache_samples=(args.batch_size or 4) * steps, val_samples=args.batch_size or 4,
                train_degree=False if stage == "expert" else None,
            )
            if stage == "expert":  # a trained DE is frozen in the expert stage; an untrained one is fine here
                from mofrr_core.models.presets import build_model

                de = build_model("wavefrr", args.model_preset).degree_estimator
                de.save_pretrained(Path(tmp) / "de")
                config.degree_weights = str(Path(tmp) / "de")
            start = time.perf_counter()
            result = Trainer(config, command="benchmark").train()
            total = time.perf_counter() - start
            records = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
            rates = [r["it_s"] for r in records if r["kind"] == "train"][1:]
            net = json.loads((result.final_dir / "config.json").read_text())["_class_name"]
            params = sum(v.numel() for v in load_file(next(result.final_dir.glob("*.safetensors"))).values())
        rate = statistics.median(rates)
        rows.append((stage, net, params, 1 / rate, rate, rate * config.batch_size, total))
        print(f"{stage}: {1 / rate:.2f} s/it", flush=True)

    print(f"\npreset `{args.preset}` / model preset `{args.model_preset}`, {args.resolution} px, batch "
          f"{config.batch_size}, data {args.data}, torch threads {torch.get_num_threads()}, median of "
          f"{args.steps} steps after 1 warm-up\n")
    print("| stage | network | params | s/step | steps/s | samples/s | wall incl. setup (s) |")
    print("|---|---|---|---|---|---|---|")
    for stage, net, params, spi, rate, sps, total in rows:
        print(f"| {stage} | {net} | {params / 1e6:.2f} M | {spi:.2f} | {rate:.2f} | {sps:.1f} | {total:.0f} |")


if __name__ == "__main__":
    main()
