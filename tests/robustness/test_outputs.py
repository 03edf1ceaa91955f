"""Output folders and files: refusals are usage errors (exit 2), writes are atomic, batches resume."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import mofrr_core.io as mofrr_io
import mofrr_core.restore as restore_module


@pytest.fixture
def photos(tmp_path, astronaut_face):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(["a", "b", "c"]):
        Image.fromarray(np.roll(astronaut_face, 5 * i, axis=1)).save(folder / f"{name}.png")
    return folder


def no_partials(folder) -> bool:
    return not any(p.name.endswith(mofrr_io.PARTIAL_SUFFIX) for p in folder.rglob("*"))


def test_output_equal_to_input_is_refused(photos, cli):
    before = (photos / "a.png").read_bytes()
    result = cli(photos / "a.png", "-o", photos, "--aligned", "--overwrite")
    assert result.code == 2 and "equals an input" in result.err and "a.png" in result.err
    assert (photos / "a.png").read_bytes() == before


def test_report_file_may_not_replace_an_input(photos, cli, tmp_path):
    (photos / "x.heatmap.png").write_bytes((photos / "a.png").read_bytes())
    Image.open(photos / "a.png").save(photos / "x.png")
    result = cli(photos / "x.png", photos / "x.heatmap.png", "-o", tmp_path / "o", "--aligned", "--report", photos)
    assert result.code == 2 and "x.heatmap.png" in result.err and "replace an input" in result.err


def test_missing_output_folder_is_created(photos, cli, tmp_path):
    out = tmp_path / "new" / "nested" / "out"
    assert cli(photos / "a.png", "-o", out, "--aligned").code == 0
    assert (out / "a.png").is_file()


def test_output_folder_that_is_a_file_is_a_usage_error(photos, cli, tmp_path):
    blocker = tmp_path / "blocker.txt"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        result = cli(photos / "a.png", "-o", out, "--aligned")
        assert result.code == 2 and str(blocker) in result.err and "Traceback" not in result.err
    assert blocker.read_text() == "x"


def test_read_only_output_folder_is_a_usage_error(photos, cli, tmp_path, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores permissions: simulate a read-only file system instead
            def refuse(*args, **kwargs):
                raise PermissionError(13, "Permission denied")
            monkeypatch.setattr(mofrr_io.tempfile, "mkstemp", refuse)
        result = cli(photos, "-o", out, "--aligned")
    finally:
        out.chmod(0o755)
    assert result.code == 2 and str(out) in result.err and "cannot write" in result.err
    assert "Traceback" not in result.err and not any(out.iterdir())


def test_unknown_output_format_and_bad_numbers_are_usage_errors(photos, cli, tmp_path):
    result = cli(photos / "a.png", "-o", tmp_path / "o", "--aligned", "--ext", ".xyz")
    assert result.code == 2 and ".xyz" in result.err
    with pytest.raises(SystemExit) as info:  # argparse: exit 2
        cli(photos / "a.png", "-o", tmp_path / "o", "--max-faces", "0")
    assert info.value.code == 2
    result = cli(tmp_path / "nothing-here.png", "-o", tmp_path / "o", "--aligned")
    assert result.code == 2 and "nothing-here.png" in result.err


def test_jpeg_output_by_suffix(photos, cli, tmp_path):
    out = tmp_path / "o"
    assert cli(photos / "a.png", "-o", out, "--aligned", "--ext", "jpg").code == 0
    assert Image.open(out / "a.jpg").format == "JPEG"


def test_interrupted_batch_leaves_complete_files_and_resumes(photos, cli, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = restore_module.restore_photo
    calls = []

    def interrupt_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(restore_module, "restore_photo", interrupt_second)
    result = cli(photos, "-o", out, "--aligned", "--report", out / "report")
    assert result.code == 130 and "interrupted" in result.err
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png"]
    assert np.asarray(Image.open(out / "a.png")).shape == (64, 64, 3)  # complete, decodable
    assert sorted(p.name for p in (out / "report").iterdir()) == ["a.heatmap.png", "a.json", "a.side_by_side.png"]
    assert no_partials(out)
    stamp = (out / "a.png").stat().st_mtime_ns

    monkeypatch.setattr(restore_module, "restore_photo", real)
    refused = cli(photos, "-o", out, "--aligned", "--report", out / "report")
    assert refused.code == 2 and "a.png" in refused.err and "--skip-existing" in refused.err
    resumed = cli(photos, "-o", out, "--aligned", "--report", out / "report", "--skip-existing")
    assert resumed.code == 0 and "1 skipped" in resumed.out
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png", "c.png"]
    assert (out / "a.png").stat().st_mtime_ns == stamp
    assert len(list((out / "report").glob("*.json"))) == 3


def test_a_write_interrupted_midway_leaves_no_file(photos, cli, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_save = Image.Image.save

    def die_midway(self, fp, *args, **kwargs):
        if hasattr(fp, "write"):
            fp.write(b"\x89PNG\r\n\x1a\n half an image")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", die_midway)
    assert cli(photos / "a.png", "-o", out, "--aligned").code == 130
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert out.is_dir() and not any(out.iterdir())


def test_stale_partial_files_of_a_killed_run_are_removed_on_resume(photos, cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".b.png.k1ll3d{mofrr_io.PARTIAL_SUFFIX}"
    stale.write_bytes(b"\x89PNG half")
    unrelated = out / "keep-me.partial.txt"
    unrelated.write_text("not ours")
    assert cli(photos, "-o", out, "--aligned", "--skip-existing").code == 0
    assert not stale.exists() and unrelated.exists()
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png", "c.png"]


def test_failure_in_one_image_does_not_stop_the_batch(photos, cli, tmp_path, monkeypatch):
    real = restore_module.restore_photo

    def explode_on_b(pipeline, image, **kwargs):
        if image[0, 0].tolist() == np.asarray(Image.open(photos / "b.png"))[0, 0].tolist():
            raise RuntimeError("simulated network failure")
        return real(pipeline, image, **kwargs)

    monkeypatch.setattr(restore_module, "restore_photo", explode_on_b)
    out = tmp_path / "out"
    result = cli(photos, "-o", out, "--aligned")
    assert result.code == 1
    line = next(line for line in result.err.splitlines() if "b.png" in line)
    assert line.startswith("error: ") and "simulated network failure" in line and "Traceback" not in result.err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
