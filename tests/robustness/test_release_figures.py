"""benchmarks/release_figures.py: every test-split figure of docs/results.md with one command (no run here)."""

from __future__ import annotations

import subprocess

import pytest

from tests.robustness.helpers import load_benchmark


@pytest.fixture(scope="module")
def release():
    return load_benchmark("release_figures")


def test_the_commands_cover_every_group(release, tmp_path):
    make, measure = release.jobs(tmp_path, "faces", release.GROUPS)
    names = [name for name, _ in measure]
    documented = {"test", "test224", "whole_photo", "whole_photo_125", "whole_photo_app", "whole_photo_reframe",
                  "whole_photo_reframe_jpeg", "whole_photo_smooth_image",
                  "untouched_test", "sharp/made", "sharp/untouched", "outside/opencv-loose", "outside/tone-made"}
    assert documented <= set(names)
    assert sum(n.startswith("conditions/") for n in names) == len(release.CONDITIONS) == 11
    assert len(set(names)) == len(names)  # one report file each
    assert [n for n, _ in make][:2] == ["outside/make-opencv", "outside/make-tone"]
    for name, command in measure:
        if "whole_photo.py" in command[1]:
            assert command[command.index("--out") + 1] == str(tmp_path / f"{name}.json")
    only, measured = release.jobs(tmp_path, "faces", ["sharp"])
    assert only == [] and [n for n, _ in measured] == ["sharp/made", "sharp/scale", "sharp/loose", "sharp/untouched"]


def test_a_failed_pair_folder_skips_its_figures_and_fails_the_run(release, tmp_path, monkeypatch, shards):
    ran = []

    def fake_run(command, stdout, stderr, check):
        ran.append(command)
        broken = "outside.py" in command[1] and "tone" in command
        return subprocess.CompletedProcess(command, 1 if broken else 0)

    monkeypatch.setattr(release.subprocess, "run", fake_run)
    out = tmp_path / "out"
    assert release.main([str(out), "--data", str(shards), "--only", "outside", "--jobs", "1"]) == 1
    measured = [c[c.index("--out") + 1] for c in ran if "whole_photo.py" in c[1]]
    assert not any("tone-" in m for m in measured) and any("opencv-made" in m for m in measured)
    assert (out / "outside" / "make-tone.log").exists()


def test_an_existing_folder_is_refused(release, tmp_path, shards):
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit):
        release.main([str(tmp_path / "out"), "--data", str(shards)])
    with pytest.raises(SystemExit):
        release.main([str(tmp_path / "new"), "--data", str(shards), "--jobs", "0"])
