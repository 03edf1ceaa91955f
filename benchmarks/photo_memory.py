"""Peak memory of `mofrr restore` on whole photos, per extra photo pixel (not a test).

Usage: OMP_NUM_THREADS=1 python benchmarks/photo_memory.py [--sizes 1000x750,2000x1500,4000x3000]
       [--steps 1] [--report] [--aligned]

Writes one photo per size (an astronaut face, 80 px between the eyes, on a textured canvas; PNG),
runs ``python -m mofrr_core.cli restore`` on each in its own process and reads that process's
peak resident set size (``os.wait4`` -> ``ru_maxrss``). The fixed part (torch, the networks,
MediaPipe) is the same for every size, so the slope between two sizes is what each extra photo
pixel costs; it is printed as a multiple of the photo's RGB bytes (3 per pixel). docs/restore.md
quotes its output. Needs the landmark extra (MediaPipe) unless ``--aligned``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.robustness.helpers import composed_photo  # noqa: E402


def peak_rss_mb(argv: list[str]) -> float:
    """Peak resident memory (MB) of one child process running ``argv``."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}): {error}")
    return usage.ru_maxrss / 1024  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000x750,2000x1500,4000x3000")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="also write the forensic report")
    parser.add_argument("--aligned", action="store_true", help="--aligned instead of whole-photo mode")
    args = parser.parse_args()
    sizes = [tuple(map(int, size.split("x"))) for size in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in sizes:
            photo, _ = composed_photo(height, width, [(width // 3, height // 3, 80)])
            path = Path(tmp) / f"photo_{width}x{height}.png"
            Image.fromarray(photo).save(path)
            argv = [sys.executable, "-m", "mofrr_core.cli", "restore", str(path), "-o", f"{tmp}/out",
                    "--overwrite", "--steps", str(args.steps)]
            argv += ["--report", f"{tmp}/report"] if args.report else []
            argv += ["--aligned"] if args.aligned else []
            rows.append((width * height, peak_rss_mb(argv)))
            print(f"{width}x{height}: peak RSS {rows[-1][1]:.0f} MB", flush=True)
    pixels, peaks = np.array(rows, dtype=np.float64).T
    slope = np.polyfit(pixels, peaks * 2**20, 1)[0]  # bytes per pixel
    print(f"per extra pixel: {slope:.1f} bytes = {slope / 3:.1f}x the RGB bytes "
          f"(fixed part {peaks[0] - slope * pixels[0] / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
