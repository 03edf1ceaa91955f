"""Whitening apis of two further families: a 3-D colour LUT and a local (retinex-style) tone map.

- ``lut``: a 17^3 RGB lookup table (a "beauty filter" preset: channel cross-talk, a lift that is
  strongest on skin-like hues, a rosy shift) applied with our own trilinear interpolation, on the
  face oval; every colour is mapped through the table, not through per-channel curves;
- ``retinex``: log-luminance split into a large-scale base (Gaussian, 5-9 % of the face) and
  detail; the base is compressed and lifted (dark areas brightened more), detail kept, the RGB
  ratio applied; on the skin mask. The brightening varies across the face, unlike a global curve.
"""

from __future__ import annotations

import cv2
import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.whitening_color import apply_whitening, draw_common
from mofrr_core.spec import RetouchResult

LUT_SIZE = 17


def apply_lut(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Trilinear lookup of float RGB ``x`` in [0, 1] through ``lut`` [N, N, N, 3] (indexed r, g, b)."""
    n = lut.shape[0]
    pos = np.clip(x, 0.0, 1.0) * (n - 1)
    i0 = np.minimum(np.floor(pos).astype(np.int32), n - 2)
    f = pos - i0
    out = np.zeros_like(x)
    for corner in range(8):
        bits = [(corner >> k) & 1 for k in range(3)]
        weight = np.ones(x.shape[:-1], np.float32)
        for k, bit in enumerate(bits):
            weight = weight * (f[..., k] if bit else 1.0 - f[..., k])
        out += weight[..., None] * lut[i0[..., 0] + bits[0], i0[..., 1] + bits[1], i0[..., 2] + bits[2]]
    return out


def beauty_lut(mix: np.ndarray, lift: float, skin_boost: float, rosy: float) -> np.ndarray:
    """The preset table ``[N, N, N, 3]``: channel mix, hue-selective lift and rosy shift of each grid colour."""
    axis = np.linspace(0.0, 1.0, LUT_SIZE, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)  # [..., (r, g, b)]
    mixed = grid @ mix.T
    r, g, b = grid[..., 0], grid[..., 1], grid[..., 2]
    skin_like = np.clip((r - b) * 3.0, 0.0, 1.0) * np.clip(1.0 - np.abs(g - (r + b) / 2) * 4.0, 0.0, 1.0)
    luma = mixed.mean(-1, keepdims=True)
    lifted = mixed + (lift + skin_boost * skin_like[..., None]) * (1.0 - luma) * np.sqrt(np.clip(luma, 0, 1))
    lifted[..., 0] += rosy * skin_like
    return np.clip(lifted, 0.0, 1.0).astype(np.float32)


def whiten_lut(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
               rng: np.random.Generator) -> RetouchResult:
    """3-D LUT beauty preset on the face oval (table blended from the identity by the strength)."""
    params = draw_common(rng)
    mix = (np.eye(3) + rng.uniform(-0.06, 0.06, (3, 3))).astype(np.float32)
    mix /= mix.sum(1, keepdims=True)  # greys stay grey before the lift
    lift = float(rng.uniform(0.5, 0.9))
    skin_boost = float(rng.uniform(0.2, 0.6))
    rosy = float(rng.uniform(0.0, 0.06))
    preset = beauty_lut(mix, lift, skin_boost, rosy)
    identity = beauty_lut(np.eye(3, dtype=np.float32), 0.0, 0.0, 0.0)

    def target(x: np.ndarray, amount: float) -> np.ndarray:
        return apply_lut(x, identity + min(1.1 * amount, 1.0) * (preset - identity))

    return apply_whitening(image, landmarks, strength, "face", params,
                   {"lift": lift, "skin_boost": skin_boost, "rosy": rosy}, target)


def whiten_retinex(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                   rng: np.random.Generator) -> RetouchResult:
    """Local tone map: the large-scale log-luminance is compressed and lifted, detail kept, on the skin."""
    params = draw_common(rng)
    sigma_frac = float(rng.uniform(0.05, 0.09))
    compress = float(rng.uniform(0.3, 0.7))
    lift = float(rng.uniform(0.5, 0.9))
    sigma = sigma_frac * landmarks.face_size()

    def target(x: np.ndarray, amount: float) -> np.ndarray:
        luma = np.maximum(x @ np.array([0.299, 0.587, 0.114], np.float32), 1e-3)
        log_l = np.log(luma)
        base = cv2.GaussianBlur(log_l, (0, 0), sigma)
        new_base = base * (1.0 - compress * amount) + lift * amount * (-base) ** 0.5 * 0.6
        ratio = np.exp(np.minimum(new_base - base, 1.5))
        return x * ratio[..., None]

    return apply_whitening(image, landmarks, strength, "skin", params,
                   {"sigma": sigma_frac, "compress": compress, "lift": lift}, target)
