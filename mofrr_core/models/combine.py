"""Combine Module (eq. 2): fuses X, Y_se and any number of active Y_M, permutation-invariant."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config
from einops import rearrange, repeat
from torch import nn

from . import losses
from .loading import MoFRRModel
from .pix2pix import PackedUNet

ROLES = 3  # input X, shared expert, specialised expert


class CombineModule(MoFRRModel, ConfigMixin):
    """Set-based fusion of candidate images ``{X, Y_se, active Y_M}``.

    Every candidate ``c`` goes through the same small conv encoder on ``[c, X, c - X, role one-hot]``
    (computed at ``1 / score_stride`` resolution) giving a score map; a masked softmax over the
    candidates gives per-pixel weights and ``fused = sum_k w_k c_k``. Output::

        Y = X + gate * (fused - X) + refine([X, fused])

    with ``gate`` a learnable scalar initialised to 0 and ``refine`` a light conv net with a
    zero-initialised last conv, so a fresh module returns exactly ``X``. With ``refine_unet`` the
    refinement is a pix2pix UNet on ``[X, fused]`` packed by ``refine_downscale`` (the paper's
    Combine Module is a UNet): it can also correct what no expert removed. Shared weights + a softmax
    over a set make it invariant to the order and the number ``K`` of experts (``K`` may be 0):
    adding an expert retrains nothing (optionally fine-tune on all images with the experts frozen).

    Two options, not in the paper:
    - ``fusion="sum"`` adds every candidate's change with its own sigmoid weight,
      ``fused = X + sum_k w_k (c_k - X)``. On an image with several retouchings each expert undoes its
      own; the softmax makes those changes compete at every pixel.
    - ``confidence_input`` lets the encoder read a constant map of each candidate's confidence: the
      router probability of a specialised expert's gate (1 for ``X`` and ``Y_se``), so an expert the
      router was unsure about can be trusted less.

    Args:
        in_channels: image channels.
        hidden_channels: encoder width.
        encoder_layers: 3x3 conv layers of the encoder.
        score_stride: the encoder works at this down-sampling factor.
        refine_channels: width of the refinement net (0 disables it).
        gate_init: initial value of the mixing gate (0 = identity at init).
        refine_unet: widths of a UNet refinement (e.g. ``(64, 96, 128)``) instead of the light conv net.
        refine_downscale: space-to-depth factor of the UNet refinement.
        confidence_input: the encoder reads each candidate's router confidence (one more input channel).
        fusion: ``"softmax"`` (weights over the candidates sum to 1 at every pixel) or ``"sum"`` (each
            candidate's change ``c - X`` is added with its own sigmoid weight, so the changes of several
            experts add up; not in the paper).
        use_refinement: add the refinement net's output (default). Off (ablation ``no-refine``), the output
            is the gated fusion ``X + gate * (fused - X)``; it changes no weight.
    """

    # config keys in which a module may differ from the trained one it starts from (see :meth:`adapt_state_dict`)
    FINE_TUNE_KEYS = ("confidence_input", "fusion")

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        hidden_channels: int = 16,
        encoder_layers: int = 2,
        score_stride: int = 2,
        refine_channels: int = 16,
        gate_init: float = 0.0,
        refine_unet: tuple[int, ...] | None = None,
        refine_downscale: int = 4,
        confidence_input: bool = False,
        fusion: str = "softmax",
        use_refinement: bool = True,
    ) -> None:
        super().__init__()
        if fusion not in ("softmax", "sum"):
            raise ValueError(f"fusion must be 'softmax' or 'sum', got {fusion!r}")
        layers: list[nn.Module] = [
            nn.Conv2d(3 * in_channels + ROLES + int(confidence_input), hidden_channels, 3, score_stride, 1),
            nn.SiLU(),
        ]
        for _ in range(encoder_layers - 1):
            layers += [nn.Conv2d(hidden_channels, hidden_channels, 3, 1, 1), nn.SiLU()]
        layers.append(nn.Conv2d(hidden_channels, 1, 1))
        self.encoder = nn.Sequential(*layers)
        self.gate = nn.Parameter(torch.tensor(float(gate_init)))
        self.refine: nn.Module | None = None
        if refine_unet:
            self.refine = PackedUNet(2 * in_channels, in_channels, refine_downscale, tuple(refine_unet))
        elif refine_channels > 0:
            self.refine = nn.Sequential(
                nn.Conv2d(2 * in_channels, refine_channels, 3, 1, 1),
                nn.SiLU(),
                nn.Conv2d(refine_channels, in_channels, 3, 1, 1),
            )
            nn.init.zeros_(self.refine[-1].weight)
            nn.init.zeros_(self.refine[-1].bias)

    def weights(
        self, x: torch.Tensor, candidates: torch.Tensor, roles: torch.Tensor, valid: torch.Tensor,
        confidence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-pixel weights ``[B, M, 1, H, W]`` of the candidates ``[B, M, 3, H, W]`` (0 where not ``valid``)."""
        b, m, _, h, w = candidates.shape
        xs = repeat(x, "b c h w -> b m c h w", m=m)
        maps = [candidates, xs, candidates - xs,
                repeat(F.one_hot(roles, ROLES).to(x.dtype), "m r -> b m r h w", b=b, h=h, w=w)]
        if self.config.confidence_input:
            confidence = x.new_ones(b, m) if confidence is None else confidence.to(x.dtype)
            maps.append(repeat(confidence, "b m -> b m 1 h w", h=h, w=w))
        inp = rearrange(torch.cat(maps, dim=2), "b m c h w -> (b m) c h w")
        scores = self.encoder(inp)
        if scores.shape[-2:] != (h, w):
            scores = F.interpolate(scores, size=(h, w), mode="bilinear", align_corners=False)
        scores = rearrange(scores, "(b m) 1 h w -> b m 1 h w", b=b, m=m)
        scores = scores.masked_fill(~valid[:, :, None, None, None], float("-inf"))
        return scores.softmax(dim=1) if self.config.fusion == "softmax" else scores.sigmoid()

    def forward(
        self,
        x: torch.Tensor,
        shared: torch.Tensor | None,
        experts: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        confidence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fuse ``x``, ``shared [B, 3, H, W]``, ``experts [B, K, 3, H, W]``, ``mask [B, K]`` (bool).

        ``confidence [B, K]`` is each expert's router probability (read only with ``confidence_input``;
        default 1).
        """
        b = x.shape[0]
        shared = x if shared is None else shared
        if experts is None:
            experts = x.new_zeros(b, 0, *x.shape[1:])
        k = experts.shape[1]
        mask = torch.ones(b, k, dtype=torch.bool, device=x.device) if mask is None else mask.bool()
        candidates = torch.cat([x[:, None], shared[:, None], experts], dim=1)
        roles = torch.tensor([0, 1] + [2] * k, device=x.device)
        valid = torch.cat([torch.ones(b, 2, dtype=torch.bool, device=x.device), mask], dim=1)
        if confidence is not None:
            confidence = torch.cat([confidence.new_ones(b, 2), confidence], dim=1)
        weights = self.weights(x, candidates, roles, valid, confidence)
        fused = x + (weights * (candidates - x[:, None])).sum(dim=1)  # = sum_k w_k c_k when the weights sum to 1
        out = x + self.gate * (fused - x)
        if self.refine is not None and self.config.use_refinement:
            out = out + self.refine(torch.cat([x, fused], dim=1))
        return out

    def compute_loss(
        self,
        x: torch.Tensor,
        shared: torch.Tensor | None,
        experts: torch.Tensor | None,
        mask: torch.Tensor | None,
        y: torch.Tensor,
        psnr_weight: float = 0.0,
        confidence: torch.Tensor | None = None,
        harm_weight: float = 0.0,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """L_hyb(Y, Y_hat) on the fused image, plus ``psnr_weight`` x :func:`losses.log_mse_loss` and
        ``harm_weight`` x :func:`losses.harm_loss` if given."""
        restored = self(x, shared, experts, mask, confidence)
        hyb = losses.hybrid_loss(restored, y)
        logs = {"loss_hyb": hyb.item()}
        loss = losses.add_harm(losses.add_log_mse(hyb, restored, y, psnr_weight, logs), restored, x, y, harm_weight,
                               logs)
        return loss, {"loss": loss.item(), **logs}

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state dict of a module differing from this one only in :attr:`FINE_TUNE_KEYS`, made to fit it.

        ``fusion`` changes no weight. A module trained without ``confidence_input`` is widened: the new
        input channel starts with zero weights, so it reads the same scores as the trained one did until
        fine-tuning teaches it to use the confidence.
        """
        key = "encoder.0.weight"
        ours = self.state_dict()[key]
        if state[key].shape != ours.shape:
            extra = ours.shape[1] - state[key].shape[1]
            if extra < 0:
                raise ValueError("cannot drop the confidence input of a module trained with it")
            state = {**state, key: torch.cat([state[key], state[key].new_zeros(ours.shape[0], extra,
                                                                                 *ours.shape[2:])], dim=1)}
        return state


