"""benchmarks/white_colour.py --features router: the router-feature probe's ``describe`` on the tiny pipeline."""

from __future__ import annotations

import numpy as np
import torch

from mofrr_core.faces import TEMPLATE_224
from mofrr_core.pipeline import load_pipeline
from tests.robustness.helpers import FakeDetector, load_benchmark


def test_router_features_describe_the_face_the_white_gate_reads(pipeline_dir):
    white_colour = load_benchmark("white_colour")
    pipeline = load_pipeline(pipeline_dir, "cpu")
    describe = white_colour.router_features(pipeline, FakeDetector({(224, 224): [TEMPLATE_224.copy()]}))
    rng = np.random.default_rng(0)
    first, second = (rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2))
    a, b = describe(first, None), describe(second, None)
    size = pipeline.router_size
    width = pipeline.router.features(torch.zeros(1, 3, size, size)).shape[1]
    assert a.shape == b.shape == (width,) and np.isfinite(a).all() and not np.allclose(a, b)
    assert np.array_equal(describe(first, None), a)  # deterministic
    assert np.isnan(describe(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8), None)).all()  # no face found
