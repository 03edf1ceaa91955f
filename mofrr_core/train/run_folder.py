"""A training run's folder: what it holds, refusing to mix two runs in it, checkpoints, and the run record
(the command, the code's git commit, the data)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from mofrr_core.train.config import TrainConfig

RUN_FILE = "run.json"
SUMMARY_FILE = "training.json"
RUN_OUTPUTS = ("checkpoints", "final", "best", "cache", "metrics.jsonl", "metrics.csv", "curves.png", RUN_FILE,
               SUMMARY_FILE)


class OutputDirError(FileExistsError):
    """The output folder already holds something and neither --resume nor --overwrite was given."""


def command_line() -> str:
    """The command that started this process, shell-quoted."""
    program = Path(sys.argv[0]).name if sys.argv else "mofrr-train"
    if program in ("cli.py", "__main__.py", "-m", "-c"):
        program = "python -m mofrr_core.train.cli"
    return " ".join([program, *map(shlex.quote, sys.argv[1:])])


def git_commit() -> str | None:
    """The git commit of the source tree this package runs from (``None`` outside a checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def data_root(config: TrainConfig) -> str | None:
    """The face data folder this run reads (``--data``, ``MOFRR_DATA`` or the data engine's default)."""
    if config.data.get("type", "RetouchPairs") != "RetouchPairs":
        return None
    if config.data_root:
        return str(Path(config.data_root).resolve())
    if os.environ.get("MOFRR_DATA"):
        return str(Path(os.environ["MOFRR_DATA"]).resolve())
    try:
        from mofrr_core.data import default_data_root

        return str(default_data_root())
    except ImportError:
        return None


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(dataset).__name__, "samples": len(dataset)}
    for attr in ("num_faces", "faces"):
        value = getattr(dataset, attr, None)
        if isinstance(value, int):
            info["faces"] = value
        elif value is not None and hasattr(value, "__len__"):
            info["faces"] = len(value)
    return info


def find_checkpoint(output_dir: Path, resume: str) -> Path:
    """``latest`` -> newest ``checkpoints/checkpoint-<step>``; otherwise the given folder."""
    if resume != "latest":
        path = Path(resume)
        if not path.is_dir():
            raise FileNotFoundError(f"--resume {resume}: no such checkpoint folder")
        return path
    checkpoints = list_checkpoints(output_dir)
    if not checkpoints:
        raise FileNotFoundError(f"--resume latest: no checkpoint in {output_dir / 'checkpoints'}")
    return checkpoints[-1]


def list_checkpoints(output_dir: Path) -> list[Path]:
    folder = output_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")
             and p.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))


def continued_record(run_file: Path, checkpoint: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """The run record a resumed run extends: its own ``run.json``, else that of the run the checkpoint
    comes from (``--resume RUN/checkpoints/checkpoint-N`` into a new folder), else ``fresh``."""
    origin = run_file if run_file.is_file() else checkpoint.parent.parent / RUN_FILE
    record = json.loads(origin.read_text()) if origin.is_file() else fresh
    record.setdefault("resumed", [])
    return record


def prepare_output_dir(output_dir: Path, config: TrainConfig, allow: tuple[str, ...] = ()) -> None:
    """Refuse a non-empty output folder unless resuming (same stage/expert) or ``overwrite``."""
    existing = [p for p in output_dir.iterdir() if p.name not in allow] if output_dir.is_dir() else []
    run_file = output_dir / RUN_FILE
    if config.resume:
        if run_file.is_file():
            previous = json.loads(run_file.read_text())
            if (previous.get("stage"), previous.get("expert")) != (config.stage, config.expert):
                raise OutputDirError(f"{output_dir} holds a {previous.get('stage')} run "
                                     f"(expert {previous.get('expert')}); cannot resume it as stage "
                                     f"{config.stage} (expert {config.expert})")
        return
    if not existing:
        return
    if not config.overwrite:
        names = ", ".join(sorted(p.name for p in existing)[:5])
        raise OutputDirError(f"output dir {output_dir} is not empty ({names}); pass --resume latest to continue "
                             "that run, --overwrite to replace it, or choose another --output-dir")
    for path in existing:
        if path.name in RUN_OUTPUTS:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
