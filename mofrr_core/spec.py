"""Typed descriptions of what plugins register: experts, retouching ops, landmark providers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

ExpertKind = Literal["specialised", "shared"]


@dataclass(frozen=True)
class ExpertSpec:
    """One restoration expert as a plugin declares it.

    ``weights`` is a ``save_pretrained`` folder (``config.json`` + ``*.safetensors``); when it
    is ``None`` or absent the expert is built untrained from ``preset`` (a warning says so).
    ``gate`` optionally points at the router gate head the expert brings with it.
    """

    name: str
    retouch_type: str | None
    kind: ExpertKind = "specialised"
    model_type: str = "WaveFRR"
    weights: Path | None = None
    gate: Path | None = None
    preset: str = "cpu"
    config: dict[str, Any] = field(default_factory=dict)
    version: str = "0.0.0"
    description: str = ""
    distribution: str = "mofrr"  # filled in by the plugin manager

    @classmethod
    def from_package(cls, package: str, **fields: Any) -> ExpertSpec:
        """A spec whose weights (``weights/``) and gate head (``gate/``) live inside ``package``."""
        root = Path(str(resources.files(package)))
        gate = root / "gate"
        return cls(weights=root / "weights", gate=gate if gate.is_dir() else None, **fields)

    def __post_init__(self) -> None:
        if self.kind not in ("specialised", "shared"):
            raise ValueError(f"expert {self.name!r}: kind must be 'specialised' or 'shared', got {self.kind!r}")
        if self.kind == "specialised" and not self.retouch_type:
            raise ValueError(f"specialised expert {self.name!r} needs a retouch_type")


@dataclass(frozen=True)
class RetouchResult:
    """A retouched image (HxWx3 uint8) plus the record of what was applied."""

    image: np.ndarray
    record: dict[str, Any]


RetouchFn = Callable[..., RetouchResult]
"""``fn(image: uint8 HxWx3, landmarks: FaceLandmarks, strength: float, rng: np.random.Generator)``"""


RETOUCH_REGIONS = ("skin", "face", "image")


@dataclass(frozen=True)
class RetouchOpSpec:
    """A retouching operation used by the data engine; ``api`` names one implementation of it.

    ``region`` declares what the api may change: ``"skin"`` (the skin mask: no eyes, brows, lips,
    hair), ``"face"`` (the face oval and a margin around it) or ``"image"`` (the whole picture); an api that
    draws its region per call declares the widest it may draw and records the one it used (``record["region"]``).
    ``family`` names its algorithm (``"tone-curve"``, ``"lut3d"``, ``"bilateral"``, ``"mls"``...):
    two apis of one family are the same algorithm with other parameters.
    """

    name: str
    fn: RetouchFn
    api: str = "default"
    description: str = ""
    distribution: str = "mofrr"
    region: str = "face"
    family: str = ""

    def __post_init__(self) -> None:
        if self.region not in RETOUCH_REGIONS:
            raise ValueError(f"retouch op {self.name}/{self.api}: region must be one of "
                             f"{', '.join(RETOUCH_REGIONS)}, got {self.region!r}")


@dataclass(frozen=True)
class LandmarkProviderSpec:
    """A face landmark detector: ``factory()`` returns ``detect(image_uint8) -> list[FaceLandmarks]``."""

    name: str
    factory: Callable[[], Callable[[np.ndarray], list]]
    scheme: str = "mediapipe478"
    priority: int = 0
    description: str = ""
    distribution: str = "mofrr"
