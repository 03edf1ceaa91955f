"""Shared expert: plain conditional residual DDIM on the full image (no wavelets)."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config

from . import losses
from .blocks import depth_to_space, space_to_depth
from .diffusion import ResidualDDIM, make_scheduler
from .loading import MoFRRModel
from .outputs import ExpertOutput
from .unet import build_unet


class SharedExpert(MoFRRModel, ConfigMixin):
    """Always-on expert capturing global retouching traces (trained on multi-operation images).

    For CPU cost the image is space-to-depth'ed (``pixel_unshuffle`` by ``downscale``, via einops)
    into ``3 * downscale**2`` channels; the UNet sees ``concat[x, r_t]`` in that layout and predicts
    the clean residual ``y - x`` (same residual DDIM as WaveFRR, see :mod:`.diffusion`); zero-init
    output conv -> identity at init.

    Args:
        in_channels: image channels.
        downscale: space-to-depth factor (1 = full resolution).
        unet_channels, layers_per_block, norm_num_groups, unet_attention: the ``UNet2DModel``.
        num_train_timesteps, beta_start, beta_end, timestep_spacing, num_inference_steps: DDIM.
        train_sampling_steps: DDIM steps of the differentiable pass for L_space in ``compute_loss``.
        min_snr_gamma: optional Min-SNR weighting of L_simple.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        downscale: int = 4,
        unet_channels: tuple[int, ...] = (64, 64, 96),
        layers_per_block: int = 1,
        norm_num_groups: int = 8,
        unet_attention: bool = False,
        num_train_timesteps: int = 200,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        timestep_spacing: str = "leading",
        num_inference_steps: int = 10,
        train_sampling_steps: int = 2,
        min_snr_gamma: float | None = None,
    ) -> None:
        super().__init__()
        packed = in_channels * downscale**2
        self.unet = build_unet(
            2 * packed, packed, tuple(unet_channels), layers_per_block, norm_num_groups, unet_attention
        )
        self.ddim = ResidualDDIM(
            make_scheduler(num_train_timesteps, beta_start, beta_end, timestep_spacing=timestep_spacing)
        )

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        return space_to_depth(x, self.config.downscale)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(x, self.config.downscale)

    def denoise(self, xp: torch.Tensor, r_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Packed input and noisy residual -> predicted clean residual (packed)."""
        return self.unet(torch.cat([xp, r_t], dim=1), t).sample

    def sample(
        self,
        x: torch.Tensor,
        num_inference_steps: int,
        generator: torch.Generator | None,
        batch_invariant: bool = False,
    ) -> torch.Tensor:
        xp = self.pack(x)
        r0 = self.ddim.sample(
            lambda r, t: self.denoise(xp, r, t),
            tuple(xp.shape),
            num_inference_steps,
            generator,
            x.device,
            x.dtype,
            batch_invariant=batch_invariant,
        )
        return self.unpack(xp + r0)

    @torch.no_grad()
    def restore(
        self,
        x: torch.Tensor,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ExpertOutput:
        """Restore ``x [B, 3, H, W]`` (``H, W`` multiples of ``downscale``); ``degree`` is ``None``."""
        return ExpertOutput(
            image=self.sample(
                x, num_inference_steps or self.config.num_inference_steps, generator, batch_invariant=True
            ),
            degree=None,
        )

    def training_outputs(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, Any]:
        xp, yp = self.pack(x), self.pack(y)
        t, noise, r_t = self.ddim.noise_residual(yp - xp, generator)
        eps_pred = self.ddim.eps_from_r0(r_t, self.denoise(xp, r_t, t), t)
        image = self.sample(x, self.config.train_sampling_steps, generator)
        return {"t": t, "eps_pred": eps_pred, "eps": noise, "image": image}

    def compute_loss(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """L_simple + L_hyb on the image of a short differentiable DDIM pass."""
        out = self.training_outputs(x, y, generator)
        weights = self.ddim.min_snr_weights(out["t"], self.config.min_snr_gamma, x)
        l_simple = losses.simple_loss(out["eps_pred"], out["eps"], weights)
        l_space = losses.hybrid_loss(out["image"], y)
        loss = l_simple + l_space
        return loss, {"loss": loss.item(), "loss_simple": l_simple.item(), "loss_space": l_space.item()}
