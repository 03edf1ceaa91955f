import json
from collections import Counter

import numpy as np
import pytest

from mofrr_core.data.degrees import DegreeThresholds, degree_from_psnr, degree_from_strength, fit_cuts


def test_fit_gives_exact_15_25_25_25_10_proportions():
    rng = np.random.default_rng(3)
    psnrs = {"white": rng.normal(30, 4, 1000), "eye": rng.uniform(35, 50, 2000)}
    thresholds = DegreeThresholds.fit(psnrs)
    for op, values in psnrs.items():
        counts = Counter(thresholds.degree(op, v) for v in values)
        n = len(values)
        assert counts == {5: 0.15 * n, 4: 0.25 * n, 3: 0.25 * n, 2: 0.25 * n, 1: 0.10 * n}
        order = np.argsort(values)
        assert thresholds.degree(op, values[order[0]]) == 5  # lowest PSNR = strongest = 5
        assert thresholds.degree(op, values[order[-1]]) == 1
    assert thresholds.meta["samples_per_op"] == {"white": 1000, "eye": 2000}


def test_cuts_are_ascending_and_monotone_labels():
    cuts = fit_cuts(np.arange(100.0))
    assert cuts == [14.5, 39.5, 64.5, 89.5]
    labels = [degree_from_psnr(p, cuts) for p in np.linspace(-5, 105, 200)]
    assert labels == sorted(labels, reverse=True)
    assert degree_from_psnr(14.4, cuts) == 5 and degree_from_psnr(14.5, cuts) == 4
    with pytest.raises(ValueError, match="at least 5"):
        fit_cuts([1.0, 2.0])


def test_thresholds_round_trip_through_json(tmp_path):
    rng = np.random.default_rng(0)
    thresholds = DegreeThresholds.fit({"smooth": rng.uniform(30, 45, 400), "face": rng.uniform(25, 40, 400)},
                                      resolution=64)
    path = thresholds.save(tmp_path / "t.json")
    loaded = DegreeThresholds.load(path)
    assert loaded.cuts == thresholds.cuts
    assert loaded.meta["resolution"] == 64
    probe = rng.uniform(20, 50, 100)
    assert [loaded.degree("smooth", p) for p in probe] == [thresholds.degree("smooth", p) for p in probe]
    assert json.loads(path.read_text())["labels_ascending_psnr"] == [5, 4, 3, 2, 1]
    (tmp_path / "bad.json").write_text(json.dumps({"cuts": {"eye": [3.0, 2.0, 1.0, 0.0]}}))
    with pytest.raises(ValueError, match="bad.json.*ascending"):
        DegreeThresholds.load(tmp_path / "bad.json")
    with pytest.raises(KeyError, match="'eye'"):
        loaded.degree("eye", 30.0)


def test_strength_fallback_bins_the_engine_range_evenly():
    from mofrr_core.retouch.engine import STRENGTH_RANGE, sample_strength

    assert degree_from_strength(0.1, (0.1, 1.0)) == 1 and degree_from_strength(1.0, (0.1, 1.0)) == 5
    assert degree_from_strength(0.0, (0.1, 1.0)) == 1 and degree_from_strength(0.55, (0.1, 1.0)) == 3
    low, high = STRENGTH_RANGE
    assert degree_from_strength(low) == 1 and degree_from_strength(high) == 5
    rng = np.random.default_rng(1)
    counts = Counter(degree_from_strength(sample_strength(rng)) for _ in range(5000))
    assert set(counts) == {1, 2, 3, 4, 5}
    assert all(abs(c / 5000 - 0.2) < 0.03 for c in counts.values())
