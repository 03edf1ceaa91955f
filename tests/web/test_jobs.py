"""`mofrr serve`'s restorations (no browser, no gradio): the same files and the same one-line errors as the CLI."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from mofrr_core.cli import main
from mofrr_core.web.jobs import PipelineCache, RestoreSettings, UploadError
from tests.conftest import make_tiny_pipeline
from tests.robustness.helpers import FakeDetector
from tests.robustness.test_bad_inputs import bad_corpus, write_corpus


def gradio_upload(tmp_path, source, name: str):
    """Where Gradio keeps an upload: its own folder, the user's file name."""
    upload = tmp_path / "uploads" / "3f2a9c" / name
    upload.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, upload)
    return upload


@pytest.fixture
def face_png(tmp_path, astronaut_face):
    (tmp_path / "in").mkdir()
    Image.fromarray(astronaut_face).save(tmp_path / "in" / "face.png")
    return tmp_path / "in" / "face.png"


def test_downloads_are_the_files_of_mofrr_restore_report(tmp_path, restorer, pipeline_dir, face_png):
    web = restorer.restore(gradio_upload(tmp_path, face_png, "face.png"), RestoreSettings(aligned=True, steps=2,
                                                                                          seed=3))
    out, report = tmp_path / "out", tmp_path / "report"
    assert main(["restore", str(face_png), "-o", str(out), "--report", str(report), "--aligned", "--pipeline",
                 str(pipeline_dir), "--steps", "2", "--seed", "3"]) == 0

    web_json, cli_json = json.loads(web.report.json.read_text()), json.loads((report / "face.json").read_text())
    assert (web_json.pop("input"), web_json.pop("output")) == ("face.png", "face-restored.png")
    assert web_json.pop("files") == {"heatmap": "face-restored.heatmap.png",
                                     "side_by_side": "face-restored.side_by_side.png"}
    assert set(web_json.pop("timings")) == set(cli_json.pop("timings")) == {"load_s", "restore_s"}
    for key in ("input", "output", "files"):
        cli_json.pop(key)
    assert web_json == cli_json  # probabilities, degrees, experts, sha256 of input, weights and restored pixels
    assert web.restored_png.read_bytes() == (out / "face.png").read_bytes()
    assert web.report.heatmap.read_bytes() == (report / "face.heatmap.png").read_bytes()
    assert web.report.side_by_side.read_bytes() == (report / "face.side_by_side.png").read_bytes()
    assert np.array_equal(web.result.image, np.asarray(Image.open(out / "face.png")))

    with zipfile.ZipFile(web.report_zip) as archive:
        assert sorted(archive.namelist()) == [f"face-restored-report/{p.name}" for p in sorted(web.report.paths())]
        for path in web.report.paths():
            assert archive.read(f"face-restored-report/{path.name}") == path.read_bytes()
    assert web.report_zip.parent.parent == tmp_path / "work"
    assert sorted(p.name for p in (tmp_path / "uploads" / "3f2a9c").iterdir()) == ["face.png"]  # nothing added


def test_bad_uploads_give_the_line_mofrr_restore_prints(tmp_path, restorer, pipeline_dir, astronaut_face,
                                                        monkeypatch, capsys):
    corpus = bad_corpus(astronaut_face)
    write_corpus(tmp_path / "bad", corpus)
    monkeypatch.chdir(tmp_path / "bad")  # the CLI then names the files as the page does: by their names
    assert main(["restore", ".", "-o", str(tmp_path / "out"), "--aligned", "--pipeline", str(pipeline_dir)]) == 1
    cli_lines = {line.removeprefix("error: ").split(":")[0]: line.removeprefix("error: ")
                 for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")}
    assert sorted(cli_lines) == sorted(corpus)
    for name, line in cli_lines.items():
        with pytest.raises(UploadError) as info:
            restorer.restore(gradio_upload(tmp_path, tmp_path / "bad" / name, name), RestoreSettings(aligned=True))
        assert str(info.value) == line
        assert "uploads" not in str(info.value)  # the server's temporary path is not shown
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_whole_photo_errors_and_bad_settings(tmp_path, restorer, face_png):
    upload = gradio_upload(tmp_path, face_png, "face.png")
    with pytest.raises(UploadError, match=r"^face\.png: no landmark provider \(test\)$"):
        restorer.restore(upload, RestoreSettings(aligned=False))
    restorer.detector = FakeDetector({})  # a detector that finds no face
    with pytest.raises(UploadError) as info:
        restorer.restore(upload, RestoreSettings(aligned=False))
    assert str(info.value) == "face.png: no face found (use --aligned if this is a face crop)"
    for settings, expected in [(RestoreSettings(aligned=True, steps=0), "face.png: steps must be a positive integer"),
                               (RestoreSettings(aligned=True, steps=2.5), "face.png: steps must be a positive"),
                               (RestoreSettings(aligned=True, seed=2**64), "face.png: seed"),
                               (RestoreSettings(aligned=True, experts=()), "face.png: experts: no expert selected"),
                               (RestoreSettings(aligned=True, experts=("lips",)),
                                "face.png: experts: unknown expert(s) lips (available: white, eye)")]:
        with pytest.raises(UploadError) as info:
            restorer.restore(upload, settings)
        assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_unexpected_errors_are_one_line_and_logged(tmp_path, restorer, face_png, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("mofrr_core.web.jobs.restore_photo", broken)
    with pytest.raises(UploadError) as info:
        restorer.restore(gradio_upload(tmp_path, face_png, "face.png"), RestoreSettings(aligned=True))
    assert str(info.value) == "face.png: ZeroDivisionError: division by zero (the server's log has the traceback)"
    assert "Traceback" in caplog.text and "ZeroDivisionError" in caplog.text


def test_expert_selection_loads_each_pipeline_once():
    calls = []
    cache = PipelineCache(lambda names: calls.append(names) or make_tiny_pipeline(experts=names),
                          make_tiny_pipeline(experts=("white", "eye")), size=2)
    assert cache.get(None) is cache.default and cache.get(["eye", "white"]) is cache.default and calls == []
    eye = cache.get(["eye"])
    assert [slot.name for slot in eye.experts] == ["eye"] and cache.get(("eye",)) is eye and calls == [("eye",)]
    cache.get(["white"])  # the cache holds 2: "eye" goes, the default pipeline stays
    assert cache.get(["eye"]) is not eye and calls == [("eye",), ("white",), ("eye",)]
    assert cache.get(["white", "eye"]) is cache.default


def test_selected_experts_are_the_ones_in_the_report(tmp_path, restorer, face_png):
    web = restorer.restore(gradio_upload(tmp_path, face_png, "face.png"),
                           RestoreSettings(aligned=True, experts=("eye",)))
    report = json.loads(web.report.json.read_text())
    assert [expert["name"] for expert in report["experts"]] == ["eye"]
    assert set(report["faces"][0]["experts_run"]) <= {"eye", "shared"}


def test_only_the_newest_job_folders_are_kept(tmp_path, restorer, face_png):
    restorer.keep = 2
    upload = gradio_upload(tmp_path, face_png, "face.png")
    results = [restorer.restore(upload, RestoreSettings(aligned=True, seed=seed)) for seed in range(3)]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["00002-face", "00003-face"]
    assert not results[0].restored_png.exists() and results[2].report_zip.is_file()
