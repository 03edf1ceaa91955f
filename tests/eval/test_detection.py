"""Detection metrics: AUC, ECE, temperature and Platt fitting and false calls by group, on numbers worked by hand."""

import numpy as np
import pytest

from mofrr_core.eval.detection import (
    detection_report,
    expected_calibration_error,
    false_calls_by_group,
    fit_platt,
    fit_temperature,
    roc_auc,
    worst_group_rate,
)


def test_auc_perfect_reversed_and_ties():
    labels = np.array([0, 0, 1, 1], bool)
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert roc_auc(np.full(4, 0.5), labels) == 0.5
    # one positive below one negative of two: 3 of 4 pairs ordered
    assert roc_auc(np.array([0.1, 0.6, 0.5, 0.9]), labels) == pytest.approx(0.75)
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1], bool)))


def test_auc_matches_pair_count_on_random_scores():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    labels = rng.random(60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    assert roc_auc(scores, labels) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_ece_zero_when_calibrated_and_gap_when_overconfident():
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], bool)
    assert expected_calibration_error(p, y) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(4, 0.9), np.array([1, 1, 0, 0], bool)) == pytest.approx(0.4)


def test_temperature_undoes_overconfidence():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 1.5, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-true_logits))
    temperature = fit_temperature(true_logits * 3.0, y)  # a detector 3x too confident
    assert temperature == pytest.approx(3.0, rel=0.15)
    before = expected_calibration_error(1 / (1 + np.exp(-true_logits * 3.0)), y)
    after = expected_calibration_error(1 / (1 + np.exp(-true_logits * 3.0 / temperature)), y)
    assert after < before / 2


def test_platt_undoes_a_shift_a_temperature_cannot():
    """Logits shifted by +2 (a gate that reads stronger evidence in one view): one temperature leaves the printed
    probabilities off, a scale and a bias recover the true ones; bounds hold where no increasing fit exists."""
    rng = np.random.default_rng(2)
    true_logits = rng.normal(-1.0, 1.5, 6000)
    y = rng.random(6000) < 1 / (1 + np.exp(-true_logits))
    seen = true_logits / 0.8 + 2.0
    scale, bias = fit_platt(seen, y)
    assert scale == pytest.approx(0.8, rel=0.1) and bias == pytest.approx(-1.6, abs=0.25)
    tempered = expected_calibration_error(1 / (1 + np.exp(-seen / fit_temperature(seen, y))), y)
    platt = expected_calibration_error(1 / (1 + np.exp(-(scale * seen + bias))), y)
    assert tempered > 0.1 and platt < 0.03
    assert fit_platt(-seen, y)[0] == 0.05  # ranks positives below negatives: the lowest scale, its best bias
    scale, bias = fit_platt(seen, seen > 1.0)  # separated perfectly: the highest scale
    assert scale == 20.0 and bias == pytest.approx(-20.0, abs=1.0)
    with pytest.raises(ValueError, match="both classes"):
        fit_platt(seen, np.zeros(6000, bool))


def test_detection_report_counts_false_calls_on_untouched_only():
    types = ["white", "smooth"]
    labels = np.array([[1, 0], [0, 1], [0, 0], [0, 0]])
    p = np.array([[0.9, 0.2], [0.6, 0.8], [0.7, 0.1], [0.2, 0.1]])
    report = detection_report(p, labels, types)
    assert report["white"]["false_calls"] == 0.5  # untouched rows 2 and 3: one white call
    assert report["smooth"]["false_calls"] == 0.0
    assert report["white"]["auc"] == pytest.approx(1.0)  # 0.9 above 0.6, 0.7, 0.2
    assert report["any"]["auc"] == pytest.approx(1.0)  # max 0.9, 0.8 vs 0.7, 0.2
    assert report["any"]["false_calls"] == 0.5
    assert report["any"]["untouched"] == 2
    strict = detection_report(p, labels, types, threshold=[0.75, 0.5])  # one threshold per gate
    assert strict["white"]["false_calls"] == 0.0 and strict["any"]["false_calls"] == 0.0
    assert strict["white"]["auc"] == report["white"]["auc"]
    with pytest.raises(ValueError, match="one per type"):
        detection_report(p, labels, types, threshold=[0.5, 0.5, 0.5])
    per_face = np.array([[0.5, 0.5], [0.5, 0.5], [0.75, 0.5], [0.5, 0.5]])  # row 2 judged by its own thresholds
    assert detection_report(p, labels, types, threshold=per_face)["any"]["false_calls"] == 0.0
    assert detection_report(p, labels, types, threshold=per_face[::-1])["white"]["false_calls"] == 0.5


def test_false_calls_by_group_and_worst():
    types = ["white", "face"]
    labels = np.zeros((4, 2))
    p = np.array([[0.9, 0.1], [0.1, 0.1], [0.1, 0.6], [0.1, 0.1]])
    groups = ["A", "A", "B", "B"]
    by_group = false_calls_by_group(p, labels, groups, types)
    assert by_group == {"A": {"white": 0.5, "face": 0.0, "n": 2.0}, "B": {"white": 0.0, "face": 0.5, "n": 2.0}}
    assert worst_group_rate(by_group, types) == (0.5, "A/white")
    assert false_calls_by_group(p, labels, groups, types, threshold=[0.95, 0.5])["A"]["white"] == 0.0
    per_face = np.array([[0.95, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.7]])
    assert false_calls_by_group(p, labels, groups, types, threshold=per_face) == {
        "A": {"white": 0.0, "face": 0.0, "n": 2.0}, "B": {"white": 0.0, "face": 0.5, "n": 2.0}}
