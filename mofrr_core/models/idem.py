"""IDEM (eqs. 3-5): degree-aware pixel-wise condition built with multi-scale channel attention."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config
from einops import repeat
from torch import nn

from .blocks import DepthwiseSeparableConv
from .loading import MoFRRModel


class MCA(MoFRRModel, ConfigMixin):
    """Multi-scale channel attention (iAFF/AFF): ``sigmoid(local(x) + global(x))``, same shape as ``x``.

    local: 1x1 conv -> ReLU -> 1x1 conv (pixel-wise); global: average pool -> the same MLP (per image).
    """

    @register_to_config
    def __init__(self, channels: int = 3, hidden_channels: int = 16) -> None:
        super().__init__()

        def mlp() -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(channels, hidden_channels, 1), nn.ReLU(), nn.Conv2d(hidden_channels, channels, 1)
            )

        self.local_branch = mlp()
        self.global_branch = nn.Sequential(nn.AdaptiveAvgPool2d(1), mlp())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.local_branch(x) + self.global_branch(x))


class IDEM(MoFRRModel, ConfigMixin):
    """Iterative Distortion Evaluation Module (the paper's IDEM, eqs. 3-5).

    The degree ``z`` (1..5) and the timestep ``t`` are broadcast to constant maps (normalised to
    ``[-1, 1]``) and mixed by a depthwise-separable conv into a ``C``-channel degree embedding ``z'``
    (authors' code), then::

        F = MCA1(z' + x_LL) * x_LL + (1 - MCA1(z' + x_LL)) * z'      (eq. 3)
        R = MCA2(F + y_t) * y_t + (1 - MCA2(F + y_t)) * F            (eq. 4)
        condition = concat(x_LL, R)                                  (eq. 5)

    Args:
        channels: channels of the low band (3).
        hidden_channels: hidden width of the MCA branches.
        num_degrees: highest degree (maps ``1..num_degrees`` to ``[-1, 1]``).
        num_train_timesteps: T (maps ``0..T-1`` to ``[-1, 1]``).
        embed_timestep: also feed the timestep map (authors' code); ``False`` = paper's eq. 3 on z only.
    """

    @register_to_config
    def __init__(
        self,
        channels: int = 3,
        hidden_channels: int = 16,
        num_degrees: int = 5,
        num_train_timesteps: int = 200,
        embed_timestep: bool = True,
    ) -> None:
        super().__init__()
        maps = 2 if embed_timestep else 1
        self.embed = DepthwiseSeparableConv(maps * channels, channels, padding_mode="replicate")
        self.mca_degree = MCA(channels, hidden_channels)
        self.mca_sample = MCA(channels, hidden_channels)

    def degree_embedding(self, z: torch.Tensor, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        cfg = self.config
        z_map = (z.float() - 1) / max(cfg.num_degrees - 1, 1) * 2 - 1
        maps = [repeat(z_map, "b -> b c h w", c=cfg.channels, h=h, w=w)]
        if cfg.embed_timestep:
            t_map = t.float() / max(cfg.num_train_timesteps - 1, 1) * 2 - 1
            maps.append(repeat(t_map, "b -> b c h w", c=cfg.channels, h=h, w=w))
        weight = self.embed.pointwise.weight
        return self.embed(torch.cat(maps, dim=1).to(weight.dtype))

    def forward(
        self, x_ll: torch.Tensor, y_t: torch.Tensor, z: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(condition [B, 2C, h, w], R [B, C, h, w])``."""
        zf = self.degree_embedding(z, t, *x_ll.shape[-2:])
        a = self.mca_degree(zf + x_ll)
        fused = a * x_ll + (1 - a) * zf
        b = self.mca_sample(fused + y_t)
        distortion = b * y_t + (1 - b) * fused
        return torch.cat([x_ll, distortion], dim=1), distortion
