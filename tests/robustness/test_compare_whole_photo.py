"""benchmarks/compare_whole_photo.py on made-up whole_photo.py reports: the columns it compares, the rule it checks."""

from __future__ import annotations

import copy
import json

import pytest

from tests.robustness.helpers import load_benchmark

GROUPS = ["white", "smooth", "face", "eye", "Multi", "None"]


@pytest.fixture(scope="module")
def compare():
    return load_benchmark("compare_whole_photo")


def record(index: int, group: str, input_psnr: float, gain: float) -> dict:
    untouched = group == "None"
    return {"index": index, "key": f"face{index}", "group": group, "no_face": False, "input_psnr": input_psnr,
            "restored_psnr": input_psnr + gain, "gain": gain, "worse": gain < 0, "mask_ceiling": input_psnr + 5,
            "psnr_to_input": 100.0 if untouched else 40.0, "experts_run": [[]] if untouched else [[group]],
            "detected": [[]] if untouched else [[group]], "degrees": {"smooth": 2.0 + index // 6}}


def report(records: list[dict]) -> dict:
    return {"images": records}


def write(path, records) -> str:
    path.write_text(json.dumps(report(records)))
    return str(path)


@pytest.fixture()
def base():
    return [record(i, g, 30.0 + 3 * i, 0.5) for i, g in enumerate(GROUPS * 2)]


def test_same_reports_pass(compare, base, tmp_path, capsys):
    a = write(tmp_path / "a.json", base)
    assert compare.main(["--base", a, "--candidate", a, "--check"]) == 0
    out = capsys.readouterr().out
    assert "| smooth | 2 | +0.50 (0.0 %) | +0.50 (0.0 %) | +0.00 dB | +0.0 pt |" in out
    assert "| All | 10 |" in out and "no column regresses" in out
    assert "100.0 % no expert, 0 below 40 dB" in out


def test_a_lower_column_fails_the_check(compare, base, tmp_path, capsys):
    candidate = copy.deepcopy(base)
    for r in candidate:
        if r["group"] == "face":
            r["gain"], r["worse"] = -0.1, True  # 0.6 dB lower, both face photos made worse
    a, b = write(tmp_path / "a.json", base), write(tmp_path / "b.json", candidate)
    assert compare.main(["--base", a, "--candidate", b]) == 0  # without --check it only reports
    assert compare.main(["--base", a, "--candidate", b, "--check"]) == 1
    out = capsys.readouterr().out
    assert "fails: face: gain +0.50 -> -0.10 dB" in out and "fails: face: made worse 0.0 -> 100.0 %" in out
    assert "fails: All: gain +0.50 -> +0.38 dB" in out  # 2 of 10 images 0.6 dB lower
    assert "fails: smooth" not in out


def test_pooled_pairs_and_bins(compare, base, tmp_path, capsys):
    a = write(tmp_path / "a.json", base)
    assert compare.main(["--base", a, a, "--candidate", a, a, "--bins", "40,50"]) == 0
    out = capsys.readouterr().out
    assert "| smooth | 4 |" in out
    # the two smooth photos have input PSNR 33 and 51 dB: one per outer bin, twice (pooled), degrees 2.0 and 3.0
    assert "| -inf-40 dB | 2 | +0.50 | +0.50 | 0 | 0 | 2.00 | 2.00 |" in out
    assert "| 50-inf dB | 2 | +0.50 | +0.50 | 0 | 0 | 3.00 | 3.00 |" in out
    assert "40-50 dB" not in out  # an empty bin is left out


def test_different_photos_are_refused(compare, base, tmp_path, capsys):
    other = copy.deepcopy(base)
    other[3]["key"] = "someone else"
    a, b = write(tmp_path / "a.json", base), write(tmp_path / "b.json", other)
    with pytest.raises(SystemExit, match="image 3 differs"):
        compare.main(["--base", a, "--candidate", b])
    with pytest.raises(SystemExit):
        compare.main(["--base", a, a, "--candidate", b])
    assert "--base has 2 reports and --candidate 1: pair them" in capsys.readouterr().err
