"""``mofrr eval`` end to end on a 4-image paired folder with a tiny random pipeline."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mofrr_core.cli import main

from ..conftest import make_tiny_pipeline

TYPES = ["white", "smooth", "face", "eye"]
ITEMS = [("000000", {"white": 3}), ("000001", {"eye": 2}), ("000002", {"white": 4, "smooth": 1}),
         ("000003", {"face": 5})]


def retouch(face: np.ndarray, ops: dict[str, int]) -> np.ndarray:
    """Crude stand-ins for the engine's ops (the eval only needs paired images with known labels)."""
    out = face.astype(np.float32)
    if "white" in ops:
        out = out + 6 * ops["white"]
    if "smooth" in ops:
        out = (out + np.roll(out, 1, 0) + np.roll(out, 1, 1)) / 3
    if "eye" in ops or "face" in ops:
        out = np.roll(out, 1, 1)
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.fixture
def paired_folder(tmp_path, astronaut_face):
    """A ``mofrr synth``-layout folder: original/, retouched/, manifest.json (4 pairs, 64 px)."""
    root = tmp_path / "pairs"
    (root / "original").mkdir(parents=True)
    (root / "retouched").mkdir()
    views = [astronaut_face, astronaut_face[:, ::-1], np.rot90(astronaut_face), astronaut_face[::-1]]
    items = []
    for (item_id, ops), view in zip(ITEMS, views):
        view = np.ascontiguousarray(view)
        Image.fromarray(view).save(root / "original" / f"{item_id}.png")
        Image.fromarray(retouch(view, ops)).save(root / "retouched" / f"{item_id}.png")
        items.append({"id": item_id, "key": f"face{item_id}", "split": "test",
                      "original": f"original/{item_id}.png", "retouched": f"retouched/{item_id}.png",
                      "ops": [{"op": op} for op in ops], "labels": {t: int(t in ops) for t in TYPES},
                      "degrees": {t: ops.get(t, 0) for t in TYPES}})
    (root / "manifest.json").write_text(json.dumps({"format": "mofrr-synth", "types": TYPES, "items": items}))
    return root


@pytest.fixture
def pipeline_dir(tmp_path):
    path = tmp_path / "pipeline"
    make_tiny_pipeline(experts=("white", "eye")).save_pretrained(path)
    return path


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def dlib_missing() -> bool:
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError:
        return True
    return False


def test_eval_writes_every_output(paired_folder, pipeline_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["eval", "--data", str(paired_folder), "--pipeline", str(pipeline_dir), "--resolution", "64",
                 "--baseline", "shared", "--ablation", "none", "no-router", "--steps", "2", "--batch-size", "3",
                 "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out

    # table.md: rows Input / baseline / MoFRR rows, the five columns with their counts
    table = (out / "table.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| Method | White"))
    assert header == ("| Method | White (n=1) | Smooth (n=0) | Face (n=1) | Eye (n=1) | Multi (n=1) |")
    rows = [line.split(" | ")[0][2:] for line in table.splitlines()[table.splitlines().index(header) + 2:]
            if line.startswith("| ")][:4]
    assert rows == ["Input", "Shared expert alone", "MoFRR no-router", "MoFRR"]
    assert "data_range 255" in table and "64x64" in table
    assert "### Gain by routing outcome" in table and "| other experts only |" in table
    command = next(line for line in table.splitlines() if line.startswith("Command: "))
    assert "--baseline shared" in command and "--ablation none no-router" in command and "--steps 2" in command

    # per_image.json: 4 entries, input PSNR/SSIM equal what skimage gives on the files
    records = json.loads((out / "per_image.json").read_text())
    assert len(records) == 4
    by_key = {r["key"]: r for r in records}
    for item_id, ops in ITEMS:
        record = by_key[f"face{item_id}"]
        original = read(paired_folder / "original" / f"{item_id}.png")
        retouched = read(paired_folder / "retouched" / f"{item_id}.png")
        assert record["input"]["psnr"] == pytest.approx(peak_signal_noise_ratio(original, retouched,
                                                                                data_range=255), abs=1e-3)
        assert record["input"]["ssim"] == pytest.approx(structural_similarity(
            original, retouched, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False), abs=1e-3)
        assert record["group"] == (next(iter(ops)) if len(ops) == 1 else "Multi")
        assert set(record["methods"]) == {"Shared expert alone", "MoFRR no-router", "MoFRR"}
        assert record["methods"]["MoFRR no-router"]["experts_run"] == ["white", "eye", "shared"]
        mofrr = record["methods"]["MoFRR"]
        assert mofrr["psnr_gain"] == pytest.approx(mofrr["psnr"] - record["input"]["psnr"], abs=1e-3)
        assert set(mofrr["probabilities"]) == set(TYPES)

    # the table's Input cell for White is that image's PSNR
    white = by_key["face000000"]["input"]
    assert f"| Input | {white['psnr']:.2f} / {white['ssim']:.3f} |" in table

    # router and degree sections are filled from the labels
    def strict(constant):
        raise ValueError(f"summary.json is not strict JSON: {constant}")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=strict)
    assert summary["fidelity"]["Input"]["smooth"] == {"n": 0.0, "psnr": None, "ssim": None, "psnr_gain": None,
                                                      "ssim_gain": None}
    assert summary["router"]["white"]["support"] == 2 and summary["router"]["face"]["support"] == 1
    assert summary["degree"]["white"]["n"] == 2 and summary["degree"]["eye"]["n"] == 1
    assert re.search(r"\| white \| 2/4 \|", table)

    # montage: 4 rows of input | baseline | 2 MoFRR rows | original | diff
    montage = read(out / "montage.png")
    assert montage.shape[0] > 4 * 128 and montage.shape[1] >= 6 * 128

    # identity: a density plot with dlib, otherwise a clear skip message in the table and on stdout
    if dlib_missing():
        assert "Skipped: identity similarity needs dlib" in table and "pip install 'mofrr[eval]'" in table
        assert "identity similarity skipped" in printed
        assert not (out / "identity_density.png").exists()
    else:
        assert (out / "identity_density.png").is_file()
        assert "dlib 128-D" in table


