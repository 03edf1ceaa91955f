"""Fixed high-pass views for retouching detection (steganalysis' SRM residuals).

Smoothing removes pores and sensor noise; warps resample pixels; both leave their clearest traces
in the finest detail, which a router that only sees a downscaled RGB face has thrown away. The
three SRM kernels of Fridrich & Kodovsky's rich model (as used by Zhou et al. 2018 for manipulation
detection) are applied to every colour channel at the input's own resolution, truncated (the TLU of
steganalysis nets) and fed to a small trainable encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResNetEncoder

SRM_KERNELS = (
    # second-order "KV"-like 3x3 inside a 5x5 support
    [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
    # the 5x5 KV kernel
    [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
    # horizontal second difference
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
)
SRM_SCALES = (4.0, 12.0, 2.0)


def srm_weight(in_channels: int = 3) -> torch.Tensor:
    """Depthwise SRM filter bank ``[in_channels * 3, 1, 5, 5]``: the three kernels on every channel."""
    kernels = torch.stack([torch.tensor(k, dtype=torch.float32) / s for k, s in zip(SRM_KERNELS, SRM_SCALES)])
    return kernels.repeat(in_channels, 1, 1).unsqueeze(1)


class SRMResidual(nn.Module):
    """``[B, C, H, W]`` in [-1, 1] -> truncated SRM residuals ``[B, 3C, H, W]`` in [-1, 1] (not trained).

    Residuals are measured in 8-bit grey levels and clipped at ``truncation`` levels: past a few
    levels a residual is an edge, not noise or texture.
    """

    def __init__(self, in_channels: int = 3, truncation: float = 3.0) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.truncation = truncation
        self.register_buffer("weight", srm_weight(in_channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = x * 127.5  # [-1, 1] -> grey levels around 0
        residual = F.conv2d(F.pad(levels, (2, 2, 2, 2), mode="reflect"), self.weight.to(x.dtype),
                            groups=self.in_channels)
        return residual.clamp(-self.truncation, self.truncation) / self.truncation


class ResidualEncoder(nn.Module):
    """SRM residuals at the input's resolution -> a ResNet encoder -> pooled features ``[B, F]``."""

    def __init__(self, in_channels: int = 3, base_channels: int = 16, stage_blocks: tuple[int, ...] = (1, 1, 1, 1),
                 truncation: float = 3.0) -> None:
        super().__init__()
        self.srm = SRMResidual(in_channels, truncation)
        self.encoder = ResNetEncoder(in_channels * len(SRM_KERNELS), base_channels, tuple(stage_blocks))
        self.out_features = self.encoder.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.srm(x))
