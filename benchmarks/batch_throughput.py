"""Batch throughput of ``mofrr restore``: images per second with 1 process and with N processes (not a test).

Usage: python benchmarks/batch_throughput.py [--data DIR] [-n 40] [--processes 2] [--steps K] [--aligned]
                                            [--keep DIR]

Writes ``-n`` retouched test faces (FairFace crops at their own 224 px, retouched by the engine: white,
smooth, face, eye, multi and untouched in turn, as ``mofrr eval --ops balanced`` picks them) as PNG
photos into a folder, then restores the folder with the shipped pipeline, each run a fresh command
timed from start to exit (start-up included, as a user sees it):

- ``mofrr restore`` as one process with 1 torch thread, and with one thread per core;
- ``accelerate launch --multi_gpu --num_processes N -m mofrr_core.cli restore`` (N processes on the
  CPU, gloo; each process takes cores / N torch threads).

Whole-photo mode (MediaPipe face search, alignment, paste-back) unless ``--aligned``. Prints a
markdown table (wall time, images/s, whether every output is byte-identical to the first run's) and
the load average of the machine before and after (other work on the machine slows every row).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]


def write_photos(folder: Path, data: Path | None, n: int, seed: int) -> None:
    """``n`` retouched test faces as ``face-000.png`` ...; untouched ones are a sixth of them."""
    from PIL import Image

    from mofrr_core.eval.samples import load_samples
    from mofrr_core.utils.image import to_uint8

    samples, _, _ = load_samples(data, split="test", n=n, resolution=None, degrees="none",
                                  seed=seed, quiet=True)
    for i in tqdm(range(n), desc="writing photos", unit="img", file=sys.stderr):
        Image.fromarray(to_uint8(samples[i]["retouched"])).save(folder / f"face-{i:03d}.png")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def commands(processes: int, cores: int) -> list[tuple[str, list[str], dict[str, str]]]:
    """``(label, command, environment)`` of each run: the command line ends before the restore arguments."""
    mofrr = [sys.executable, "-m", "mofrr_core.cli", "restore"]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--multi_gpu",
              "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", "mofrr_core.cli", "restore"]
    runs = [("1 process, 1 thread", mofrr, {"OMP_NUM_THREADS": "1"})]
    if cores > 1:
        runs.append((f"1 process, {cores} threads", mofrr, {"OMP_NUM_THREADS": str(cores)}))
    runs.append((f"{processes} processes (accelerate launch), {max(1, cores // processes)} thread(s) each",
                 launch, {}))
    return runs


def time_run(command: list[str], env: dict[str, str], photos: Path, out: Path, extra: list[str]) -> float:
    """Seconds from start to exit of ``command photos -o out ...``; ``RuntimeError`` if it failed (exit 1, some
    photos without a usable face, is accepted: the outputs are counted)."""
    full = [*command, str(photos), "-o", str(out), *extra]
    start = time.perf_counter()
    done = subprocess.run(full, env={**os.environ, **env}, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1) or not out.is_dir():
        raise RuntimeError(f"{' '.join(full)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("-n", type=int, default=40, help="number of photos (default: 40)")
    parser.add_argument("--processes", type=int, default=2, help="processes of the launched run (default: 2)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: from the registry)")
    parser.add_argument("--aligned", action="store_true", help="restore the photos as aligned crops")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    parser.add_argument("--keep", type=Path, default=None, help="write photos and outputs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.keep and args.keep.exists():
        parser.error(f"--keep {args.keep}: exists; choose a new folder")

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    extra = (["--aligned"] if args.aligned else []) + (["--steps", str(args.steps)] if args.steps else [])
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or Path(scratch)
        photos = work / "photos"
        photos.mkdir(parents=True)
        write_photos(photos, args.data, args.n, args.seed)
        load_before = os.getloadavg()
        rows, first = [], None
        for i, (label, command, env) in enumerate(commands(args.processes, cores)):
            out = work / f"out-{i}"
            seconds = time_run(command, env, photos, out, extra)
            outputs = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
            first = first or outputs
            rows.append(f"| {label} | {seconds:.1f} | {args.n / seconds:.2f} | {'yes' if outputs == first else 'NO'} |")
            print(f"{label}: {seconds:.1f} s", file=sys.stderr)
        load_after = os.getloadavg()
    mode = "aligned crops" if args.aligned else "whole photos"
    print(f"{args.n} {mode} (224 px FairFace test faces, retouched; {len(first)} restored, the others without "
          f"a usable face), {cores} cores, DDIM steps "
          f"{args.steps or 'from the registry'}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}\n")
    print("| run | wall time (s) | images/s | outputs identical to the first run |\n|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
