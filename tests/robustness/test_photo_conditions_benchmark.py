"""benchmarks/photo_conditions.py: what each condition does to a photo, and the tables on real shard faces."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mofrr_core.faces import TEMPLATE_224
from tests.robustness.helpers import FakeDetector, install_fake_provider, load_benchmark


@pytest.fixture(scope="module")
def conditions():
    return load_benchmark("photo_conditions")


def detail(image: np.ndarray) -> float:
    """Mean absolute Laplacian: how much fine detail a photo carries."""
    return float(np.abs(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F)).mean())


def test_each_condition_changes_the_photo_as_named(conditions, astronaut_face):
    photo = astronaut_face
    out = {name: change(photo.copy()) for name, change in conditions.CONDITIONS.items()}
    for name, image in out.items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert np.array_equal(image, conditions.CONDITIONS[name](photo.copy())), f"{name} is not deterministic"
    assert np.array_equal(out["none"], photo)
    side = photo.shape[0]
    assert out["smaller"].shape[0] == round(0.6 * side) and out["larger"].shape[0] == round(1.5 * side)
    assert out["looser-framing"].shape[:2] == (256, 256)
    assert detail(out["sharpen"]) > 1.2 * detail(photo) > 1.2 * detail(out["blur"])
    assert detail(out["denoise"]) < detail(photo)
    assert out["brighter"].mean() > photo.mean() + 10 > out["darker"].mean() + 20
    assert 25 < cv2.PSNR(out["jpeg70"], photo) < 60


def test_tables_per_condition(conditions, shards, pipeline_dir, tmp_path, monkeypatch, capsys):
    """Every photo is routed once per condition; a condition whose photos lose the face is counted, not crashed."""
    install_fake_provider(monkeypatch, FakeDetector({(224, 224): [TEMPLATE_224.copy()]}))  # only 224 px photos
    out = tmp_path / "r.json"
    assert conditions.main(["--data", str(shards), "-n", "12", "--pipeline", str(pipeline_dir), "--out", str(out),
                            "--conditions", "none,brighter,smaller", "--plot", str(tmp_path / "c.png")]) == 0
    results = json.loads(out.read_text())["results"]
    assert list(results) == ["none", "brighter", "smaller"]
    assert results["smaller"] == {"n": 0, "no_face": 12, "detection": None, "native_share": None}
    for name in ("none", "brighter"):
        report = results[name]["detection"]
        assert results[name]["n"] == 12 and min(report[t]["positives"] for t in ("white", "smooth", "face", "eye")) >= 2
        assert 0.0 <= report["any"]["auc"] <= 1.0
        assert results[name]["native_share"] == 0.0  # the dummy pipeline's router reads the resized crops
        per_type = max(report[t]["false_calls"] for t in ("white", "smooth", "face", "eye"))
        assert per_type <= report["any"]["false_calls"] <= 1.0
    printed = capsys.readouterr().out
    assert "| none | 12 | 0 | 0% |" in printed and "| smaller | 0 | 12 | - |" in printed
    assert (tmp_path / "c.png").stat().st_size > 1000


def run_on_six(conditions, shards, pipeline_dir, out, *flags):
    """``photo_conditions.main`` on six photos, condition none, with ``flags``; its JSON report."""
    assert conditions.main(["--data", str(shards), "-n", "6", "--pipeline", str(pipeline_dir), "--out", str(out),
                            "--conditions", "none", *flags]) == 0
    report = json.loads(out.read_text())
    assert report["results"]["none"]["n"] == 6
    return report


def test_retouch_scale_retouches_larger_photos(conditions, shards, pipeline_dir, tmp_path, monkeypatch):
    """``--retouch-scale``: the samples are retouched at that size and shrunk back (the description says so)."""
    assert conditions.retouch_size(1.0) is None
    assert conditions.retouch_size(2.5) == {"p": 1.0, "scale": [2.5, 2.5]}
    install_fake_provider(monkeypatch, FakeDetector({(224, 224): [TEMPLATE_224.copy()]}))
    report = run_on_six(conditions, shards, pipeline_dir, tmp_path / "r.json", "--retouch-scale", "2")
    assert "retouched at {'p': 1.0, 'scale': [2.0, 2.0]}" in report["description"]


def test_reframe_frames_the_photos_before_the_retouching(conditions, shards, pipeline_dir, tmp_path, monkeypatch):
    """``--reframe``: the samples are framed looser and resized back before the retouching (the description says
    so); the face is found where the frame put it."""
    assert conditions.reframe(0.0) is None
    assert conditions.reframe(0.15) == {"p": 1.0, "border": [0.15, 0.15]}
    framed = (TEMPLATE_224 + 0.5 + 0.25 * 224) / 1.5 - 0.5
    install_fake_provider(monkeypatch, FakeDetector({(224, 224): [framed]}))
    report = run_on_six(conditions, shards, pipeline_dir, tmp_path / "f.json", "--reframe", "0.25")
    assert "reframed before the retouching {'p': 1.0, 'border': [0.25, 0.25]}" in report["description"]
