"""UNetBaseline: a plain UNet regression baseline (pix2pix-generator style), trained with L1 + SSIM."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config

from . import losses
from .blocks import depth_to_space, space_to_depth
from .loading import MoFRRModel
from .outputs import ExpertOutput
from .pix2pix import build_pix2pix_unet, run_pix2pix_unet


class UNetBaseline(MoFRRModel, ConfigMixin):
    """Plain UNet regression ``Y = X + UNet(X)`` (the "Pix2pix" row of the paper's tables, no GAN).

    The image is space-to-depth'ed (``pixel_unshuffle`` by ``downscale`` via einops) so every heavy
    layer runs at ``1 / downscale`` resolution; a pix2pix-style encoder (stride-2 4x4 convs) and
    decoder (transposed convs with skip connections) predict the packed residual. The output conv
    is zero-initialised, so a fresh model is exactly the identity. Trained like an expert:
    ``compute_loss(x, y)`` is L_hyb = L1 + (1 - SSIM) on the restored image.

    Args:
        in_channels: image channels.
        downscale: space-to-depth factor (heavy layers at ``H / downscale``).
        block_out_channels: width of the stem and of every encoder level (each level halves the size).
        norm_num_groups: maximum GroupNorm groups (batch-size free normalisation).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        downscale: int = 4,
        block_out_channels: tuple[int, ...] = (64, 96, 128),
        norm_num_groups: int = 8,
    ) -> None:
        super().__init__()
        if downscale < 1:
            raise ValueError(f"downscale must be >= 1, got {downscale}")
        if len(block_out_channels) < 1:
            raise ValueError("block_out_channels needs at least one width")
        build_pix2pix_unet(self, in_channels * downscale**2, in_channels * downscale**2,
                           tuple(block_out_channels), norm_num_groups)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return self.config.downscale * 2 ** (len(self.config.block_out_channels) - 1)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        return space_to_depth(x, self.config.downscale)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(x, self.config.downscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 3, H, W]`` in ``[-1, 1]`` -> restored image (not clamped)."""
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"UNetBaseline: input {h}x{w} must be a multiple of {m} (downscale x 2**levels)")
        return x + self.unpack(run_pix2pix_unet(self, self.pack(x)))

    @torch.no_grad()
    def restore(
        self,
        x: torch.Tensor,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ExpertOutput:
        """Restore ``x``; ``num_inference_steps`` and ``generator`` are ignored (one deterministic pass)."""
        return ExpertOutput(image=self(x).clamp(-1, 1), degree=None)

    def compute_loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        degree: torch.Tensor | None = None,
        psnr_weight: float = 0.0,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """L_hyb = L1 + (1 - SSIM) between ``self(x)`` and ``y``, plus ``psnr_weight`` x
        :func:`losses.log_mse_loss` if given (``generator``/``degree`` unused)."""
        restored = self(x)
        l1 = torch.nn.functional.l1_loss(restored, y)
        ssim = losses.ssim(restored, y)
        logs = {"loss_l1": l1.item(), "ssim": ssim.item()}
        loss = losses.add_log_mse(losses.hybrid_loss(restored, y), restored, y, psnr_weight, logs)
        return loss, {"loss": loss.item(), **logs}
