"""Degree Estimator DE_M: a ResNet-style 5-class classifier of the retouching degree (1..5)."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config
from einops import repeat
from torch import nn

from .blocks import ResNetEncoder
from .loading import MoFRRModel
from .losses import class_loss


def degree_map(z: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """Expected degrees ``z [B]`` (1..num_classes) as a ``[B, 1, H, W]`` map in ``[-1, 1]`` shaped like ``like``."""
    scaled = (z.float() - 1) / (num_classes - 1) * 2 - 1
    return repeat(scaled, "b -> b 1 h w", h=like.shape[-2], w=like.shape[-1]).to(like.dtype)


class DegreeEstimator(MoFRRModel, ConfigMixin):
    """ResNet-style degree classifier (paper: ResNet50; here depth and width are configurable).

    Args:
        in_channels: image channels.
        base_channels: width of the first stage (doubles every stage).
        stage_blocks: basic blocks per stage (each stage halves the resolution).
        num_classes: number of degree classes (5: degree 1..5).
        input_size: resize inputs to this square size first (``None``: keep the input size).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 16,
        stage_blocks: tuple[int, ...] = (1, 1, 1, 1),
        num_classes: int = 5,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_channels, base_channels, tuple(stage_blocks), input_size)
        self.head = nn.Linear(self.encoder.out_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 3, H, W]`` in ``[-1, 1]`` -> logits ``[B, num_classes]`` (class i = degree i + 1)."""
        return self.head(self.encoder(x))

    def expected_degree(self, x: torch.Tensor) -> torch.Tensor:
        """Expected degree ``sum_i p_i * i`` in ``[1, num_classes]``, shape ``[B]``."""
        probs = self(x).softmax(dim=-1)
        degrees = torch.arange(1, probs.shape[-1] + 1, device=probs.device, dtype=probs.dtype)
        return probs @ degrees

    def compute_loss(self, x: torch.Tensor, degree: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross entropy (L_class) against ``degree [B]`` long in ``1..5``."""
        logits = self(x)
        loss = class_loss(logits, degree.long() - 1)
        accuracy = (logits.argmax(-1) == degree.long() - 1).float().mean()
        return loss, {"loss_class": loss.item(), "accuracy": accuracy.item()}
