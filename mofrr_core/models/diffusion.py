"""Residual conditional DDIM shared by WaveFRR and the shared expert.

Formulation (identity at init, CPU viable): the diffusion variable is the *residual*
``r0 = y - x`` (target minus input, in the branch's normalised units) and the denoiser network
predicts the clean residual ``r0_hat``; its output is converted to a noise prediction
``eps_theta = (r_t - sqrt(abar_t) r0_hat) / sqrt(1 - abar_t)``, which is what ``DDIMScheduler``
(``prediction_type="epsilon"``, eta 0) consumes and what L_simple compares to the true noise.
With the network's output conv zero-initialised, ``r0_hat = 0`` and the DDIM trajectory collapses
onto ``r = 0`` at the last step (``set_alpha_to_one``), so an untrained expert returns its input
exactly, whatever the starting noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler


def make_scheduler(
    num_train_timesteps: int = 200,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    beta_schedule: str = "linear",
    timestep_spacing: str = "leading",
) -> DDIMScheduler:
    """The DDIM scheduler of the method (linear betas, no clipping of the residual)."""
    return DDIMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_start=beta_start,
        beta_end=beta_end,
        beta_schedule=beta_schedule,
        clip_sample=False,
        set_alpha_to_one=True,
        prediction_type="epsilon",
        timestep_spacing=timestep_spacing,
    )


class ResidualDDIM:
    """Forward noising, eps <-> r0 conversion and DDIM sampling with gradients (eta = 0)."""

    def __init__(self, scheduler: DDIMScheduler) -> None:
        self.scheduler = scheduler
        self.num_train_timesteps = scheduler.config.num_train_timesteps

    def alpha_bar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        abar = self.scheduler.alphas_cumprod.to(like.device, like.dtype)[t.long().cpu()].to(like.device)
        return abar.view(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, r0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.alpha_bar(t, r0)
        return abar.sqrt() * r0 + (1 - abar).sqrt() * noise

    def eps_from_r0(self, r_t: torch.Tensor, r0_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.alpha_bar(t, r_t)
        return (r_t - abar.sqrt() * r0_hat) / (1 - abar).sqrt()

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        abar = self.scheduler.alphas_cumprod[t.long().cpu()]
        return abar / (1 - abar)

    def sample_timesteps(
        self, batch: int, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        return torch.randint(
            0,
            self.num_train_timesteps,
            (batch,),
            generator=generator,
            device=generator.device if generator is not None else "cpu",
        ).to(device)

    def noise_residual(
        self, r0: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The forward process of one training step: ``(t [B], noise, r_t)`` for clean residuals ``r0``.

        The timesteps, then the noise, are drawn from ``generator`` (on its own device).
        """
        t = self.sample_timesteps(r0.shape[0], generator, r0.device)
        gen_device = generator.device if generator is not None else "cpu"
        noise = torch.randn(r0.shape, generator=generator, device=gen_device, dtype=r0.dtype).to(r0.device)
        return t, noise, self.add_noise(r0, noise, t)

    def min_snr_weights(self, t: torch.Tensor, gamma: float | None, like: torch.Tensor) -> torch.Tensor | None:
        """Min-SNR weights ``min(SNR_t, gamma) / SNR_t`` of L_simple per sample (``None`` without ``gamma``)."""
        if gamma is None:
            return None
        snr = self.snr(t).to(like.device, like.dtype)
        return snr.clamp(max=gamma) / snr

    def sample(
        self,
        denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        shape: tuple[int, ...],
        num_inference_steps: int,
        generator: torch.Generator | None,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        batch_invariant: bool = False,
    ) -> torch.Tensor:
        """Run DDIM from pure noise. ``denoise(r_t, t[B]) -> r0_hat``; returns the final residual.

        ``batch_invariant``: draw one starting noise and share it across the batch, so an image's
        result does not depend on its batch companions (used at inference).
        """
        sched = self.scheduler
        sched.set_timesteps(num_inference_steps, device="cpu")
        gen_device = generator.device if generator is not None else "cpu"
        noise_shape = (1, *shape[1:]) if batch_invariant else shape
        r = torch.randn(noise_shape, generator=generator, device=gen_device, dtype=dtype).to(device)
        r = r.expand(shape).contiguous()
        r = r * sched.init_noise_sigma
        for t in sched.timesteps:
            t_batch = torch.full((shape[0],), int(t), device=device, dtype=torch.long)
            eps = self.eps_from_r0(r, denoise(r, t_batch), t_batch)
            r = sched.step(eps, int(t), r, eta=0.0).prev_sample
        return r
