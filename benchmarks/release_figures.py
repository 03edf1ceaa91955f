"""The whole pipeline's test-split figures of a release (docs/results.md) for the installed pipeline, in one run.

Usage: python benchmarks/release_figures.py OUT_DIR [--data DIR] [--jobs 2] [--only GROUP ...] [--dry-run]
                                            [--overwrite]

A release is measured on the test split once, with the commands docs/results.md gives table by table. This runs
those of the whole pipeline (the router-alone tables, ``photo_conditions.py`` and ``by_group.py``, keep their own)
into ``OUT_DIR`` (about half an hour with two jobs on two cores), each command's tables in
``OUT_DIR/<name>.md``, its per-image numbers in ``<name>.json`` (``mofrr eval``: a folder) and its progress in
``<name>.log``. Groups (``--only``):

- ``eval``: ``mofrr eval`` on 600 test faces (in-domain and held-out reports) and at 224 px;
- ``whole``: whole photos as made, resized x1.25, after an app's export, reframed before the retouching (also saved
  as JPEG 90 first), with the held-out smoothings on the whole photo (``--smooth-region image``), and the whole test
  split untouched;
- ``conditions``: whole photos under the eleven photo conditions of ``benchmarks/photo_conditions.py``;
- ``sharp``: the faces with real skin detail (``--min-sharpness 2.0``), as made, x1.25, looser framing, untouched;
- ``outside``: the outside software of ``benchmarks/outside.py`` (OpenCV's smoothing, Pillow's and scikit-image's
  tone changes, and facetweak's warps where it is installed, also on photos reframed before it, and reframed and
  saved as JPEG 90): its pair folders are made first under ``OUT_DIR/outside/``, then measured as made, x1.25 and
  in a looser framing.

``--dry-run`` prints the commands. An existing ``OUT_DIR`` is refused unless ``--overwrite``. Not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from photo_conditions import CONDITIONS as PHOTO_CONDITIONS
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
GROUPS = ("eval", "whole", "conditions", "sharp", "outside")
CONDITIONS = tuple(c for c in PHOTO_CONDITIONS if c != "none")  # whole_photo.py --condition, "none" is "whole"
VARIANTS = {"made": [], "scale": ["--photo-scale", "1.25"], "loose": ["--condition", "looser-framing"]}
Job = tuple[str, list[str]]  # (name, command)


def whole_photo(out: Path, name: str, *args: str) -> Job:
    return name, [sys.executable, str(HERE / "whole_photo.py"), "--split", "test", *args,
                  "--out", str(out / f"{name}.json")]


def outside_software() -> list[tuple[str, list[str], dict[str, list[str]]]]:
    """``(folder, outside.py options, measured variants)`` of the outside software that can run here: OpenCV and
    the tone changes, facetweak (also on photos reframed before it, and saved as JPEG 90 first, as made only) where
    it is installed."""
    software = [("opencv", ["--software", "opencv", "-n", "300"], VARIANTS),
                ("tone", ["--software", "tone", "-n", "400"], VARIANTS)]
    if importlib.util.find_spec("facetweak"):
        software += [("facetweak", ["--software", "facetweak", "-n", "400"], VARIANTS),
                     ("facetweak-reframe", ["--software", "facetweak", "-n", "400", "--reframe", "0.15"],
                      {"made": []}),
                     ("facetweak-reframe-jpeg", ["--software", "facetweak", "-n", "400", "--reframe", "0.15",
                                                 "--reframe-jpeg", "90"], {"made": []})]
    return software


def jobs(out: Path, data: str, groups: Sequence[str]) -> tuple[list[Job], list[Job]]:
    """The commands: pair folders to make first, then the measurements."""
    make: list[Job] = []
    measure: list[Job] = []
    mofrr_eval = [sys.executable, "-m", "mofrr_core.cli", "eval", "--data", data, "-n", "600", "--degrees", "none",
                  "--no-identity", "--quiet"]
    if "eval" in groups:
        measure += [("test", [*mofrr_eval, "--out", str(out / "test")]),
                    ("test224", [*mofrr_eval, "--apis-set", "heldout", "--resolution", "224",
                                 "--out", str(out / "test224")])]
    if "whole" in groups:
        measure += [whole_photo(out, "whole_photo", "-n", "300"),
                    whole_photo(out, "whole_photo_125", "-n", "300", "--photo-scale", "1.25"),
                    whole_photo(out, "whole_photo_app", "-n", "300", "--postprocess", "app"),
                    whole_photo(out, "whole_photo_reframe", "-n", "300", "--reframe", "0.15"),
                    whole_photo(out, "whole_photo_reframe_jpeg", "-n", "300", "--reframe", "0.15",
                                "--reframe-jpeg", "90"),
                    whole_photo(out, "whole_photo_smooth_image", "-n", "300", "--smooth-region", "image"),
                    whole_photo(out, "untouched_test", "-n", "1102", "--ops", "untouched")]
    if "conditions" in groups:
        measure += [whole_photo(out, f"conditions/{c}", "-n", "300", "--condition", c) for c in CONDITIONS]
    if "sharp" in groups:
        sharp = ["--min-sharpness", "2.0"]
        measure += [whole_photo(out, f"sharp/{k}", "-n", "360", *sharp, *v) for k, v in VARIANTS.items()]
        measure.append(whole_photo(out, "sharp/untouched", "-n", "180", "--ops", "untouched", *sharp))
    if "outside" in groups:
        for name, options, variants in outside_software():
            folder, n = out / "outside" / name, options[options.index("-n") + 1]
            make.append((f"outside/make-{name}", [sys.executable, str(HERE / "outside.py"), str(folder), *options,
                                                  "--data", data]))
            measure += [whole_photo(out, f"outside/{name}-{k}", "--data", str(folder), "-n", n, *v)
                        for k, v in variants.items()]
    return make, measure


def run(out: Path, job: Job) -> int:
    name, command = job
    with open(out / f"{name}.md", "w") as stdout, open(out / f"{name}.log", "w") as stderr:
        return subprocess.run(command, stdout=stdout, stderr=stderr, check=False).returncode


def run_all(out: Path, batch: list[Job], workers: int, desc: str) -> list[str]:
    """Run ``batch`` with ``workers`` at a time; the names of the commands that failed."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(tqdm(pool.map(lambda job: run(out, job), batch), total=len(batch), desc=desc, unit="run",
                          file=sys.stderr))
    return [name for (name, _), code in zip(batch, codes) if code != 0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the reports (refused if it exists)")
    parser.add_argument("--data", default=None, help="face shard folder (default: $MOFRR_DATA)")
    parser.add_argument("--jobs", type=int, default=2, help="commands at a time (default 2: one per core)")
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS), help="groups to run (default all)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    from mofrr_core.data.shards import resolve_data_root

    make, measure = jobs(args.out, str(resolve_data_root(args.data)), args.only)
    if args.dry_run:
        print("\n".join(" ".join(command) for _, command in make + measure))
        return 0
    if args.out.exists():
        if not args.overwrite:
            parser.error(f"{args.out} exists; pass --overwrite to replace it")
        shutil.rmtree(args.out)
    for sub in ("conditions", "sharp", "outside"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    failed = run_all(args.out, make, args.jobs, "pair folders") if make else []
    broken = tuple(f"outside/{name.removeprefix('outside/make-')}-" for name in failed)  # no folder, no figures
    failed += run_all(args.out, [job for job in measure if not (broken and job[0].startswith(broken))], args.jobs,
                      "figures")
    for name in failed:
        print(f"failed: {name} (see {args.out / name}.log)", file=sys.stderr)
    print(f"{len(make) + len(measure) - len(failed)} reports in {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
