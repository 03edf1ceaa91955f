"""Evaluation metrics: router precision/recall/F1, degree accuracy, cosine, table grouping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mofrr_core import metrics
from mofrr_core.eval import tables

TYPES = ["white", "smooth", "face", "eye"]


def test_classification_report_by_hand():
    labels = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], float)
    probs = np.array([[0.9, 0.2, 0.1, 0.6], [0.4, 0.8, 0.2, 0.1], [0.7, 0.1, 0.3, 0.95], [0.1, 0.1, 0.2, 0.3]])
    report = metrics.classification_report(probs, labels, TYPES, threshold=0.5)
    # white: predicted rows 0, 2; true rows 0, 1 -> tp 1, fp 1, fn 1
    assert report["white"]["precision"] == pytest.approx(0.5)
    assert report["white"]["recall"] == pytest.approx(0.5)
    assert report["white"]["f1"] == pytest.approx(0.5)
    assert report["white"]["accuracy"] == pytest.approx(0.5)
    # smooth: perfect; face: never present nor predicted -> precision/recall undefined, accuracy 1
    assert report["smooth"]["f1"] == pytest.approx(1.0)
    assert math.isnan(report["face"]["precision"]) and math.isnan(report["face"]["recall"])
    assert report["face"]["accuracy"] == 1.0
    # eye: predicted rows 0, 2; true row 2 -> precision 0.5, recall 1, f1 2/3
    assert report["eye"]["precision"] == pytest.approx(0.5)
    assert report["eye"]["recall"] == pytest.approx(1.0)
    assert report["eye"]["f1"] == pytest.approx(2 / 3)
    # micro: tp 3 (white, smooth, eye), fp 2, fn 1; the whole label set is right on row 3 only
    assert report["all"]["precision"] == pytest.approx(3 / 5)
    assert report["all"]["recall"] == pytest.approx(3 / 4)
    assert report["all"]["exact"] == pytest.approx(0.25)
    assert report["all"]["support"] == 4


def test_classification_report_threshold_is_strict_and_shapes_checked():
    labels = np.array([[1.0]])
    assert metrics.classification_report(np.array([[0.5]]), labels, ["white"], 0.5)["white"]["recall"] == 0.0
    with pytest.raises(ValueError, match="expected"):
        metrics.classification_report(np.zeros((2, 3)), np.zeros((2, 4)), TYPES)


def test_degree_report():
    report = metrics.degree_report([1.2, 2.6, 4.4, 4.6, 1.0], [1, 2, 4, 2, 3])
    # rounded: 1, 3, 4, 5, 1 -> exact on 1 and 4; within one: 1, 3 (vs 2), 4 -> 3 of 5
    assert report["n"] == 5
    assert report["accuracy"] == pytest.approx(2 / 5)
    assert report["within_one"] == pytest.approx(3 / 5)
    assert report["mae"] == pytest.approx(np.mean([0.2, 0.6, 0.4, 2.6, 2.0]))
    assert math.isnan(metrics.degree_report([], [])["accuracy"])


def test_cosine():
    assert metrics.cosine([1, 0], [1, 0]) == pytest.approx(1.0)
    assert metrics.cosine([1, 0], [0, 2]) == pytest.approx(0.0)
    assert metrics.cosine([1, 1], [-2, -2]) == pytest.approx(-1.0)


def test_grouping_and_columns():
    assert tables.group_of([0, 1, 0, 0], TYPES) == "smooth"
    assert tables.group_of([1, 0, 0, 1], TYPES) == "Multi"
    assert tables.group_of([0, 0, 0, 0], TYPES) == "None"
    assert tables.group_of([0, 0, 0, 0, 1], [*TYPES, "lips"]) == "lips"
    assert tables.columns_for(TYPES, ["white", "Multi"]) == ["white", "smooth", "face", "eye", "Multi"]
    # untouched faces are not a fidelity column (they have their own table)
    assert tables.columns_for([*TYPES, "lips"], ["None"]) == ["white", "smooth", "face", "eye", "lips", "Multi"]


def test_untouched_faces_are_left_out_of_all_and_get_their_own_table():
    def record(group, psnr_in, psnr_out, to_input=None, ran=()):
        entry = {"psnr": psnr_out, "ssim": 1.0, "psnr_gain": psnr_out - psnr_in, "experts_run": list(ran)}
        if to_input is not None:
            entry["psnr_to_input"] = to_input
        return {"group": group, "input": {"psnr": psnr_in, "ssim": 1.0}, "methods": {"M": entry}}

    records = [record("white", 30.0, 32.0, ran=["white"]), record("None", 100.0, 50.0, 50.0, ["shared"]),
               record("None", 100.0, 100.0, 100.0), record("None", 100.0, 38.0, 38.0, ["face"])]
    summary = tables.summarize(records, tables.columns_for(TYPES, [r["group"] for r in records]))
    assert summary["M"]["All"]["n"] == 1 and summary["M"]["All"]["psnr_gain"] == 2.0
    row = tables.untouched_table(records).splitlines()[2]
    # n 3, mean 62.67, 2 of 3 at >= 45 dB, 1 of 3 under 40, worst 38, nothing ran on 1 of 3
    assert row == "| M | 3 | 62.67 | 0.67 | 0.33 | 38.00 | 0.33 |"


def test_gain_by_routing_outcome():
    assert tables.routing_outcome("smooth", ["smooth"]) == "own expert only"
    assert tables.routing_outcome("smooth", ["white", "smooth"]) == "own + other experts"
    assert tables.routing_outcome("smooth", ["white"]) == "other experts only"
    assert tables.routing_outcome("smooth", []) == "no expert"

    def record(group, gain, run):
        return {"group": group, "methods": {"M": {"psnr_gain": gain, "experts_run": run}}}

    records = [record("smooth", 1.0, ["smooth-expert", "shared"]), record("smooth", 0.0, ["smooth-expert"]),
               record("smooth", -2.0, ["white-expert", "shared"]), record("eye", 0.5, ["shared"]),
               record("Multi", 9.0, ["white-expert"])]
    names = {"smooth-expert": "smooth", "white-expert": "white"}  # expert name -> its retouching type
    table = tables.routing_table(records, "M", tables.columns_for(TYPES, ["smooth", "eye", "Multi"]), names)
    lines = table.splitlines()
    assert lines[0] == "| experts run | White | Smooth | Face | Eye |"
    assert lines[2] == "| own expert only | – | +0.50 (2) | – | – |"
    assert lines[4] == "| other experts only | – | -2.00 (1) | – | – |"
    assert lines[5] == "| no expert | – | – | – | +0.50 (1) |"  # Multi images are not in this table


def test_summary_means_and_gains():
    def record(group, inp, out):
        return {"group": group, "input": {"psnr": inp, "ssim": 0.9}, "methods": {"M": {"psnr": out, "ssim": 0.95}}}

    records = [record("white", 30.0, 33.0), record("white", 32.0, 33.0), record("Multi", 25.0, 31.0)]
    summary = tables.summarize(records, tables.columns_for(TYPES, ["white", "Multi"]))
    assert summary["Input"]["white"]["psnr"] == pytest.approx(31.0)
    assert summary["M"]["white"]["psnr_gain"] == pytest.approx(2.0)
    assert summary["M"]["Multi"]["psnr_gain"] == pytest.approx(6.0)
    assert summary["M"]["All"]["n"] == 3 and summary["M"]["Single"]["n"] == 2
    assert summary["M"]["smooth"]["n"] == 0 and math.isnan(summary["M"]["smooth"]["psnr"])
    table = tables.fidelity_table(summary, tables.columns_for(TYPES, ["white", "Multi"]))
    assert "| M | 33.00 / 0.950 (+2.00) | – | – | – | 31.00 / 0.950 (+6.00) |" in table
