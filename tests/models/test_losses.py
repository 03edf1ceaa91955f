"""Losses: SSIM vs skimage, the paper's loss terms."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from mofrr_core.metrics import psnr_per_image
from mofrr_core.models import losses


@pytest.mark.parametrize("seed,noise,size", [(0, 0.05, (32, 32)), (1, 0.3, (40, 28)), (2, 1.0, (24, 36))])
def test_ssim_matches_skimage(seed, noise, size):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (*size, 3))
    b = np.clip(a + rng.normal(0, noise, a.shape), -1, 1)
    ref = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2.0, channel_axis=2
    )
    to_t = lambda arr: torch.tensor(arr, dtype=torch.float32).permute(2, 0, 1)[None]  # noqa: E731
    assert abs(losses.ssim(to_t(a), to_t(b)).item() - ref) < 1e-3


def test_hybrid_tv_and_totals():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert losses.hybrid_loss(x, x).abs().item() < 1e-5
    assert losses.tv_loss(torch.ones(1, 3, 8, 8)).item() == 0
    highs = [torch.randn(2, 3, 3, 8, 8)]
    expected = 0.1 * losses.mse(highs[0], torch.zeros_like(highs[0])) + 0.01 * losses.tv_loss(highs[0])
    assert torch.allclose(losses.high_loss(highs, [torch.zeros_like(highs[0])]), expected)
    one = torch.tensor(1.0)
    assert losses.wavefrr_total(one, one, one, one).item() == 4
    assert losses.wavefrr_total(one, one, one, one, one).item() == 5
    r, y_ll, x_ll = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    assert losses.idem_loss(r, y_ll, x_ll).item() == 1
    assert losses.space_loss(x, [x, x], x).abs().item() < 1e-4


def test_hybrid_loss_step_decreases():
    torch.manual_seed(0)
    y = torch.rand(2, 3, 16, 16) * 2 - 1
    pred = torch.zeros_like(y, requires_grad=True)
    before = losses.hybrid_loss(pred, y)
    before.backward()
    with torch.no_grad():
        pred -= 0.5 * pred.grad / pred.grad.abs().max()
    assert losses.hybrid_loss(pred, y).item() < before.item()


def test_log_mse_loss_is_minus_the_mean_per_image_psnr():
    torch.manual_seed(0)
    y = torch.rand(3, 3, 16, 16) * 2 - 1
    x = y + torch.randn_like(y) * torch.tensor([0.01, 0.1, 0.3])[:, None, None, None]
    per_image = psnr_per_image(x, y).tolist()
    expected = np.log10(4.0) - np.mean(per_image) / 10  # PSNR_i = 10 log10(4 / MSE_i) on [-1, 1]
    assert abs(losses.log_mse_loss(x, y, eps=0).item() - expected) < 1e-5
    # unlike the MSE, it weighs the same relative error on a near-perfect image as on a poor one
    x.requires_grad_(True)
    losses.log_mse_loss(x, y).backward()
    grad = x.grad.flatten(1).norm(dim=1)
    assert grad[0] > 5 * grad[2]


def test_harm_loss_counts_only_the_images_made_worse_than_their_input():
    torch.manual_seed(0)
    y = torch.rand(3, 3, 16, 16) * 2 - 1
    x = y + 0.1 * torch.randn_like(y)
    better, worse = y + 0.05 * torch.randn_like(y), y + 0.2 * torch.randn_like(y)
    pred = torch.stack([better[0], worse[1], y[2]]).requires_grad_(True)  # better, worse, exact
    mse = lambda a, b: (a - b).pow(2).mean().item()  # noqa: E731
    expected = np.log10(mse(worse[1], y[1]) / mse(x[1], y[1])) / 3
    assert losses.harm_loss(pred, x, y, eps=0).item() == pytest.approx(expected, rel=1e-4)
    losses.harm_loss(pred, x, y).backward()
    grad = pred.grad.flatten(1).abs().sum(1)
    assert grad[0] == 0 and grad[2] == 0 and grad[1] > 0  # pulls back only the image made worse
    assert losses.harm_loss(x, x, y).item() == 0  # returning the input costs nothing
    # an untouched face (input = target): any change costs, a lot
    assert losses.harm_loss(y + 0.01, y, y).item() > 0.3
    # over some images only: the image made worse alone, or nothing
    assert losses.harm_loss(pred, x, y, eps=0, only=torch.tensor([False, True, True])).item() == pytest.approx(
        expected * 3 / 2, rel=1e-4)
    assert losses.harm_loss(pred, x, y, only=torch.tensor([True, False, True])).item() == 0


def test_combine_and_baseline_add_the_psnr_term_only_when_asked():
    from mofrr_core.models.baseline import UNetBaseline
    from mofrr_core.models.combine import CombineModule

    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    combine = CombineModule()
    plain, logs = combine.compute_loss(x, None, None, None, y)
    weighted, logs_w = combine.compute_loss(x, None, None, None, y, psnr_weight=0.5)
    assert "loss_log_mse" not in logs
    assert torch.allclose(weighted, plain + 0.5 * losses.log_mse_loss(x, y))  # a fresh combine returns x
    hinged, logs_h = combine.compute_loss(x, None, None, None, y, harm_weight=2.0)
    assert logs_h["loss_harm"] == 0 and torch.allclose(hinged, plain)  # the input is never worse than itself
    baseline = UNetBaseline(block_out_channels=(8, 16), norm_num_groups=4)
    plain, _ = baseline.compute_loss(x, y)
    weighted, logs_w = baseline.compute_loss(x, y, psnr_weight=2.0)
    assert logs_w["loss_log_mse"] < 0 and weighted.item() == pytest.approx(plain.item() + 2 * logs_w["loss_log_mse"])
