"""Small building blocks shared by the networks (plain ``nn.Module``s, not saved on their own)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def space_to_depth(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``[B, C, H, W] -> [B, C * factor**2, H / factor, W / factor]`` (``pixel_unshuffle``)."""
    return rearrange(x, "b c (h p1) (w p2) -> b (c p1 p2) h w", p1=factor, p2=factor)


def depth_to_space(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The inverse of :func:`space_to_depth` (``pixel_shuffle``)."""
    return rearrange(x, "b (c p1 p2) h w -> b c (h p1) (w p2)", p1=factor, p2=factor)


def group_norm(channels: int, max_groups: int = 8) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``max_groups`` dividing ``channels`` (batch-size free)."""
    return nn.GroupNorm(math.gcd(max_groups, channels), channels)


class DepthwiseSeparableConv(nn.Module):
    """3x3 depthwise conv followed by a 1x1 pointwise conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        pad = dilation * (kernel_size // 2)
        self.depthwise = nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            padding=pad,
            dilation=dilation,
            groups=in_channels,
            padding_mode=padding_mode,
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs, GroupNorm, projection shortcut when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = group_norm(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), group_norm(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """ResNet-style feature extractor: stem (stride 2) + stages of basic blocks (stride 2 each) + GAP.

    ``input_size`` (optional) resizes the input first (cheap classifiers on large images).
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 16,
        stage_blocks: tuple[int, ...] = (1, 1, 1, 1),
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_channels, 3, 2, 1, bias=False), group_norm(base_channels), nn.ReLU()
        )
        layers: list[nn.Module] = []
        channels = base_channels
        for i, blocks in enumerate(stage_blocks):
            out = base_channels * 2**i
            for j in range(blocks):
                layers.append(BasicBlock(channels, out, stride=2 if j == 0 else 1))
                channels = out
        self.stages = nn.Sequential(*layers)
        self.out_features = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        return self.stages(self.stem(x)).mean(dim=(2, 3))
