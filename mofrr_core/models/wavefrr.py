"""WaveFRR: one specialised expert (DE -> [FlowWarp] -> DWT -> conditional residual DDIM on LL -> HFCAM -> IDWT)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config

from . import losses
from .degree import DegreeEstimator, degree_map
from .diffusion import ResidualDDIM, make_scheduler
from .hfcam import HFCAM
from .idem import IDEM
from .loading import MoFRRModel
from .outputs import ExpertOutput
from .unet import build_unet
from .warp import FlowWarp
from .wavelet import dwt, idwt


class WaveFRR(MoFRRModel, ConfigMixin):
    """Wavelet-based restoration expert for one retouching type.

    The low band ``LL`` (level ``levels``) is divided by ``2**levels`` so it lives in the image's
    ``[-1, 1]`` range. The conditional DDIM diffuses the residual ``r = y_LL - x_LL`` (see
    :mod:`.diffusion`): the UNet sees ``concat[x_LL, r_t, degree map, R]`` (authors' code) and
    predicts the clean residual, turned into a noise prediction for ``DDIMScheduler`` and L_simple.
    Restored ``y_LL = x_LL + r_0``. With the UNet's and HFCAMs' output convs zero-initialised a
    fresh expert is the identity.

    With ``warp`` (not in the paper; for the geometric types, face lifting) a :class:`~.warp.FlowWarp`
    first resamples the input along a learnt smooth displacement field, trained by
    ``lambda_warp x L_warp(warped input, Y)``; the wavelet diffusion then restores the warped input.
    The field starts at zero, so a trained expert fine-tuned with ``warp`` starts where it was.

    Args:
        in_channels: image channels.
        levels: DWT levels (authors' code 2, paper 1); diffusion runs at ``H / 2**levels``.
        degree_config: kwargs of the contained :class:`DegreeEstimator` (``.degree_estimator``).
        unet_channels, layers_per_block, norm_num_groups, unet_attention: the ``UNet2DModel``.
        idem_hidden: MCA hidden width; embed_timestep: IDEM also embeds t (authors' code).
        hfcam_dim, hfcam_heads, hfcam_patch: HFCAM (one per level).
        hfcam_condition: ``"resize"`` (authors: the denoised LL resized to each level) or
            ``"reconstruct"`` (level 1 is conditioned on IDWT of the refined coarser level).
        num_train_timesteps, beta_start, beta_end, timestep_spacing: DDIM schedule (linear betas).
        num_inference_steps: default DDIM steps at inference.
        train_sampling_steps: DDIM steps of the differentiable sampling pass inside ``compute_loss``.
        train_degree: also train the degree estimator with L_class (needs ``degree`` labels).
        lambda_high_l2, lambda_tv: L_high weights (0.1, 0.01).
        min_snr_gamma: optional Min-SNR weighting of L_simple (``None``: plain L_simple as the paper).
        warp, warp_channels, warp_downscale, warp_max_shift, lambda_warp: the optional FlowWarp and
            the weight of its loss.
        warp_loss: the FlowWarp's loss: ``"hybrid"`` (L_hyb), ``"mse"`` or ``"log_mse"``
            (:func:`~.losses.log_mse_loss`). Where the input alone cannot tell whether the face was
            lifted, L1 (in L_hyb) learns the likelier field in full, the squared error its expected value
            (a field shrunk by the doubt), and log-MSE, the loss of per-image PSNR, shrinks it further.
        use_idem, use_degree, use_hfcam, use_warp: the ablations of the paper's Table 4 (and of the
            FlowWarp); all ``True`` by default. Off, IDEM's distortion map ``R`` is zero, the degree is the
            constant :attr:`CONSTANT_DEGREE` instead of the estimator's, the high bands pass unrefined, and
            the FlowWarp is skipped. They change no weight: set them on a trained expert
            (``expert.with_config(use_idem=False)``) or train with them (``model_overrides``).
    """

    # --init-weights may come from an expert without the warp (its FlowWarp then starts at the identity)
    FINE_TUNE_KEYS = ("warp", "warp_channels", "warp_downscale", "warp_max_shift", "lambda_warp", "warp_loss")
    WARP_LOSSES = {"hybrid": losses.hybrid_loss, "mse": F.mse_loss, "log_mse": losses.log_mse_loss}
    CONSTANT_DEGREE = 3.0  # the degree without the estimator (``use_degree=False``): the middle of 1..5

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        levels: int = 2,
        degree_config: dict[str, Any] | None = None,
        unet_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        norm_num_groups: int = 8,
        unet_attention: bool = False,
        idem_hidden: int = 16,
        embed_timestep: bool = True,
        hfcam_dim: int = 32,
        hfcam_heads: int = 8,
        hfcam_patch: int = 4,
        hfcam_condition: str = "resize",
        num_train_timesteps: int = 200,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        timestep_spacing: str = "leading",
        num_inference_steps: int = 10,
        train_sampling_steps: int = 2,
        train_degree: bool = False,
        lambda_high_l2: float = 0.1,
        lambda_tv: float = 0.01,
        min_snr_gamma: float | None = None,
        warp: bool = False,
        warp_channels: tuple[int, ...] = (16, 32, 64, 64),
        warp_downscale: int = 2,
        warp_max_shift: float = 4.0,
        lambda_warp: float = 1.0,
        warp_loss: str = "hybrid",
        use_idem: bool = True,
        use_degree: bool = True,
        use_hfcam: bool = True,
        use_warp: bool = True,
    ) -> None:
        super().__init__()
        if warp_loss not in self.WARP_LOSSES:
            raise ValueError(f"warp_loss must be one of {', '.join(self.WARP_LOSSES)}, got {warp_loss!r}")
        if levels not in (1, 2):
            raise ValueError(f"levels must be 1 or 2, got {levels}")
        if hfcam_condition not in ("resize", "reconstruct"):
            raise ValueError(f"hfcam_condition must be 'resize' or 'reconstruct', got {hfcam_condition!r}")
        self.degree_estimator = DegreeEstimator(in_channels=in_channels, **(degree_config or {}))
        self.degree_estimator.requires_grad_(train_degree)
        self.idem = IDEM(
            in_channels,
            idem_hidden,
            self.degree_estimator.config.num_classes,
            num_train_timesteps,
            embed_timestep,
        )
        self.unet = build_unet(
            3 * in_channels + 1,
            in_channels,
            tuple(unet_channels),
            layers_per_block,
            norm_num_groups,
            unet_attention,
        )
        self.hfcams = torch.nn.ModuleList(
            [HFCAM(in_channels, hfcam_dim, hfcam_heads, hfcam_patch) for _ in range(levels)]
        )
        self.ddim = ResidualDDIM(
            make_scheduler(num_train_timesteps, beta_start, beta_end, timestep_spacing=timestep_spacing)
        )
        self.flow_warp = (
            FlowWarp(in_channels, tuple(warp_channels), warp_downscale, norm_num_groups,
                     self.degree_estimator.config.num_classes, warp_max_shift)
            if warp else None
        )

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state dict of an expert differing from this one only in :attr:`FINE_TUNE_KEYS`, made to fit it.

        An expert trained without ``warp`` gains a FlowWarp at its (identity) initialisation.
        """
        ours = self.state_dict()
        extra = sorted(set(state) - set(ours))
        if extra:
            raise ValueError(f"cannot drop the trained weights {', '.join(extra[:3])}, ... of an expert trained "
                             "with warp: true")
        return {**ours, **state}

    # -- pieces -----------------------------------------------------------------------------------
    def warp_loss(self, warped: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """L_warp between the warped input and the target, as ``config.warp_loss`` names it."""
        return self.WARP_LOSSES[self.config.warp_loss](warped, y)

    def unwarp(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The input resampled along the FlowWarp's field (``x`` itself without ``warp``)."""
        return x if self.flow_warp is None or not self.config.use_warp else self.flow_warp(x, z)[0]

    def decompose(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """DWT with the low band normalised to the image range: ``(LL / 2**levels, highs)``."""
        ll, highs = dwt(x, self.config.levels)
        return ll / 2**self.config.levels, highs

    def reconstruct(self, ll: torch.Tensor, highs: list[torch.Tensor]) -> torch.Tensor:
        return idwt(ll * 2**self.config.levels, highs)

    def estimate_degree(self, x: torch.Tensor) -> torch.Tensor:
        """Expected degree ``[B]`` in 1..5 (no gradient unless the DE is trainable); constant without ``use_degree``."""
        if not self.config.use_degree:
            return torch.full((x.shape[0],), self.CONSTANT_DEGREE, device=x.device, dtype=x.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.train_degree):
            return self.degree_estimator.expected_degree(x)

    def denoise(
        self, x_ll: torch.Tensor, r_t: torch.Tensor, z: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One denoiser call: ``(r0_hat, R)`` for the noisy residual ``r_t`` at timesteps ``t [B]``."""
        distortion = self.idem(x_ll, r_t, z, t)[1] if self.config.use_idem else torch.zeros_like(x_ll)
        z_map = degree_map(z, self.degree_estimator.config.num_classes, x_ll)
        r0_hat = self.unet(torch.cat([x_ll, r_t, z_map, distortion], dim=1), t).sample
        return r0_hat, distortion

    def sample_low(
        self,
        x_ll: torch.Tensor,
        z: torch.Tensor,
        num_inference_steps: int,
        generator: torch.Generator | None,
        batch_invariant: bool = False,
    ) -> torch.Tensor:
        """DDIM sampling of the restored (normalised) low band ``y_LL = x_LL + r_0``."""
        r0 = self.ddim.sample(
            lambda r, t: self.denoise(x_ll, r, z, t)[0],
            tuple(x_ll.shape),
            num_inference_steps,
            generator,
            x_ll.device,
            x_ll.dtype,
            batch_invariant=batch_invariant,
        )
        return x_ll + r0

    def refine_highs(self, y_ll: torch.Tensor, highs: list[torch.Tensor]) -> list[torch.Tensor]:
        """HFCAM per level (coarsest first internally); returns the refined highs, finest first (the highs
        themselves without ``use_hfcam``)."""
        if not self.config.use_hfcam:
            return list(highs)
        refined: list[torch.Tensor] = list(highs)
        low, low_level = y_ll * 2**self.config.levels, self.config.levels  # raw LL and its level
        for level in reversed(range(self.config.levels)):
            refined[level] = self.hfcams[level](low / 2**low_level, highs[level])
            if self.config.hfcam_condition == "reconstruct":
                low, low_level = idwt(low, [refined[level]]), low_level - 1
        return refined

    # -- inference --------------------------------------------------------------------------------
    @torch.no_grad()
    def restore(
        self,
        x: torch.Tensor,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ExpertOutput:
        """Restore ``x [B, 3, H, W]`` (``H, W`` multiples of ``2**levels``); returns image and degree."""
        steps = num_inference_steps or self.config.num_inference_steps
        z = self.estimate_degree(x)
        x_ll, highs = self.decompose(self.unwarp(x, z))
        y_ll = self.sample_low(x_ll, z, steps, generator, batch_invariant=True)
        image = self.reconstruct(y_ll, self.refine_highs(y_ll, highs))
        return ExpertOutput(image=image, degree=z)

    # -- training ---------------------------------------------------------------------------------
    def training_outputs(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, Any]:
        """Everything the losses need: eps pred/target, R and its target, refined/target highs, image."""
        z = self.estimate_degree(x)
        warped = self.unwarp(x, z)
        x_ll, x_highs = self.decompose(warped.detach())  # the diffusion restores what the warp left
        y_ll, y_highs = self.decompose(y)
        t, noise, r_t = self.ddim.noise_residual(y_ll - x_ll, generator)
        r0_hat, distortion = self.denoise(x_ll, r_t, z, t)
        eps_pred = self.ddim.eps_from_r0(r_t, r0_hat, t)
        # short differentiable DDIM pass: the spatial loss reaches IDEM, UNet and HFCAM
        y_ll_hat = self.sample_low(x_ll, z, self.config.train_sampling_steps, generator)
        highs_hat = self.refine_highs(y_ll_hat, x_highs)
        return {
            "degree": z,
            "t": t,
            "eps_pred": eps_pred,
            "eps": noise,
            "distortion": distortion,
            "x_ll": x_ll,
            "y_ll": y_ll,
            "y_ll_hat": y_ll_hat,
            "highs_hat": highs_hat,
            "y_highs": y_highs,
            "image": self.reconstruct(y_ll_hat, highs_hat),
            "warped": warped,
        }

    def compute_loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        degree: torch.Tensor | None = None,
        harm_weight: float = 0.0,
        harm_only: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """L = L_freq (L_IDEM + L_simple + L_high) + L_space (L_hyb on the image) (+ L_class, + L_warp), plus
        ``harm_weight`` x :func:`losses.harm_loss` of the image if given (over the ``harm_only`` images)."""
        cfg = self.config
        out = self.training_outputs(x, y, generator)
        weights = self.ddim.min_snr_weights(out["t"], cfg.min_snr_gamma, x)
        l_idem = losses.idem_loss(out["distortion"], out["y_ll"], out["x_ll"])
        l_simple = losses.simple_loss(out["eps_pred"], out["eps"], weights)
        l_high = losses.high_loss(out["highs_hat"], out["y_highs"], cfg.lambda_high_l2, cfg.lambda_tv)
        l_space = losses.hybrid_loss(out["image"], y)
        l_class = None
        if cfg.train_degree and degree is not None:
            l_class, _ = self.degree_estimator.compute_loss(x, degree)
        l_warp = self.warp_loss(out["warped"], y) if self.flow_warp is not None and cfg.use_warp else None
        loss = losses.wavefrr_total(l_idem, l_simple, l_high, l_space, l_class)
        if l_warp is not None:
            loss = loss + cfg.lambda_warp * l_warp
        logs = {
            "loss_idem": l_idem.item(),
            "loss_simple": l_simple.item(),
            "loss_high": l_high.item(),
            "loss_space": l_space.item(),
        }
        if l_class is not None:
            logs["loss_class"] = l_class.item()
        if l_warp is not None:
            logs["loss_warp"] = l_warp.item()
        loss = losses.add_harm(loss, out["image"], x, y, harm_weight, logs, only=harm_only)
        return loss, {"loss": loss.item(), **logs}
