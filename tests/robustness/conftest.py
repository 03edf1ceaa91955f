"""Fixtures for the robustness tests: a saved tiny pipeline, a CLI runner and the face shards."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def shards() -> Path:
    """The real face shards (``MOFRR_DATA``); the test is skipped where there are none."""
    root = Path(os.environ["MOFRR_DATA"])
    if not any(root.glob("*.tar")):
        pytest.skip(f"no face shards in MOFRR_DATA={root} (see ../shared/data/faces/README.md)")
    return root


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, pipeline_dir):
    """``cli(*args, pipeline=True)`` runs ``mofrr restore ...`` in-process and returns code, stdout, stderr."""
    from mofrr_core.cli import main

    def run(*args, pipeline: bool = True, command: str = "restore") -> CliResult:
        argv = [command, *map(str, args)]
        if pipeline:
            argv += ["--pipeline", str(pipeline_dir)]
        capsys.readouterr()
        code = main(argv)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
