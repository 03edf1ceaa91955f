"""Output dataclasses of the networks and the pipeline (diffusers ``BaseOutput`` style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.utils import BaseOutput


@dataclass
class ExpertOutput(BaseOutput):
    """What every expert's ``restore`` returns.

    image: restored images, ``[B, 3, H, W]`` in ``[-1, 1]``.
    degree: expected retouching degree in ``[1, 5]`` per image (``None`` for the shared expert).
    """

    image: torch.Tensor
    degree: torch.Tensor | None = None


@dataclass
class PipelineOutput(BaseOutput):
    """Restored images and what the router decided, one entry per input image.

    images: restored images (PIL, uint8 HxWx3 arrays, or ``[3, H, W]`` tensors in ``[-1, 1]``).
    probabilities: router probability per retouching type (calibrated: what the forensic report prints).
    thresholds: per type, the probability above which the type counts as found and its expert runs (the
        registry's ``threshold``, made stricter for a gate that ``mofrr-train calibrate`` gave an offset).
    experts_run: names of the experts that ran (activated specialised experts, then the shared one).
    degrees: estimated retouching degree (1..5) per activated specialised expert.
    face_thresholds: per image, the thresholds its gates were compared with: ``thresholds``, or those of the
        view the router read it in where the router is calibrated per view (``view_gate_offsets``,
        ``view_calibration``).
    low_frequency_sigmas: per image, the blur (px) whose part of the change was removed (registry
        ``keep_low_frequencies``; 0: none).
    """

    images: list[Any]
    probabilities: list[dict[str, float]]
    experts_run: list[list[str]]
    degrees: list[dict[str, float]] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    face_thresholds: list[dict[str, float]] = field(default_factory=list)
    low_frequency_sigmas: list[float] = field(default_factory=list)


@dataclass
class ExpertRun:
    """What the experts made of a batch ``x [B, 3, H, W]`` (:meth:`Pipeline.run_experts`).

    images: ``[B, K, 3, H, W]``, expert ``k``'s output where it ran and ``x`` elsewhere.
    shared: ``[B, 3, H, W]``, the shared expert's output (``x`` without one).
    degrees: per image, the estimated degree of each specialised expert that ran on it.
    """

    images: torch.Tensor
    shared: torch.Tensor
    degrees: list[dict[str, float]]
