"""benchmarks/whole_photo.py on six real shard faces with the tiny pipeline and a fake landmark provider."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mofrr_core.faces import TEMPLATE_224
from tests.robustness.helpers import FakeDetector, install_fake_provider, load_benchmark

GROUPS = ["white", "smooth", "face", "eye", "Multi", "None"]


@pytest.fixture(scope="module")
def whole_photo():
    return load_benchmark("whole_photo")


def run(whole_photo, shards, pipeline_dir, out, *extra):
    return whole_photo.main(["--data", str(shards), "-n", "6", "--pipeline", str(pipeline_dir), "--out", str(out),
                             *extra])


def test_numbers_per_image_and_tables(whole_photo, shards, pipeline_dir, tmp_path, monkeypatch, capsys):
    """Balanced order; a paste-back changes only the masked pixels, so no output beats the mask ceiling."""
    install_fake_provider(monkeypatch, FakeDetector({(224, 224): [TEMPLATE_224.copy()]}))
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "r.json") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    images = report["images"]
    assert [r["group"] for r in images] == GROUPS and report["apis_set"] == "heldout"
    for r in images:
        assert not r["no_face"] and r["faces"] == 1
        assert r["gain"] == pytest.approx(r["restored_psnr"] - r["input_psnr"])
        assert r["worse"] == (r["restored_psnr"] < r["input_psnr"])
        assert max(r["restored_psnr"], r["input_psnr"]) <= r["mask_ceiling"] + 1e-9
        assert 0.2 < r["mask_share"] < 1.0  # the mask leaves part of the 224 px crop alone
    assert min(r["mask_ceiling"] - r["input_psnr"] for r in images[:5]) > 3  # the mask covers the edited face
    untouched = images[-1]
    assert untouched["input_psnr"] == 100.0 and untouched["psnr_to_input"] == untouched["restored_psnr"]
    gains = [r["gain"] for r in images[:5]]
    assert report["summary"]["fidelity"]["All"]["gain"] == pytest.approx(np.mean(gains))
    printed = capsys.readouterr().out
    assert "| White | 1 | 0 |" in printed and "## Untouched faces (do no harm)" in printed
    assert "| white: gain > 0 |" in printed  # held-out targets are checked per column
    detection = report["summary"]["detection"]  # the router's figures on the whole-photo crops
    assert detection["any"]["positives"] == 5 and detection["any"]["untouched"] == 1
    scores = [max(r["probabilities"].values()) for r in images]
    expected = np.mean([s > scores[-1] for s in scores[:5]]) + 0.5 * np.mean([s == scores[-1] for s in scores[:5]])
    assert detection["any"]["auc"] == pytest.approx(expected)
    assert "## Detection (the router on the faces as whole-photo mode aligns them)" in printed
    views = [r["router_view"] for r in images]  # the tiny pipeline's router reads its experts' crops: resized
    assert views == ["resized"] * 6 and report["summary"]["native_share"] == 0.0
    assert "own pixels (`router_view: native`) on 0% of the photos" in printed


def test_photos_without_a_face_are_counted_not_scored(whole_photo, shards, pipeline_dir, tmp_path, monkeypatch,
                                                      capsys):
    install_fake_provider(monkeypatch, FakeDetector({}))
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "r.json", "--apis-set", "train") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert all(r["no_face"] and "restored_psnr" not in r for r in report["images"])
    assert report["summary"]["fidelity"]["All"] == {"n": 0, "no_face": 5}
    assert report["summary"]["untouched"] == {"n": 0, "no_face": 1}
    assert report["summary"]["detection"] is None
    printed = capsys.readouterr().out
    assert "| All | 0 | 5 | – |" in printed and ": gain > 0 |" not in printed  # no held-out targets with train


def test_targets_follow_the_issue(whole_photo):
    untouched = {"n": 20, "no_face": 0, "good": 0.95, "worst": 39.9, "no_expert": 1.0}
    fidelity = {"white": {"n": 10, "gain": 0.5, "worse": 0.1}, "eye": {"n": 10, "gain": -0.1, "worse": 0.0},
                "All": {"n": 20, "gain": 0.2, "worse": 0.05}}
    checks = {name: met for name, _, met in whole_photo.targets({"untouched": untouched, "fidelity": fidelity},
                                                                "heldout")}
    assert checks == {"untouched: share >= 45 dB >= 0.95": True, "untouched: worst >= 40 dB": False,
                      "untouched: no expert ran >= 0.95": True, "white: gain > 0": True,
                      "white: worse than input <= 0.10": True, "eye: gain > 0": False,
                      "eye: worse than input <= 0.10": True}


def template_at_any_size(seen: list):
    """A fake landmark provider finding the template face scaled to the photo's size; ``seen`` gets the sizes."""
    def detector(image):
        seen.append(image.shape[:2])
        return [(TEMPLATE_224 + 0.5) * image.shape[0] / 224 - 0.5]

    return detector