def cap_change(x: torch.Tensor, restored: torch.Tensor, expert_images: torch.Tensor, cap: float | None
               ) -> torch.Tensor:
    """``restored`` with its change to ``x [B, 3, H, W]`` scaled down, per image, to at most ``cap`` times the
    specialised experts' change (the root of the summed mean squares of ``expert_images [B, K, 3, H, W] - x``;
    an expert that did not run equals ``x``); ``cap`` ``None``: ``restored`` as is.

    A restoration that changes a face by more than twice what its retouching changed is always further from the
    original than the input was (triangle inequality). The experts' change, which follows their degree estimate,
    is the pipeline's own estimate of that amount; the Combine Module's refinement can change much more (a large
    shading change on a mildly smoothed face).
    """
    if cap is None:
        return restored
    change = restored - x
    budget = (expert_images - x[:, None]).pow(2).mean(dim=(2, 3, 4)).sum(dim=1).sqrt()
    size = change.pow(2).mean(dim=(1, 2, 3)).sqrt()
    scale = (cap * budget / size.clamp_min(1e-8)).clamp(max=1.0)
    return x + change * scale.view(-1, 1, 1, 1)


def high_pass_change(x: torch.Tensor, restored: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``restored`` with the low frequencies of its change to ``x [B, 3, H, W]`` removed, per image: the change
    minus its Gaussian blur of ``sigma [B]`` px (0: as is).

    A smoothing filter (bilateral, guided, non-local means, a median...) keeps a face's local means, so the part
    of a restoration's change that a wide blur keeps (shading, tone) is not the smoothing's to undo.
    """
    if not bool((sigma > 0).any()):
        return restored  # no face asks for it: no copy on the common path
    out = restored.clone()
    for value in sigma.unique().tolist():
        if value > 0:
            rows = sigma == value
            change = restored[rows] - x[rows]
            out[rows] = x[rows] + change - gaussian_blur(change, value)
    return out


def low_frequency_sigmas(ran: Sequence[Sequence[str]], probabilities: torch.Tensor, types: Sequence[str],
                         keep: Mapping[str, float], threshold: float) -> torch.Tensor:
    """Per face, the blur of :func:`high_pass_change` (0: none): the smallest sigma ``keep`` gives the types of
    the specialised experts that ran, where :func:`only_types_ran` holds for the types ``keep`` names."""
    fits = only_types_ran(ran, probabilities, types, keep, threshold)
    return torch.tensor([min(keep[t] for t in names) if ok else 0.0 for names, ok in zip(ran, fits)],
                        dtype=probabilities.dtype)


def only_types_ran(ran: Sequence[Sequence[str]], probabilities: torch.Tensor, types: Sequence[str],
                   names: Collection[str], threshold: float, single: bool = False) -> list[bool]:
    """Per face: at least one specialised expert ran (``ran``: their types, per face; exactly one with
    ``single``), each of a type in ``names``, and the router puts every other type (``types``, the columns of
    ``probabilities [B, T]``) below ``threshold``."""
    fits = []
    for run, row in zip(ran, probabilities.tolist()):
        others_absent = all(p < threshold for t, p in zip(types, row) if t not in run)
        count_ok = len(run) == 1 if single else bool(run)
        fits.append(count_ok and all(t in names for t in run) and others_absent)
    return fits


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``images [B, C, H, W]`` (``sigma`` px, 3 sigma each side, edges repeated)."""
    window = losses.gaussian_window(2 * math.ceil(3 * sigma) + 1, sigma, images.dtype).to(images.device)
    pad, channels = len(window) // 2, images.shape[1]
    for kernel, padding in ((window.view(1, 1, 1, -1), (pad, pad, 0, 0)), (window.view(1, 1, -1, 1), (0, 0, pad, pad))):
        images = F.conv2d(F.pad(images, padding, mode="replicate"), kernel.repeat(channels, 1, 1, 1), groups=channels)
    return images