def test_eval_never_overwrites_silently(paired_folder, pipeline_dir, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "table.md").write_text("old")
    args = ["eval", "--data", str(paired_folder), "--pipeline", str(pipeline_dir), "--resolution", "64", "-n", "2",
            "--steps", "2", "--out", str(out), "--quiet", "--montage", "0", "--no-identity"]
    assert main(args) == 1
    assert "table.md exists" in capsys.readouterr().err and (out / "table.md").read_text() == "old"
    assert main([*args, "--overwrite"]) == 0
    assert len(json.loads((out / "per_image.json").read_text())) == 2
    assert "Skipped: disabled (--no-identity)" in (out / "table.md").read_text()
    assert not (out / "montage.png").exists()


def test_eval_errors_name_the_culprit(paired_folder, pipeline_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval", "--data", str(paired_folder), "--pipeline", str(tmp_path), "--out", str(out)]) == 1
    assert f"--pipeline {tmp_path}" in capsys.readouterr().err
    assert main(["eval", "--data", str(paired_folder), "--pipeline", str(pipeline_dir), "--apis", "smooth=guided",
                 "--out", str(out)]) == 1
    assert "--apis applies to shard folders only" in capsys.readouterr().err
    assert main(["eval", "--data", str(paired_folder), "--pipeline", str(pipeline_dir), "--baseline", "nope",
                 "--out", str(out)]) == 1
    assert "unknown baseline 'nope'" in capsys.readouterr().err
    assert not out.exists()


def test_balanced_protocol_on_the_shards():
    """Shards: item i is single-op of type i % 5 (or multi-op), each on its own face; --apis reaches the engine."""
    import os
    from pathlib import Path

    from mofrr_core.eval.samples import load_samples
    from mofrr_core.eval.tables import group_of

    root = Path(os.environ["MOFRR_DATA"])
    if not any(root.glob("*.tar")):
        pytest.skip(f"no face shards in MOFRR_DATA={root} (see ../shared/data/faces/README.md)")
    samples, types, description = load_samples(root, n=6, resolution=64, degrees="none", apis={"smooth": "guided"})
    items = [samples[i] for i in range(len(samples))]
    assert types[:4] == TYPES and "apis {'smooth': 'guided'}" in description
    assert [group_of(s["labels"].tolist(), types) for s in items] == [*TYPES, "Multi", "None"]
    assert len({s["key"] for s in items}) == 6  # six different faces
    assert torch.equal(items[5]["retouched"], items[5]["original"])  # the untouched share
    assert all(s["retouched"].shape == (3, 64, 64) for s in items)
    for s in items:  # degrees are set exactly where an op was applied
        assert ((s["degrees"] > 0) == (s["labels"] > 0.5)).all()
    smooth_ops = samples.dataset.parts[1].generate(1).ops
    assert [(o["op"], o["api"]) for o in smooth_ops] == [("smooth", "guided")]


def test_heldout_samples_use_only_heldout_implementations(shards):
    """The held-out table is made only of implementations no weight is trained on; the in-domain one never is."""
    from mofrr_core.eval.samples import load_samples
    from mofrr_core.retouch import heldout_apis

    root = shards
    held = {(op, api) for op, apis in heldout_apis().items() for api in apis}
    for apis_set in ("heldout", "train"):
        samples, _, description = load_samples(root, n=10, resolution=32, degrees="none", apis_set=apis_set,
                                               untouched=False)
        drawn = {(o["op"], o["api"]) for i in range(10) for o in samples.dataset.parts[i % 5].generate(i).ops}
        assert f"implementations {apis_set}" in description
        assert (drawn <= held) if apis_set == "heldout" else not (drawn & held), (apis_set, drawn)


def test_data_seeds_use_other_faces(shards):
    """Seed 0 starts at face 0 (the documented tables); seed S at face S * n, so two seeds share no face."""
    from mofrr_core.eval.samples import face_offset, load_samples

    root = shards
    keys = {}
    for seed in (0, 1, 2):
        for ops in ("balanced", "single"):
            samples, _, _ = load_samples(root, split="val", n=6, resolution=32, degrees="none", seed=seed, ops=ops)
            keys[seed, ops] = [samples[i]["key"] for i in range(len(samples))]
        assert keys[seed, "balanced"] == keys[seed, "single"]  # item i uses face i + offset whatever the op
    first = load_samples(root, split="val", n=18, resolution=32, degrees="none", ops="single")[0]
    assert [first[i]["key"] for i in range(18)] == keys[0, "balanced"] + keys[1, "balanced"] + keys[2, "balanced"]
    assert len(set(keys[0, "balanced"]) | set(keys[1, "balanced"]) | set(keys[2, "balanced"])) == 18
    assert face_offset(0, 300) == 0 and face_offset(3, 300) == 900


def test_eval_both_sets_writes_two_reports_with_detection(shards, pipeline_dir, tmp_path):
    """--apis-set both (the default on shards): in-domain and held-out reports, untouched and detection tables."""
    root = shards
    out = tmp_path / "report"
    assert main(["eval", "--data", str(root), "--pipeline", str(pipeline_dir), "--resolution", "32",
                 "-n", "6", "--degrees", "none", "--no-identity", "--montage", "0", "--quiet",
                 "--out", str(out)]) == 0
    combined = (out / "table.md").read_text()
    assert "# in-domain" in combined and "# held-out" in combined
    for folder in ("in-domain", "held-out"):
        summary = json.loads((out / folder / "summary.json").read_text())
        assert summary["meta"]["apis_set"] == {"in-domain": "train", "held-out": "heldout"}[folder]
        assert summary["detection"]["any"]["untouched"] == 1 and set(summary["false_calls_by_group"]) == {
            "race", "gender"}
        text = (out / folder / "table.md").read_text()
        assert "## Untouched faces (do no harm)" in text and "| MoFRR | 1 |" in text


def test_pairs_without_labels_count_in_all_not_as_untouched(paired_folder, pipeline_dir, tmp_path):
    """original/ + retouched/ without a manifest: the retouching is unknown, so the pairs are scored under
    'Unlabeled' and in All, never taken for untouched faces."""
    (paired_folder / "manifest.json").unlink()
    out = tmp_path / "report"
    assert main(["eval", "--data", str(paired_folder), "--pipeline", str(pipeline_dir), "--resolution", "64",
                 "--no-identity", "--montage", "0", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fidelity"]["MoFRR"]["All"]["n"] == 4 and summary["fidelity"]["MoFRR"]["Unlabeled"]["n"] == 4
    assert "Not measured: no untouched faces" in (out / "table.md").read_text()


def test_min_sharpness_keeps_only_sharp_faces(shards):
    """``min_sharpness`` (whole_photo.py --min-sharpness): only faces with at least that metadata sharpness."""
    from mofrr_core.data.shards import read_shards
    from mofrr_core.eval.samples import load_samples

    sharpness = {r.key: r.sharpness for r in read_shards(shards)}
    samples, _, description = load_samples(shards, split="val", n=12, resolution=32, degrees="none",
                                           min_sharpness=2.0)
    keys = [samples[i]["key"] for i in range(len(samples))]
    assert len(set(keys)) == 12 and min(sharpness[k] for k in keys) >= 2.0
    assert "sharpness >= 2" in description
    everyone = load_samples(shards, split="val", n=12, resolution=32, degrees="none")[0]
    assert min(sharpness[everyone[i]["key"]] for i in range(12)) < 2.0  # most faces are soft