def input_psnrs(path) -> list[float]:
    return [r["input_psnr"] for r in json.loads(path.read_text())["images"]]


def test_photo_scale_resizes_both_images_after_the_retouching(whole_photo, shards, pipeline_dir, tmp_path,
                                                              monkeypatch, capsys):
    """--photo-scale: the photo (original and input) is resized after retouching; the face is found there."""
    seen = []
    install_fake_provider(monkeypatch, template_at_any_size(seen))
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "r.json", "--photo-scale", "1.25") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(seen) == {(280, 280)} and "resized x1.25 after retouching" in report["description"]
    scaled = input_psnrs(tmp_path / "r.json")
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "p.json") == 0
    unscaled = input_psnrs(tmp_path / "p.json")
    assert scaled[-1] == unscaled[-1] == 100.0 and scaled[:5] != unscaled[:5]  # same edits, measured resized
    with pytest.raises(SystemExit):
        whole_photo.parse_args(["--photo-scale", "9"])
    capsys.readouterr()


def test_condition_changes_original_and_input_alike_after_the_retouching(whole_photo, shards, pipeline_dir,
                                                                         tmp_path, monkeypatch, capsys):
    """--condition: a photo_conditions change of both images; the untouched face stays identical to its original."""
    seen = []
    install_fake_provider(monkeypatch, template_at_any_size(seen))
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "r.json", "--condition", "larger") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(seen) == {(336, 336)} and "condition larger after retouching" in report["description"]
    assert report["images"][-1]["input_psnr"] == 100.0 and all("degrees" in r for r in report["images"])
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "d.json", "--condition", "darker") == 0
    darker = input_psnrs(tmp_path / "d.json")
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "p.json") == 0
    plain = input_psnrs(tmp_path / "p.json")
    assert darker[-1] == 100.0 and all(d != p for d, p in zip(darker[:5], plain[:5]))  # same edits, re-exposed
    with pytest.raises(SystemExit):
        whole_photo.parse_args(["--condition", "sepia"])
    capsys.readouterr()


def test_smooth_region_smooths_the_whole_photo_and_nothing_else(whole_photo, shards, pipeline_dir, tmp_path,
                                                                monkeypatch, capsys):
    """--smooth-region image: the smoothed photo (the second) loses more; the other photos are the same edits."""
    install_fake_provider(monkeypatch, FakeDetector({(224, 224): [TEMPLATE_224.copy()]}))
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "p.json") == 0
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "i.json", "--smooth-region", "image") == 0
    plain, whole = input_psnrs(tmp_path / "p.json"), input_psnrs(tmp_path / "i.json")
    assert whole[1] < plain[1] - 0.5 and whole[:1] + whole[2:4] == plain[:1] + plain[2:4]
    assert "smoothings on the image region" in json.loads((tmp_path / "i.json").read_text())["description"]
    with pytest.raises(SystemExit):
        whole_photo.parse_args(["--smooth-region", "hair"])
    capsys.readouterr()


def test_postprocess_degrades_every_input_untouched_ones_too(whole_photo, shards, pipeline_dir, tmp_path,
                                                             monkeypatch):
    install_fake_provider(monkeypatch, FakeDetector({(224, 224): [TEMPLATE_224.copy()]}))
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "r.json", "--postprocess", "app") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert "post-processing app" in report["description"]
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "p.json") == 0
    plain = json.loads((tmp_path / "p.json").read_text())["images"]
    changed = [r["input_psnr"] < p["input_psnr"] for r, p in zip(report["images"], plain)]
    assert sum(changed) >= 4  # the app's export (p 0.8 per photo) costs the inputs PSNR


