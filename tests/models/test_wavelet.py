"""Haar DWT/IDWT against pywt."""

import numpy as np
import pytest
import pywt
import torch

from mofrr_core.models.wavelet import HaarDWT, dwt, dwt2, idwt


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (3, 3, 12, 20), (2, 1, 6, 10)])
def test_dwt2_matches_pywt(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    ll, highs = dwt2(x)
    ref_ll, (ch, cv, cd) = pywt.dwt2(x.numpy(), "haar", axes=(-2, -1))
    assert ll.shape == (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    assert highs.shape == (shape[0], 3, shape[1], shape[2] // 2, shape[3] // 2)
    np.testing.assert_allclose(ll.numpy(), ref_ll, atol=1e-5)
    for k, ref in enumerate((ch, cv, cd)):
        np.testing.assert_allclose(highs[:, k].numpy(), ref, atol=1e-5)


def test_two_levels_match_wavedec2_and_idwt2():
    x = torch.randn(2, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    ll, highs = dwt(x, levels=2)
    ref = pywt.wavedec2(x.numpy(), "haar", level=2, axes=(-2, -1))  # coarsest first
    np.testing.assert_allclose(ll.numpy(), ref[0], atol=1e-5)
    for level, bands in ((1, ref[2]), (2, ref[1])):
        for k, band in enumerate(bands):
            np.testing.assert_allclose(highs[level - 1][:, k].numpy(), band, atol=1e-5)
    ll1, h1 = dwt(x, 1)
    ref_rec = pywt.idwt2((ll1.numpy(), tuple(h1[0][:, k].numpy() for k in range(3))), "haar", axes=(-2, -1))
    np.testing.assert_allclose(idwt(ll1, h1).numpy(), ref_rec, atol=1e-5)


@pytest.mark.parametrize("levels", [1, 2])
def test_perfect_reconstruction_and_gradients(levels):
    x = torch.randn(3, 3, 16, 8, requires_grad=True)
    module = HaarDWT(levels)
    ll, highs = module(x)
    assert len(highs) == levels and ll.shape[-1] == 8 // 2**levels
    rec = module.inverse(ll, highs)
    assert torch.allclose(rec, x, atol=1e-5)
    rec.sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x), atol=1e-5)


def test_odd_size_and_bad_levels_raise():
    with pytest.raises(ValueError):
        dwt2(torch.zeros(1, 3, 7, 8))
    with pytest.raises(ValueError):
        dwt(torch.zeros(1, 3, 8, 8), levels=3)
