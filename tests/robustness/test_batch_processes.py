"""``accelerate launch -m mofrr_core.cli restore``: two CPU processes write what one process writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

NAMES = ["a", "b", "c", "c_broken", "d", "e"]  # split in order: a, b, c to process 0, the rest to process 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(folder: Path, *args, processes: int = 2) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu --num_processes N -m mofrr_core.cli restore ...`` in ``folder``."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--multi_gpu",
               "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", "mofrr_core.cli",
               "restore", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def mtimes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


@pytest.fixture
def batch(tmp_path, astronaut_face):
    """``tmp/in``: five face crops and a broken file; ``tmp/one``, ``tmp/two``: where the runs start."""
    (tmp_path / "in").mkdir()
    for i, name in enumerate(NAMES):
        if name == "c_broken":
            (tmp_path / "in" / f"{name}.png").write_bytes(b"not a png")
        else:
            Image.fromarray(np.roll(astronaut_face, 7 * i, axis=(0, 1))).save(tmp_path / "in" / f"{name}.png")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    return tmp_path


@pytest.mark.slow
def test_two_processes_write_the_same_bytes_as_one_and_resume(batch, cli, pipeline_dir, monkeypatch):
    args = ["../in", "-o", "out", "--report", "rep", "--no-timings", "--aligned", "--pipeline", pipeline_dir]
    monkeypatch.chdir(batch / "one")  # same relative paths in both runs: the report JSONs name the same files
    single = cli(*args, pipeline=False)
    assert single.code == 1 and "1 failed (../in/c_broken.png)" in single.out

    two = launch(batch / "two", *args)
    assert "restored 5 image(s) into out, 1 failed (../in/c_broken.png)" in two.stdout, two.stderr
    assert two.stdout.count("restored ") == 1 and two.stderr.count("error: ../in/c_broken.png") == 1
    assert two.returncode == 1 and "exitcode  : 1" in two.stderr  # the launcher: any process failed -> 1
    assert "interrupted" not in two.stderr
    for sub in ("out", "rep"):
        expected = folder_bytes(batch / "one" / sub)
        assert len(expected) == 5 * (1 if sub == "out" else 3)
        assert folder_bytes(batch / "two" / sub) == expected

    out = batch / "two" / "out"
    (out / "a.png").unlink()  # one output of each process's share
    (out / "e.png").unlink()
    kept = {name: mtime for name, mtime in mtimes(out).items()}
    resumed = launch(batch / "two", *args, "--skip-existing")
    assert "restored 2 image(s) into out, 1 failed (../in/c_broken.png), 3 skipped" in resumed.stdout, resumed.stderr
    assert sorted(line.split(" -> ")[0] for line in resumed.stdout.splitlines() if " -> " in line) == [
        "../in/a.png", "../in/e.png"]
    assert {name: mtime for name, mtime in mtimes(out).items() if name in kept} == kept  # the others untouched
    assert folder_bytes(out) == folder_bytes(batch / "one" / "out")
    assert folder_bytes(batch / "two" / "rep") == folder_bytes(batch / "one" / "rep")


@pytest.mark.slow
def test_setup_error_with_two_processes_is_reported_once(batch, pipeline_dir):
    result = launch(batch / "two", "../in", "-o", "out", "--aligned", "--experts", "bogus")
    assert result.stderr.count("error: --experts: unknown expert(s) bogus") == 1, result.stderr
    assert result.returncode == 1 and "exitcode  : 2" in result.stderr and not (batch / "two" / "out").exists()


def test_summary_names_the_first_ten_failed_inputs():
    from mofrr_core.restore import batch_summary

    failed = [f"in/{i}.png" for i in range(12)]
    assert batch_summary(Path("out"), 3, failed, 2) == (
        "restored 3 image(s) into out, 12 failed (" + ", ".join(failed[:10]) + ", and 2 more), 2 skipped")
    assert batch_summary(Path("out"), 3, [], 0) == "restored 3 image(s) into out"
