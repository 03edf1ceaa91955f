"""Metric functions against scikit-image on fixed arrays."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mofrr_core import metrics


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_psnr_matches_skimage(pair):
    a, b = pair
    assert metrics.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    assert metrics.psnr(a, a) == metrics.MAX_PSNR


def test_ssim_matches_skimage(pair):
    a, b = pair
    expected = structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, b) < 0.999


def test_shape_mismatch_is_an_error(pair):
    with pytest.raises(ValueError, match="shape mismatch"):
        metrics.psnr(pair[0], pair[1][:10])


def test_identity_metric_skips_with_a_reason_without_dlib(astronaut_face):
    try:
        import dlib  # noqa: F401
    except ImportError:
        with pytest.raises(metrics.IdentityUnavailable, match="pip install 'mofrr\\[eval\\]'"):
            metrics.identity_cosine(astronaut_face, astronaut_face)
        pytest.skip("dlib is not installed (optional 'eval' extra): identity similarity unavailable")
    assert metrics.identity_cosine(astronaut_face, astronaut_face) == pytest.approx(1.0, abs=1e-6)


def test_the_tensor_psnr_is_the_array_psnr_per_image():
    import torch

    from mofrr_core.metrics import MAX_PSNR, psnr, psnr_per_image

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape) * np.array([0, 1, 3])[:, None, None, None], 0, 255)
    b = b.astype(np.uint8)
    as_tensor = [torch.from_numpy(v).permute(0, 3, 1, 2).double() / 127.5 - 1 for v in (a, b)]  # data range 2
    per_image = psnr_per_image(*as_tensor).tolist()
    assert per_image[0] == MAX_PSNR == psnr(a[0], b[0])  # identical images: capped, not infinite
    assert per_image[1:] == pytest.approx([psnr(a[i], b[i]) for i in (1, 2)], abs=1e-4)
    assert per_image[1] > per_image[2] > 20
