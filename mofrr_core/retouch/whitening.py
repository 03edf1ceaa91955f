"""Skin whitening: brighten and slightly re-tint the skin inside a feathered skin mask.

Two implementations (APIs) so the cross-implementation protocol can hold one out:

- ``curve``: a random tone curve in RGB (gamma, screen, shadow lift or the classic log curve),
  plus an optional pink/warm/cool tint and a slight desaturation;
- ``lab``: lightness curve on CIELAB L and a chroma reduction / yellow-to-neutral shift on a, b.
"""

from __future__ import annotations

import cv2
import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.masks import skin_mask
from mofrr_core.spec import RetouchResult

CURVES = ("gamma", "screen", "lift", "log")
TINTS = {"none": (0.0, 0.0, 0.0), "pink": (0.6, -0.5, 0.3), "warm": (0.6, 0.2, -0.7), "cool": (-0.3, 0.1, 0.6)}
# Effect size at strength 1 (tuned so mean input PSNR lands near the paper's ~29 dB).
GAIN = 0.32


def tone_curve(x: np.ndarray, kind: str, amount: float) -> np.ndarray:
    """Brightening curve ``[0, 1] -> [0, 1]``, the identity at ``amount = 0``, monotone in ``amount``."""
    if kind == "gamma":
        return np.power(x, 1.0 / (1.0 + 1.5 * amount))
    if kind == "screen":
        return x + amount * x * (1.0 - x) * 1.6
    if kind == "lift":
        return x + amount * 0.6 * (1.0 - x) * np.sqrt(x)
    if kind == "log":  # v' = log(v (beta - 1) + 1) / log(beta), the beauty-app whitening curve
        beta = 1.0 + 12.0 * amount
        return np.log1p(x * (beta - 1.0)) / np.log(beta) if amount > 1e-6 else x
    raise ValueError(f"unknown whitening curve {kind!r} (known: {', '.join(CURVES)})")


def _mask(image: np.ndarray, landmarks: FaceLandmarks, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    feather = float(rng.uniform(0.03, 0.07))
    opacity = float(rng.uniform(0.85, 1.0))
    mask = skin_mask(image.shape, landmarks, feather=feather, image=image) * opacity
    return mask, {"feather": feather, "opacity": opacity}


def blend(image: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32)
    out = x + mask[..., None] * (target - x)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def whiten_curve(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                 rng: np.random.Generator) -> RetouchResult:
    """RGB tone-curve whitening with a random curve and tint inside the skin mask."""
    kind = str(rng.choice(CURVES))
    tint_name = str(rng.choice(list(TINTS), p=[0.4, 0.25, 0.2, 0.15]))
    amount_jitter = float(rng.uniform(0.75, 1.25))
    tint_amount = float(rng.uniform(0.02, 0.05))
    desaturate = float(rng.uniform(0.0, 0.15))
    mask, record = _mask(image, landmarks, rng)
    amount = float(np.clip(GAIN * strength * amount_jitter, 0.0, 1.0))

    x = image.astype(np.float32) / 255.0
    y = tone_curve(x, kind, amount)
    grey = y.mean(axis=2, keepdims=True)
    y = y + desaturate * amount * (grey - y)
    y = y + np.asarray(TINTS[tint_name], dtype=np.float32) * tint_amount * amount
    target = np.clip(y, 0.0, 1.0) * 255.0
    out = blend(image, target, mask)
    return RetouchResult(out, {"op": "white", "strength": float(strength), "curve": kind, "tint": tint_name,
                               "amount": amount, "desaturate": desaturate, **record})


def whiten_lab(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
               rng: np.random.Generator) -> RetouchResult:
    """CIELAB whitening: brighten L with a random curve, reduce chroma and yellowness."""
    kind = str(rng.choice(CURVES))
    amount_jitter = float(rng.uniform(0.75, 1.25))
    chroma = float(rng.uniform(0.05, 0.3))
    yellow = float(rng.uniform(0.0, 6.0))
    mask, record = _mask(image, landmarks, rng)
    amount = float(np.clip(GAIN * strength * amount_jitter, 0.0, 1.0))

    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)  # L in [0, 100], a, b ~ [-128, 127]
    lab[..., 0] = tone_curve(lab[..., 0] / 100.0, kind, amount) * 100.0
    lab[..., 1:] *= 1.0 - chroma * amount
    lab[..., 2] -= yellow * amount
    target = np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0.0, 1.0) * 255.0
    out = blend(image, target, mask)
    return RetouchResult(out, {"op": "white", "strength": float(strength), "curve": kind, "amount": amount,
                               "chroma": chroma, "yellow": yellow, **record})
