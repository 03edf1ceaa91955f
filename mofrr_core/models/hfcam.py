"""HFCAM (eq. 8): high-frequency refinement by patch-wise cross-attention to the restored low band."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config
from einops import rearrange
from torch import nn

from .blocks import DepthwiseSeparableConv
from .loading import MoFRRModel


class DilatedResidualBlock(nn.Module):
    """Three 3x3 convs (dilations configurable, default 1, 2, 1) with GELU and a residual connection."""

    def __init__(self, channels: int, dilations: tuple[int, ...] = (1, 2, 1)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, d in enumerate(dilations):
            layers.append(nn.Conv2d(channels, channels, 3, padding=d, dilation=d))
            if i < len(dilations) - 1:
                layers.append(nn.GELU())
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class HFCAM(MoFRRModel, ConfigMixin):
    """``y_H = x_H + Conv(CA(y_0, x_H))`` for one DWT level.

    Queries come from the high bands ``x_H`` (``3C`` channels), keys/values from the restored low
    band ``y_0`` (resized to the band size); each is a depthwise-separable conv of a 1x1 embedding.
    Tokens are ``patch_size x patch_size`` patches (inputs are edge-padded to a multiple), one
    multi-head attention layer, then a three-layer dilated residual conv and a zero-initialised 1x1
    output conv, so a fresh HFCAM is the identity.

    Args:
        channels: image channels C (the high bands have 3C).
        dim: attention width (divisible by ``num_heads``).
        num_heads: attention heads (authors: 8).
        patch_size: patch side for the patch-wise attention.
        dilations: dilations of the three-layer conv.
    """

    @register_to_config
    def __init__(
        self,
        channels: int = 3,
        dim: int = 32,
        num_heads: int = 8,
        patch_size: int = 4,
        dilations: tuple[int, ...] = (1, 2, 1),
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.embed_high = nn.Conv2d(3 * channels, dim, 1)
        self.embed_low = nn.Conv2d(channels, dim, 1)
        self.to_q = DepthwiseSeparableConv(dim, dim)
        self.to_k = DepthwiseSeparableConv(dim, dim)
        self.to_v = DepthwiseSeparableConv(dim, dim)
        self.attn_out = nn.Conv2d(dim, dim, 1)
        self.conv = DilatedResidualBlock(dim, tuple(dilations))
        self.out = nn.Conv2d(dim, 3 * channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def cross_attention(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Patch-wise CA: ``high`` features attend to ``low`` features, both ``[B, dim, h, w]``."""
        p, heads = self.config.patch_size, self.config.num_heads
        h, w = high.shape[-2:]
        pad_h, pad_w = (-h) % p, (-w) % p
        q, k, v = self.to_q(high), self.to_k(low), self.to_v(low)
        if pad_h or pad_w:
            q, k, v = (F.pad(t, (0, pad_w, 0, pad_h), mode="replicate") for t in (q, k, v))
        pattern = "b (n d) (hp p1) (wp p2) -> b n (hp wp) (d p1 p2)"
        q, k, v = (rearrange(t, pattern, n=heads, p1=p, p2=p) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = rearrange(
            out, "b n (hp wp) (d p1 p2) -> b (n d) (hp p1) (wp p2)", hp=(h + pad_h) // p, p1=p, p2=p
        )
        return self.attn_out(out[..., :h, :w])

    def forward(self, low: torch.Tensor, highs: torch.Tensor) -> torch.Tensor:
        """``low [B, C, h', w']`` (resized to the band size), ``highs [B, 3, C, h, w]`` -> refined highs."""
        b, _, c, h, w = highs.shape
        if low.shape[-2:] != (h, w):
            low = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
        x_h = rearrange(highs, "b k c h w -> b (k c) h w")
        feat = self.embed_high(x_h)
        feat = feat + self.cross_attention(self.embed_low(low), feat)
        delta = self.out(self.conv(feat))
        return highs + rearrange(delta, "b (k c) h w -> b k c h w", k=3, c=c)
