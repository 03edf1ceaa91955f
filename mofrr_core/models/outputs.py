"""Output dataclasses shared by the networks (diffusers ``BaseOutput`` style)."""

from __future__ import annotations

from dataclasses import dataclass

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
