"""Haar discrete wavelet transform in torch (differentiable, batched), matching ``pywt.dwt2``.

Band layout: ``dwt`` returns ``(ll, highs)``; ``ll`` is ``[B, C, H / 2**L, W / 2**L]`` and ``highs`` a
list with one tensor per level, **finest first** (``highs[0]`` is level 1 at ``H/2``), each
``[B, 3, C, h, w]`` with the bands in pywt's order ``(cH, cV, cD)`` = (horizontal detail, vertical
detail, diagonal detail), i.e. pywt's ``dwt2`` output ``(cA, (cH, cV, cD))`` per level.
"""

from __future__ import annotations

import pywt
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def _haar_kernels(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[4, 1, 2, 2]`` analysis kernels (LL, cH, cV, cD) for a stride-2 correlation.

    pywt computes ``y[n] = sum_k x[2n + 1 - k] h[k]`` (convolution then down-sampling), which is a
    correlation with the reversed decomposition filter.
    """
    wavelet = pywt.Wavelet("haar")
    lo = torch.tensor(wavelet.dec_lo[::-1], dtype=torch.float64)
    hi = torch.tensor(wavelet.dec_hi[::-1], dtype=torch.float64)
    # first factor along height (axis -2), second along width (axis -1)
    kernels = [torch.outer(lo, lo), torch.outer(hi, lo), torch.outer(lo, hi), torch.outer(hi, hi)]
    return torch.stack(kernels)[:, None].to(dtype)


def dwt2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Haar level: ``x [B, C, H, W]`` -> ``(ll [B, C, H/2, W/2], highs [B, 3, C, H/2, W/2])``."""
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"dwt2 needs an even height and width, got {h}x{w}")
    kernels = _haar_kernels(x.dtype).to(x.device)
    out = F.conv2d(rearrange(x, "b c h w -> (b c) 1 h w"), kernels, stride=2)
    out = rearrange(out, "(b c) k h w -> b k c h w", b=b, c=c)
    return out[:, 0], out[:, 1:]


def idwt2(ll: torch.Tensor, highs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dwt2` (the Haar basis is orthonormal: transposed stride-2 convolution)."""
    b, c = ll.shape[:2]
    kernels = _haar_kernels(ll.dtype).to(ll.device)
    bands = torch.cat([ll[:, None], highs], dim=1)
    out = F.conv_transpose2d(rearrange(bands, "b k c h w -> (b c) k h w"), kernels, stride=2)
    return rearrange(out, "(b c) 1 h w -> b c h w", b=b, c=c)


def dwt(x: torch.Tensor, levels: int = 1) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Multi-level Haar DWT: ``(ll, [highs_level1, ..., highs_levelL])`` (finest first)."""
    if levels not in (1, 2):
        raise ValueError(f"levels must be 1 or 2, got {levels}")
    highs = []
    ll = x
    for _ in range(levels):
        ll, h = dwt2(ll)
        highs.append(h)
    return ll, highs


def idwt(ll: torch.Tensor, highs: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`dwt` (``highs`` finest first)."""
    for h in reversed(highs):
        ll = idwt2(ll, h)
    return ll


class HaarDWT(nn.Module):
    """Module wrapper of :func:`dwt` / :func:`idwt` with a fixed number of levels (no parameters)."""

    def __init__(self, levels: int = 1) -> None:
        super().__init__()
        if levels not in (1, 2):
            raise ValueError(f"levels must be 1 or 2, got {levels}")
        self.levels = levels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return dwt(x, self.levels)

    def inverse(self, ll: torch.Tensor, highs: list[torch.Tensor]) -> torch.Tensor:
        return idwt(ll, highs)
