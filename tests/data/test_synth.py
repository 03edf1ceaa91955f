import json

import numpy as np
import pytest

from mofrr_core.cli import main
from mofrr_core.data.folders import PairedFolder
from mofrr_core.io import load_image
from mofrr_core.metrics import psnr


def synth(shard_root, out, *extra):
    return main(["synth", "--data", str(shard_root), "--out", str(out), "--split", "test", "-n", "4",
                 "--resolution", "48", "--degrees", "none", "--quiet", *extra])


def mtimes(out):
    return {p.name + p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/*.png")}


def test_synth_writes_pairs_and_manifest(shard_root, tmp_path):
    out = tmp_path / "pairs"
    assert synth(shard_root, out, "--ops", "multi") == 0
    assert sorted(p.name for p in (out / "original").iterdir()) == [f"{i:06d}.png" for i in range(4)]
    assert len(list((out / "retouched").iterdir())) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["count"] == 4 and manifest["degree_source"] == "strength"
    assert manifest["args"]["ops"] == "multi" and manifest["degree_thresholds"] is None
    for item in manifest["items"]:
        original, retouched = load_image(out / item["original"]), load_image(out / item["retouched"])
        assert original.shape == (48, 48, 3)
        assert psnr(retouched, original) == pytest.approx(item["psnr"], abs=1e-3)  # PNG is lossless
        assert item["split"] == "test" and 2 <= sum(item["labels"].values()) <= 4
        assert {op["op"] for op in item["ops"]} == {t for t, v in item["labels"].items() if v}
        assert all(1 <= item["degrees"][op["op"]] <= 5 and "api" in op and "strength" in op for op in item["ops"])
    folder = PairedFolder(out, resolution=None)
    assert folder.layout == "manifest" and len(folder) == 4
    sample = folder[0]
    first = manifest["items"][0]
    assert sample["key"] == first["key"]
    assert sample["labels"].tolist() == [float(first["labels"][t]) for t in folder.types]
    assert sample["degrees"].tolist() == [first["degrees"][t] for t in folder.types]


def test_synth_resumes_extends_and_refuses_other_config(shard_root, tmp_path, capsys):
    out = tmp_path / "pairs"
    assert synth(shard_root, out, "--ops", "eye") == 0
    before = mtimes(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert synth(shard_root, out, "--ops", "eye") == 0  # resume: nothing rewritten
    assert mtimes(out) == before
    assert json.loads((out / "manifest.json").read_text())["items"] == manifest["items"]
    # lost manifest record for an item whose images exist: the record is rebuilt, the files kept
    partial = dict(manifest, items=manifest["items"][:2], complete=False)
    (out / "manifest.json").write_text(json.dumps(partial))
    assert synth(shard_root, out, "--ops", "eye") == 0
    assert mtimes(out) == before
    assert json.loads((out / "manifest.json").read_text())["items"] == manifest["items"]
    # a different configuration is refused, naming the manifest and the field
    capsys.readouterr()
    assert synth(shard_root, out, "--ops", "white") == 1
    err = capsys.readouterr().err
    assert "manifest.json" in err and "ops" in err and "--overwrite" in err
    assert mtimes(out) == before
    assert synth(shard_root, out, "--ops", "white", "--overwrite") == 0
    after = json.loads((out / "manifest.json").read_text())
    assert {op["op"] for item in after["items"] for op in item["ops"]} == {"white"}
    retouched = load_image(out / "retouched" / "000000.png")
    assert not np.array_equal(retouched, load_image(out / "original" / "000000.png"))


def test_synth_refuses_foreign_folder(shard_root, tmp_path, capsys):
    out = tmp_path / "pairs"
    (out / "original").mkdir(parents=True)
    (out / "original" / "mine.png").write_bytes(b"not ours")
    assert synth(shard_root, out) == 1
    assert "no manifest.json" in capsys.readouterr().err
    assert (out / "original" / "mine.png").read_bytes() == b"not ours"


def test_synth_with_thresholds_file_uses_psnr_degrees(shard_root, tmp_path):
    from mofrr_core.data.degrees import DegreeThresholds

    rng = np.random.default_rng(0)
    thresholds = DegreeThresholds.fit({op: rng.uniform(20, 45, 50) for op in ("white", "smooth", "face", "eye")})
    path = thresholds.save(tmp_path / "cuts.json")
    out = tmp_path / "pairs"
    assert main(["synth", "--data", str(shard_root), "--out", str(out), "--split", "val", "-n", "2", "--ops",
                 "white,eye", "--resolution", "32", "--degrees", str(path), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["degree_source"] == "psnr"
    assert DegreeThresholds.load(out / "degree_thresholds.json").cuts == thresholds.cuts
    for item in manifest["items"]:
        assert [op["op"] for op in item["ops"]] == ["white", "eye"]
        for op in item["ops"]:
            assert item["degrees"][op["op"]] == thresholds.degree(op["op"], op["psnr_alone"])
        assert item["degrees"]["smooth"] == item["degrees"]["face"] == 0


def test_synth_heldout_set_and_postprocessing(shard_root, tmp_path, capsys):
    from mofrr_core.retouch import heldout_apis, heldout_version

    out = tmp_path / "heldout"
    assert synth(shard_root, out, "--ops", "single", "--apis-set", "heldout", "--postprocess", "jpeg") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["args"]["apis_set"] == "heldout" and manifest["args"]["postprocess"] == "jpeg"
    assert manifest["heldout_version"] == heldout_version()
    for item in manifest["items"]:
        assert all(op["api"] in heldout_apis()[op["op"]] for op in item["ops"])
        assert 60 <= item["postprocess"]["jpeg"]["quality"] <= 100
    capsys.readouterr()
    assert main(["synth", "--data", str(shard_root), "--out", str(tmp_path / "leak"), "--split", "train", "-n", "2",
                 "--degrees", "none", "--quiet", "--apis-set", "heldout"]) != 0
    assert "split 'train' with apis_set='heldout'" in capsys.readouterr().err
    assert not (tmp_path / "leak" / "retouched").exists()
