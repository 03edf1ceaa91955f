"""Losses of the paper's section 3.4 (L_IDEM, L_simple, L_high, L_hyb, L_class) and an SSIM in torch.

The SSIM reproduces ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=...)``: 11x11 gaussian window (truncate 3.5), statistics
over the "valid" region only (skimage crops the border of half a window), mean over channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error (the paper's squared l2 norms are taken as means)."""
    return F.mse_loss(prediction, target)


def idem_loss(distortion: torch.Tensor, y_ll: torch.Tensor, x_ll: torch.Tensor) -> torch.Tensor:
    """L_IDEM = || R - (y_LL - x_LL) ||^2."""
    return mse(distortion, y_ll - x_ll)


def simple_loss(
    eps_pred: torch.Tensor, eps: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """L_simple = E || eps - eps_theta ||^2 (optional per-sample weights ``[B]``)."""
    per_sample = (eps_pred - eps).pow(2).flatten(1).mean(1)
    if weights is not None:
        per_sample = per_sample * weights
    return per_sample.mean()


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean |dx| + mean |dy| over the last two axes."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dx + dy


def high_loss(
    pred_highs: list[torch.Tensor],
    target_highs: list[torch.Tensor],
    l2_weight: float = 0.1,
    tv_weight: float = 0.01,
) -> torch.Tensor:
    """L_high = lambda_1 || y_H_hat - y_H ||^2 + lambda_2 TV(y_H_hat), summed over DWT levels."""
    total = pred_highs[0].new_zeros(())
    for pred, target in zip(pred_highs, target_highs):
        total = total + l2_weight * mse(pred, target) + tv_weight * tv_loss(pred)
    return total


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D gaussian of ``size`` taps."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (coords / sigma) ** 2)
    return (g / g.sum()).to(dtype)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> torch.Tensor:
    """SSIM of ``[B, C, H, W]`` images as skimage (gaussian weights, population covariance).

    ``reduction``: ``"mean"`` (scalar), ``"none"`` (``[B]``).
    """
    size = 2 * int(3.5 * sigma + 0.5) + 1
    c = x.shape[1]
    g = gaussian_window(size, sigma, x.dtype).to(x.device)
    kh = g.view(1, 1, size, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, size).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x * mu_x
    syy = blur(y * y) - mu_y * mu_y
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    per_image = s.flatten(1).mean(1)
    return per_image if reduction == "none" else per_image.mean()


def hybrid_loss(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """L_hyb = || Y - Y_hat ||_1 + (1 - SSIM(Y, Y_hat)) (l1 as a mean)."""
    return F.l1_loss(prediction, target) + 1 - ssim(prediction, target, data_range=data_range)


def log_mse_loss(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mean over images of ``log10(MSE_i + eps)``: minus the mean per-image PSNR / 10, up to a constant.

    The evaluation averages PSNR per image, so a small error on a lightly retouched image (high PSNR)
    costs as much as a large one on a heavily retouched image; this loss weighs them the same way.
    ``eps`` (about the 8-bit quantisation error on [-1, 1]) keeps the gradient of near-perfect images finite.
    """
    return log_mse_per_image(prediction, target, eps).mean()


def log_mse_per_image(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``[B]``: ``log10(MSE_i + eps)`` of each image (minus its PSNR / 10, up to a constant)."""
    return torch.log10((prediction - target).pow(2).flatten(1).mean(1) + eps)


def harm_loss(prediction: torch.Tensor, inputs: torch.Tensor, target: torch.Tensor, eps: float = 1e-5,
              only: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over images of ``relu(log10(MSE(prediction_i, target_i) + eps) - log10(MSE(inputs_i, target_i) + eps))``:
    how many decibels / 10 each image was made worse than its input, zero where it was made better.

    A hinge on the evaluation's "restored worse than the input" count: it leaves the gain-seeking loss alone on the
    images it improves and pulls the others back towards their input; on an untouched face (input = target) any
    change costs. ``only`` (``[B]`` bool): the mean over those images alone (zero if none).
    """
    worse = F.relu(log_mse_per_image(prediction, target, eps) - log_mse_per_image(inputs, target, eps).detach())
    if only is None:
        return worse.mean()
    return (worse * only).sum() / only.sum().clamp(min=1)


def add_log_mse(loss: torch.Tensor, prediction: torch.Tensor, target: torch.Tensor, weight: float,
                logs: dict[str, float]) -> torch.Tensor:
    """``loss + weight x log_mse_loss`` (logged as ``loss_log_mse``), or ``loss`` itself when ``weight`` is 0."""
    if not weight:
        return loss
    term = log_mse_loss(prediction, target)
    logs["loss_log_mse"] = term.item()
    return loss + weight * term


def add_harm(loss: torch.Tensor, prediction: torch.Tensor, inputs: torch.Tensor, target: torch.Tensor,
             weight: float, logs: dict[str, float], only: torch.Tensor | None = None) -> torch.Tensor:
    """``loss + weight x harm_loss`` (logged as ``loss_harm``; ``only``: over those images), or ``loss`` itself
    when ``weight`` is 0."""
    if not weight:
        return loss
    term = harm_loss(prediction, inputs, target, only=only)
    logs["loss_harm"] = term.item()
    return loss + weight * term


def class_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_class: cross entropy ``-sum_i c_i log c_hat_i`` (``target`` class indices from 0)."""
    return F.cross_entropy(logits, target)


def multilabel_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross entropy for the multi-label router."""
    return F.binary_cross_entropy_with_logits(logits, labels.float())


def space_loss(final: torch.Tensor, expert_outputs: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """L_space = L_hyb(Y, Y_hat) + sum_M L_hyb(Y, Y_M)."""
    total = hybrid_loss(final, target)
    for out in expert_outputs:
        total = total + hybrid_loss(out, target)
    return total


def wavefrr_total(
    l_idem: torch.Tensor,
    l_simple: torch.Tensor,
    l_high: torch.Tensor,
    l_space: torch.Tensor,
    l_class: torch.Tensor | None = None,
) -> torch.Tensor:
    """L = L_freq + L_space + L_class with L_freq = L_IDEM + L_simple + L_high."""
    total = l_idem + l_simple + l_high + l_space
    return total if l_class is None else total + l_class