def test_ops_untouched_breaks_the_untouched_faces_down_by_group(whole_photo, shards, pipeline_dir, tmp_path,
                                                                 monkeypatch, capsys):
    """--ops untouched: every face untouched, counted per FairFace race and gender group."""
    from mofrr_core.data.shards import read_shards

    install_fake_provider(monkeypatch, FakeDetector({(224, 224): [TEMPLATE_224.copy()]}))
    assert run(whole_photo, shards, pipeline_dir, tmp_path / "r.json", "--ops", "untouched") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    images, summary = report["images"], report["summary"]
    assert [r["group"] for r in images] == ["None"] * 6 and all(r["input_psnr"] == 100.0 for r in images)
    meta = {r.key: r.meta for r in read_shards(shards)}
    thresholds = whole_photo.load_pipeline(pipeline_dir).gate_thresholds
    for by, groups in summary["untouched_by_group"].items():
        names = [meta[r["key"]][by] for r in images]
        assert sorted(groups) == sorted(set(names)) and sum(g["n"] for g in groups.values()) == 6
        for group, entry in groups.items():
            rows = [r for r, name in zip(images, names) if name == group]
            assert entry["worst"] == min(r["psnr_to_input"] for r in rows)
            assert entry["expert"] == pytest.approx(np.mean([any(r["experts_run"]) for r in rows]))
            for t in thresholds:
                assert entry[t] == pytest.approx(np.mean([r["probabilities"][t] > thresholds[t] for r in rows]))
    printed = capsys.readouterr().out
    assert "## Untouched faces by race (FairFace labels)" in printed and "| gender | untouched faces |" in printed
    assert "untouched, every race group: false calls per type <= 0.05" in printed
    assert summary["fidelity"]["All"]["n"] == 0


def test_group_target_names_the_worst_group(whole_photo):
    groups = {"race": {"A": {"n": 20, "expert": 0.1, "worst": 50.0, "white": 0.1, "eye": 0.0},
                       "B": {"n": 20, "expert": 0.0, "worst": 60.0, "white": 0.0, "eye": 0.05}}}
    untouched = {"n": 40, "no_face": 0, "good": 1.0, "worst": 50.0, "no_expert": 0.95}
    checks = {name: (value, met) for name, value, met in whole_photo.targets(
        {"untouched": untouched, "fidelity": {}, "untouched_by_group": groups}, "heldout")}
    assert checks["untouched, every race group: false calls per type <= 0.05"] == ("0.100 (A/white)", False)


def test_apis_fix_one_implementation_per_op(whole_photo, capsys):
    assert whole_photo.parse_args(["--apis", "face=idw", "eye=lines"]).apis == {"face": "idw", "eye": "lines"}
    with pytest.raises(SystemExit):
        whole_photo.parse_args(["--apis", "face"])
    assert "expected OP=API" in capsys.readouterr().err


def test_plot_whole_photo_charts_reports_side_by_side(tmp_path, capsys):
    plot_whole_photo = load_benchmark("plot_whole_photo")
    column = {"gain": 0.4, "worse": 0.1}
    report = {"summary": {"fidelity": {c: column for c in plot_whole_photo.COLUMNS},
                          "untouched": {"no_expert": 0.94}}}
    gains, worse = plot_whole_photo.rows(report)
    assert gains == [0.4] * 6 and worse == pytest.approx([10.0] * 6 + [6.0])
    paths = [tmp_path / "none.json", tmp_path / "denoise.json"]
    for path in paths:
        path.write_text(json.dumps(report))
    out = tmp_path / "chart.png"
    assert plot_whole_photo.main([*map(str, paths), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):  # never overwritten silently
        plot_whole_photo.main([*map(str, paths), "--out", str(out)])
    with pytest.raises(SystemExit):
        plot_whole_photo.main([*map(str, paths), "--out", str(tmp_path / "b.png"), "--labels", "one"])
    (tmp_path / "bad.json").write_text("{")
    assert plot_whole_photo.main([str(tmp_path / "bad.json"), "--out", str(tmp_path / "c.png")]) == 1
    assert "not a whole_photo.py report" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"results": {}}')  # e.g. a photo_conditions.py report
    assert plot_whole_photo.main([str(tmp_path / "other.json"), "--out", str(tmp_path / "c.png")]) == 1
    assert "KeyError" in capsys.readouterr().err and not (tmp_path / "c.png").exists()
