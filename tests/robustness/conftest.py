"""Fixtures for the robustness tests: a saved tiny pipeline, a CLI runner and the face shards."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


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
