"""The `mofrr` command line: restore a folder, refuse to overwrite, list experts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mofrr_core.cli import main


@pytest.fixture
def photos(tmp_path, astronaut_face):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(astronaut_face).save(folder / "a.png")
    Image.fromarray(astronaut_face[:, ::-1]).save(folder / "b.jpg", quality=95)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_restore_folder_then_refuse_overwrite(photos, pipeline_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["restore", str(photos), "-o", str(out), "--aligned", "--pipeline", str(pipeline_dir)]
    assert main(args) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a.png", "b.png"]
    restored = np.asarray(Image.open(out / "a.png"))
    assert restored.shape == (64, 64, 3)
    stamp = (out / "a.png").stat().st_mtime_ns
    capsys.readouterr()

    assert main(args) != 0  # second run: refuses, names the file, writes nothing
    err = capsys.readouterr().err
    assert "a.png" in err and "--overwrite" in err
    assert (out / "a.png").stat().st_mtime_ns == stamp

    assert main(args + ["--skip-existing"]) == 0
    assert main(args + ["--overwrite"]) == 0
    assert (out / "a.png").stat().st_mtime_ns != stamp


def test_restore_is_deterministic_with_a_seed(photos, pipeline_dir, tmp_path):
    outputs = []
    for run in ("x", "y"):
        out = tmp_path / run
        main(["restore", str(photos / "a.png"), "-o", str(out), "--aligned", "--pipeline", str(pipeline_dir),
              "--seed", "7"])
        outputs.append(np.asarray(Image.open(out / "a.png")))
    assert np.array_equal(*outputs)


def test_bad_input_is_one_line_error_and_nonzero_exit(tmp_path, pipeline_dir, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    code = main(["restore", str(bad), "-o", str(tmp_path / "out"), "--aligned", "--pipeline", str(pipeline_dir)])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_experts_lists_installed_packages(capsys):
    assert main(["experts", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"white", "smooth", "face", "eye", "shared"} <= set(rows)
    assert rows["eye"]["package"] == "mofrr-expert-eye"
    assert rows["shared"]["kind"] == "shared"
    assert rows["eye"]["weights"] in {"present", "missing"}


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("mofrr ")
    with pytest.raises(SystemExit):
        main(["restore", "--help"])
    assert "--overwrite" in capsys.readouterr().out


def test_restore_help_explains_modes_report_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["restore", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for text in ("--aligned", "--report", "--no-timings", "--skip-existing", "mofrr[landmarks]", "exit codes"):
        assert text in out, text
