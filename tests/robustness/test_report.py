"""The forensic report: every field, reproducible with a seed, a heatmap that shows the change."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from PIL import Image

from mofrr_core.report import HEATMAP_VMAX, colorize, report_paths, write_report
from tests.conftest import TYPES
from tests.robustness.helpers import FakeDetector, install_fake_provider, two_face_photo

TOP_LEVEL = {"report_version", "input", "input_sha256", "output", "image_size", "mode", "detected_types", "faces",
             "ddim_steps", "seed", "threshold", "gate_thresholds", "gate_blend", "change_cap", "confounded_gates",
             "keep_low_frequencies", "skip_combine", "grid_gates", "undo_enlargement", "router_native_range",
             "grid_native", "resolution", "experts", "weights_sha256", "region", "difference", "heatmap",
             "restored_pixels_sha256", "versions", "files"}
FACE = {"index", "box", "points5", "probabilities", "detected", "explained_away", "degrees", "experts_run",
        "router_view"}


def run_report(cli, tmp_path, *extra):
    result = cli(tmp_path / "group.png", "-o", tmp_path / "out", "--report", tmp_path / "report", "--seed", "5",
                 "--steps", "2", "--overwrite", *extra)
    assert result.code == 0, result.err
    files = report_paths(tmp_path / "report", "group")
    return json.loads(files.json.read_text()), [p.read_bytes() for p in (files.heatmap, files.side_by_side)]


def test_report_has_every_field_and_is_reproducible(tmp_path, cli, monkeypatch, pipeline_dir):
    photo, faces = two_face_photo()
    install_fake_provider(monkeypatch, FakeDetector({photo.shape[:2]: faces}))
    Image.fromarray(photo).save(tmp_path / "group.png")
    first, first_png = run_report(cli, tmp_path)
    second, second_png = run_report(cli, tmp_path)

    assert TOP_LEVEL | {"timings"} == set(first)
    assert list(first)[-1] == "timings" and all(v >= 0 for v in first["timings"].values())
    assert {"detect_s", "restore_s", "load_s"} <= set(first["timings"])
    first.pop("timings"), second.pop("timings")
    assert first == second and first_png == second_png  # identical apart from timings
    untimed, _ = run_report(cli, tmp_path, "--no-timings")
    assert untimed == first  # no timings key at all

    assert first["mode"] == "whole-photo" and first["image_size"] == [photo.shape[1], photo.shape[0]]
    assert first["seed"] == 5 and first["ddim_steps"] == 2 and first["resolution"] == 32
    assert first["input_sha256"] == hashlib.sha256((tmp_path / "group.png").read_bytes()).hexdigest()
    restored = np.asarray(Image.open(tmp_path / "out" / "group.png"))
    assert first["restored_pixels_sha256"] == hashlib.sha256(restored.tobytes()).hexdigest()
    expected_weights = {"router": "router", "combine": "combine", "shared": "shared",
                        "experts.white": "experts/white", "experts.eye": "experts/eye"}
    assert first["weights_sha256"] == {
        key: hashlib.sha256(next((pipeline_dir / sub).glob("*.safetensors")).read_bytes()).hexdigest()
        for key, sub in sorted(expected_weights.items())}
    assert {"mofrr", "torch", "diffusers", "numpy", "python"} <= set(first["versions"])
    assert [(e["name"], e["strength"]) for e in first["experts"]] == [("white", 1.0), ("eye", 1.0)]

    detected = set()
    for face in first["faces"]:
        assert set(face) == FACE
        assert list(face["probabilities"]) == TYPES
        assert all(0.0 <= p <= 1.0 for p in face["probabilities"].values())
        assert face["detected"] == [t for t, p in face["probabilities"].items() if p > first["gate_thresholds"][t]]
        assert face["experts_run"][-1] == "shared"
        assert set(face["degrees"]) == set(face["experts_run"][:-1])  # a degree per expert that ran
        assert all(1.0 <= d <= 5.0 for d in face["degrees"].values())
        detected |= set(face["detected"])
    assert first["detected_types"] == sorted(detected)

    diff = np.abs(restored.astype(int) - photo)
    assert first["difference"]["max_abs"] == diff.max()
    assert abs(first["difference"]["mean_abs"] - diff.mean()) < 1e-3
    x0, y0, x1, y1 = first["region"]  # the PNGs show the faces, not the whole photo
    assert (x0, y0) == (min(f["box"][0] for f in first["faces"]), min(f["box"][1] for f in first["faces"]))
    assert x1 - x0 < photo.shape[1] and y1 - y0 < photo.shape[0]


def test_heatmap_shows_where_the_image_changed(tmp_path):
    image = np.full((80, 120, 3), 100, np.uint8)
    restored = image.copy()
    half = int(HEATMAP_VMAX // 2)  # half the colour scale
    restored[20:40, 30:60] += half
    files = write_report(tmp_path, "x", image, restored, {"input": "x.png", "timings": {"restore_s": 1.0}})
    heat = np.asarray(Image.open(files.heatmap))
    factor = heat.shape[0] // 80
    assert heat.shape == (80 * factor, 120 * factor, 3) and factor >= 3
    changed = heat[25 * factor:35 * factor, 35 * factor:55 * factor].reshape(-1, 3)
    untouched = heat[50 * factor:, :].reshape(-1, 3)
    assert (changed == colorize(np.array([float(half)]))).all() and (untouched == colorize(np.array([0.0]))).all()
    assert len({tuple(c) for c in colorize(np.array([0.0, half, 2 * half]))}) == 3
    report = json.loads(files.json.read_text())
    assert report["difference"]["max_abs"] == half
    assert abs(report["difference"]["mean_abs"] - half * 600 / 9600) < 1e-3
    assert report["difference"]["changed_fraction"] == round(600 / 9600, 6)
    panels = np.asarray(Image.open(files.side_by_side))
    assert panels.shape[1] == 3 * heat.shape[1] + 8 and panels.shape[0] > heat.shape[0]  # 3 panels + labels


def test_report_refuses_to_overwrite(tmp_path):
    image = np.zeros((32, 32, 3), np.uint8)
    write_report(tmp_path, "x", image, image, {})
    try:
        write_report(tmp_path, "x", image, image, {})
    except FileExistsError as error:
        assert "x." in str(error) and "--overwrite" in str(error)
    else:
        raise AssertionError("an existing report was overwritten silently")
    write_report(tmp_path, "x", image, image, {}, overwrite=True)
