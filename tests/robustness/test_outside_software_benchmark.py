"""benchmarks/outside.py: the pair folder it writes (a stand-in retoucher; OpenCV; facetweak if installed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mofrr_core.data.folders import PairedFolder
from mofrr_core.data.shards import read_shards
from mofrr_core.data.splits import filter_split
from mofrr_core.faces import TEMPLATE_224
from mofrr_core.metrics import psnr
from tests.robustness.helpers import FakeDetector, install_fake_provider, load_benchmark


@pytest.fixture(scope="module")
def outside():
    return load_benchmark("outside")


@pytest.fixture(scope="module")
def test_faces(shards):
    return filter_split(read_shards(shards), "test")[:5]


KINDS = [(("face",), None), (("eye",), None), (("face", "eye"), None), ((), None)]


def brighten(image, landmarks, strengths, implementation):
    """Stand-in retoucher: lighter by 40 levels x the summed strengths."""
    return np.clip(image.astype(np.int16) + round(40 * sum(strengths.values())), 0, 255).astype(np.uint8)


def test_pairs_take_turns_deterministically(outside, test_faces, tmp_path):
    items = outside.write_pairs(tmp_path / "a", test_faces, brighten, "stand-in", KINDS, seed=3, strength=(0.2, 0.5))
    assert [sorted(it["degrees"]) for it in items] == [["face"], ["eye"], ["eye", "face"], [], ["face"]]
    assert all(0.2 <= s <= 0.5 for it in items for s in it["strengths"].values())
    again = outside.write_pairs(tmp_path / "b", test_faces, brighten, "stand-in", KINDS, seed=3, strength=(0.2, 0.5))
    assert again == items  # deterministic for a seed
    other = outside.write_pairs(tmp_path / "c", test_faces, brighten, "stand-in", KINDS, seed=4, strength=(0.2, 0.5))
    assert other[0]["strengths"] != items[0]["strengths"]


def test_a_photo_the_software_left_alone_is_an_untouched_pair(outside, test_faces, tmp_path):
    def only_faces(image, landmarks, strengths, implementation):
        return brighten(image, landmarks, strengths, implementation) if "face" in strengths else image

    kinds = [(("face",), "warp"), (("eye",), "bulge"), ((), None)]
    items = outside.write_pairs(tmp_path / "a", test_faces[:3], only_faces, "stand-in", kinds, seed=3)
    assert [it["degrees"] for it in items] == [{"face": 1}, {}, {}]
    assert [it["implementation"] for it in items] == ["warp", None, None]
    assert items[1]["unchanged_by"] == "bulge" and "unchanged_by" not in items[0] and "unchanged_by" not in items[2]


def test_the_folder_reads_back_labelled(outside, shards, test_faces, tmp_path, monkeypatch):
    monkeypatch.setitem(outside.SOFTWARE, "facetweak", lambda: (brighten, "stand-in", KINDS))
    assert outside.main([str(tmp_path / "out"), "--software", "facetweak", "--data", str(shards), "-n", "5"]) == 0
    items = json.loads((tmp_path / "out" / "manifest.json").read_text())["items"]
    folder = PairedFolder(tmp_path / "out", resolution=None)
    assert [it.key for it in folder.items] == [r.key for r in test_faces]
    for i, it in enumerate(items):
        sample = folder[i]
        labels = dict(zip(folder.types, sample["labels"].tolist()))
        assert {t for t, v in labels.items() if v} == set(it["degrees"])
        same = bool((sample["retouched"] == sample["original"]).all())
        assert same == (not it["degrees"])  # only the untouched pair is unchanged


def measure_stand_in(outside, software, kinds, n, shards, pipeline_dir, tmp_path, monkeypatch) -> dict:
    """``software`` replaced by the stand-in with ``kinds``: its folder of ``n`` pairs measured by whole_photo.py."""
    monkeypatch.setitem(outside.SOFTWARE, software, lambda: (brighten, "stand-in", kinds))
    out = tmp_path / "out"
    assert outside.main([str(out), "--software", software, "--data", str(shards), "-n", str(n)]) == 0
    install_fake_provider(monkeypatch, FakeDetector({(224, 224): [TEMPLATE_224.copy()]}))
    args = ["--data", str(out), "-n", str(n), "--pipeline", str(pipeline_dir), "--out", str(tmp_path / "r")]
    assert load_benchmark("whole_photo").main(args) == 0
    return json.loads((tmp_path / "r").read_text())


def test_whole_photo_measures_the_folder(outside, shards, test_faces, pipeline_dir, tmp_path, monkeypatch):
    """benchmarks/whole_photo.py reads the folder as it is; the untouched faces keep their FairFace groups."""
    report = measure_stand_in(outside, "facetweak", KINDS, 4, shards, pipeline_dir, tmp_path, monkeypatch)
    assert [r["group"] for r in report["images"]] == ["face", "eye", "Multi", "None"]
    assert report["images"][-1]["input_psnr"] == 100.0
    gender = report["summary"]["untouched_by_group"]["gender"]
    assert list(gender) != ["unknown"] and sum(g["n"] for g in gender.values()) == 1  # labels found by key


def test_an_existing_folder_is_refused(outside, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit):
        outside.parse_args([str(tmp_path / "out"), "--software", "opencv"])
    assert outside.parse_args([str(tmp_path / "out"), "--software", "opencv", "--overwrite"]).strength == (0.3, 1.0)
    with pytest.raises(SystemExit):
        outside.parse_args([str(tmp_path / "new"), "--software", "opencv", "--strength", "0.5,2"])


def test_facetweak_warps_the_face_more_at_a_higher_strength(outside, test_faces):
    pytest.importorskip("facetweak")
    retouch, software, _ = outside.facetweak_software()
    face = test_faces[0]
    image = face.image()
    mild, strong = (retouch(image, face.landmarks, {"face": s, "eye": s}, None) for s in (0.3, 1.0))
    assert software.startswith("facetweak") and mild.shape == image.shape
    assert 100 > psnr(mild, image) > psnr(strong, image) > 20


@pytest.mark.parametrize("implementation", ["nlmeans", "edge-preserving"])
def test_opencv_smooths_more_at_a_higher_strength(outside, test_faces, implementation):
    retouch, software, kinds = outside.opencv_software()
    assert software.startswith("opencv") and {k[1] for k in kinds if k[0]} == {"nlmeans", "edge-preserving"}
    image = test_faces[1].image()
    mild, strong = (retouch(image, None, {"smooth": s}, implementation) for s in (0.3, 1.0))
    assert 100 > psnr(mild, image) > psnr(strong, image) > 25
    detail = [np.abs(np.diff(x.astype(np.float32), axis=1)).mean() for x in (image, mild, strong)]
    assert detail[0] > detail[1] > detail[2]  # fine detail goes: a smoothing


def test_whole_photo_breaks_the_retouched_photos_down_by_implementation(outside, shards, pipeline_dir, tmp_path,
                                                                        monkeypatch, capsys):
    kinds = [(("smooth",), "filter-a"), (("smooth",), "filter-b"), ((), None)]
    report = measure_stand_in(outside, "opencv", kinds, 6, shards, pipeline_dir, tmp_path, monkeypatch)
    by = report["summary"]["by_implementation"]
    assert sorted(by) == ["filter-a", "filter-b"] and [by[k]["n"] for k in sorted(by)] == [2, 2]
    gains = [r["gain"] for r in report["images"] if r.get("implementation") == "filter-a"]
    assert by["filter-a"]["gain"] == pytest.approx(np.mean(gains))
    assert "## Retouched photos by implementation" in capsys.readouterr().out


def test_reframe_frames_the_photo_before_the_software(outside, test_faces, tmp_path):
    """``--reframe``: the software gets the reframed photo and its moved landmarks; the reframed photo is the
    original; the strengths are those of the unframed run."""
    from PIL import Image

    from mofrr_core.data.realign import reframe_for_retouch
    from mofrr_core.retouch.landmarks import FaceLandmarks

    seen = []

    def record_points(image, landmarks, strengths, implementation):
        seen.append(np.asarray(landmarks))
        return brighten(image, landmarks, strengths, implementation)

    plain = outside.write_pairs(tmp_path / "a", test_faces[:2], brighten, "stand-in", KINDS, seed=3)
    items = outside.write_pairs(tmp_path / "b", test_faces[:2], record_points, "stand-in", KINDS, seed=3, reframe=0.2)
    assert [it["strengths"] for it in items] == [it["strengths"] for it in plain]
    for item, face, points in zip(items, test_faces, seen):
        expected, moved, _ = reframe_for_retouch(face.image(), FaceLandmarks(face.landmarks), np.random.default_rng(0),
                                                 {"border": [0.2, 0.2]})
        assert np.array_equal(np.asarray(Image.open(tmp_path / "b" / item["original"])), expected)
        assert np.allclose(points, moved.points)


TONES = ["brightness-colour on photo", "gamma on photo", "brightness-colour on skin", "gamma on skin"]


@pytest.mark.parametrize("implementation", TONES)
def test_tone_whitens_more_at_a_higher_strength(outside, test_faces, implementation):
    retouch, software, kinds = outside.tone_software()
    assert software.startswith("pillow") and [k[1] for k in kinds if k[0]] == TONES
    image = test_faces[2].image()
    mild, strong = (retouch(image, None, {"white": s}, implementation) for s in (0.3, 1.0))
    assert mild.dtype == np.uint8 and mild.shape == image.shape
    assert 100 > psnr(mild, image) > psnr(strong, image) > 18
    lightness = [x.astype(np.float32).mean() for x in (image, mild, strong)]
    assert lightness[0] < lightness[1] < lightness[2]  # lighter: a whitening


def test_tone_on_skin_leaves_what_is_not_skin_coloured(outside, test_faces):
    retouch, _, _ = outside.tone_software()
    image = test_faces[2].image().copy()
    image[:40] = (40, 90, 200)  # a blue band: no skin colour
    whole, skin = (retouch(image, None, {"white": 1.0}, f"gamma on {where}") for where in ("photo", "skin"))
    assert not np.array_equal(whole[:30], image[:30])
    assert np.array_equal(skin[:30], image[:30])  # 10 px clear of the feathering
    assert psnr(skin, image) > psnr(whole, image)  # a part of the photo changed, not all of it
    assert not np.array_equal(skin[100:160, 70:150], image[100:160, 70:150])  # the cheeks did change
