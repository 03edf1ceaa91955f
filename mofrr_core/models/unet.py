"""Helper to build the diffusers ``UNet2DModel`` denoisers with a zero-initialised output conv."""

from __future__ import annotations

from diffusers import UNet2DModel
from torch import nn


def build_unet(
    in_channels: int,
    out_channels: int,
    block_out_channels: tuple[int, ...],
    layers_per_block: int,
    norm_num_groups: int,
    attention: bool,
    attention_head_dim: int | None = 8,
) -> UNet2DModel:
    """Plain conv UNet (``DownBlock2D``/``UpBlock2D``; mid-block attention if ``attention``).

    The output conv is zero-initialised: the denoiser predicts a zero residual at init.
    """
    n = len(block_out_channels)
    unet = UNet2DModel(
        in_channels=in_channels,
        out_channels=out_channels,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        norm_num_groups=norm_num_groups,
        add_attention=attention,
        attention_head_dim=attention_head_dim,
    )
    nn.init.zeros_(unet.conv_out.weight)
    nn.init.zeros_(unet.conv_out.bias)
    return unet
