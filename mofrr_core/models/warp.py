"""FlowWarp: a smooth learnt displacement field that undoes a geometric retouching (not in the paper).

Face lifting and eye enlarging move pixels rather than change their values. A residual denoiser on
the low band must redraw a moved edge from nothing, and at 128 px the jaw of a lifted face moves
about one pixel of the 2-level low band, most of it in the high bands. FlowWarp instead predicts a
displacement field (``[B, 2, H, W]``, in pixels of the input) from the image and its estimated degree
and resamples the image along it, so the texture travels with the edge. The field is predicted at
``1 / downscale`` of the input and upsampled bilinearly, so it is smooth by construction. Its output
conv is zero-initialised: a fresh FlowWarp is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .degree import degree_map
from .unet import build_unet


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Resample ``image [B, C, H, W]`` at ``p + flow(p)``: ``out(p) = image(p + flow(p))``.

    ``flow [B, 2, H, W]`` holds ``(dx, dy)`` in pixels; borders are replicated.
    """
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=image.device, dtype=image.dtype),
        torch.arange(w, device=image.device, dtype=image.dtype),
        indexing="ij",
    )
    x = xs + flow[:, 0]
    y = ys + flow[:, 1]
    grid = torch.stack([(2 * x + 1) / w - 1, (2 * y + 1) / h - 1], dim=-1)  # align_corners=False
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


class FlowWarp(nn.Module):
    """Predicts a displacement field from ``(image, degree)`` and warps the image with it.

    Args:
        in_channels: image channels.
        channels: ``UNet2DModel`` block widths of the field predictor (runs at ``H / downscale``).
        downscale: resolution divisor of the predictor's input and output.
        norm_num_groups: GroupNorm groups of the predictor.
        num_classes: degree classes (the degree map is scaled to ``[-1, 1]`` as in WaveFRR).
        max_shift: the field's scale in pixels of the input at ``H = 128`` (the raw output is
            multiplied by ``max_shift * H / 128``, so one unit of output is the same fraction of the face
            at every resolution).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: tuple[int, ...] = (16, 32, 64, 64),
        downscale: int = 2,
        norm_num_groups: int = 8,
        num_classes: int = 5,
        max_shift: float = 4.0,
    ) -> None:
        super().__init__()
        self.downscale = downscale
        self.num_classes = num_classes
        self.max_shift = max_shift
        self.net = build_unet(in_channels + 1, 2, tuple(channels), 1, norm_num_groups, False)

    def field(self, image: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """Displacement ``[B, 2, H, W]`` in pixels for ``image`` and expected ``degree [B]`` (1..num_classes)."""
        b, _, h, w = image.shape
        small = F.avg_pool2d(image, self.downscale) if self.downscale > 1 else image
        t = torch.zeros(b, device=image.device, dtype=torch.long)
        raw = self.net(torch.cat([small, degree_map(degree, self.num_classes, small)], dim=1), t).sample
        raw = F.interpolate(raw, size=(h, w), mode="bilinear", align_corners=False)
        return raw * (self.max_shift * h / 128)

    def forward(self, image: torch.Tensor, degree: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(warped image, field)``."""
        flow = self.field(image, degree)
        return warp(image, flow), flow

