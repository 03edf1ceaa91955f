"""A pix2pix-style UNet (4x4 stride-2 encoder, transposed-conv decoder with skips) and :class:`PackedUNet`.

Used by the Combine Module's UNet refinement (:class:`PackedUNet`) and by the regression baseline
(:class:`~.baseline.UNetBaseline`); the output conv is zero-initialised, so both start at zero.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import depth_to_space, group_norm, space_to_depth


class DownBlock(nn.Module):
    """pix2pix encoder step: 4x4 stride-2 conv -> GroupNorm -> LeakyReLU(0.2), then a 3x3 refinement."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 4, 2, 1),
            group_norm(out_channels, groups),
            nn.LeakyReLU(0.2),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            group_norm(out_channels, groups),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpBlock(nn.Module):
    """pix2pix decoder step: 4x4 stride-2 transposed conv -> GroupNorm -> ReLU, concat skip, 3x3 conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1), group_norm(out_channels, groups), nn.ReLU()
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(out_channels + skip_channels, out_channels, 3, 1, 1), group_norm(out_channels, groups), nn.ReLU()
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


def build_pix2pix_unet(module: nn.Module, in_channels: int, out_channels: int, channels: tuple[int, ...],
                       groups: int) -> None:
    """Give ``module`` a pix2pix UNet: ``conv_in``, ``down``/``up`` blocks and a zero-initialised ``conv_out``."""
    module.conv_in = nn.Sequential(nn.Conv2d(in_channels, channels[0], 3, 1, 1), nn.LeakyReLU(0.2))
    module.down = nn.ModuleList([DownBlock(c_in, c_out, groups) for c_in, c_out in zip(channels[:-1], channels[1:])])
    module.up = nn.ModuleList([UpBlock(c_in, c_skip, c_skip, groups)
                               for c_in, c_skip in zip(reversed(channels[1:]), reversed(channels[:-1]))])
    module.conv_out = nn.Conv2d(channels[0], out_channels, 3, 1, 1)
    nn.init.zeros_(module.conv_out.weight)
    nn.init.zeros_(module.conv_out.bias)


def run_pix2pix_unet(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The forward pass of a :func:`build_pix2pix_unet` module (encoder with skips, decoder)."""
    feat = module.conv_in(x)
    skips = []
    for block in module.down:
        skips.append(feat)
        feat = block(feat)
    for block in module.up:
        feat = block(feat, skips.pop())
    return module.conv_out(feat)


class PackedUNet(nn.Module):
    """A pix2pix UNet on the space-to-depth packed image: ``[B, C_in, H, W] -> [B, C_out, H, W]``, zero at init.

    Any ``H, W``: the input is reflect-padded to a multiple of ``downscale * 2**(levels - 1)`` and the
    output cropped back. Used by the Combine Module's UNet refinement.
    """

    def __init__(self, in_channels: int, out_channels: int, downscale: int = 4,
                 block_out_channels: tuple[int, ...] = (32, 64), norm_num_groups: int = 8) -> None:
        super().__init__()
        self.downscale = downscale
        self.multiple = downscale * 2 ** (len(block_out_channels) - 1)
        build_pix2pix_unet(self, in_channels * downscale**2, out_channels * downscale**2,
                           tuple(block_out_channels), norm_num_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        out = run_pix2pix_unet(self, space_to_depth(x, self.downscale))
        return depth_to_space(out, self.downscale)[..., :h, :w]
