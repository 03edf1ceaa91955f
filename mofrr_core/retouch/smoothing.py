"""Skin smoothing ("buffing"): an edge-preserving filter blended back into the skin, the face or the whole photo.

Two implementations (APIs):

- ``bilateral``: cv2 bilateral filter, then the beauty-app high-pass blend
  (``src + k * blur(EPF(src) - src)``) that keeps edges and removes blemish-level detail;
- ``guided``: He et al.'s guided filter (self-guided, per channel or luminance-guided).

Both also even out the skin tone a little (frequency separation: the mid-frequency shading of
the skin, blotches and redness, is pulled towards a skin-only large-scale blur).

Filter sizes scale with the face size. Each training api applies its filter where :func:`draw_region` says: the
skin mask (eyes, brows, lips, hair and background untouched), the face oval, or the whole picture, as a beauty
app's slider may (the held-out apis keep the skin mask: the yardstick does not move).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import cv2
import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.masks import region_mask
from mofrr_core.spec import RetouchResult

# Effect sizes at strength 1 (tuned so mean input PSNR lands near the paper's ~35.6 dB).
OPACITY = 1.45
EVENING = (0.25, 0.55)  # tone-evening amount (fraction of the mid-frequency skin shading removed)
FINE = (0.3, 0.8)  # share of the finest (sub-working-scale) texture removed on big faces
WORKING_SIZE = 320  # faces larger than this (px) are filtered downscaled
REGION_SHARES = {"skin": 0.6, "face": 0.2, "image": 0.2}  # where a training api smooths (engine v6)


_FORCED_REGION: ContextVar[str | None] = ContextVar("smoothing_region", default=None)


def draw_region(rng: np.random.Generator) -> str:
    """Where a training smoothing api applies its filter, drawn from :data:`REGION_SHARES`."""
    regions = list(REGION_SHARES)
    return regions[int(rng.choice(len(regions), p=list(REGION_SHARES.values())))]


@contextmanager
def smoothing_region(region: str | None) -> Iterator[None]:
    """Inside this context every smoothing api filters ``region`` (``skin``, ``face``, ``image``; ``None``: its
    own), whatever it declares or draws: an evaluation of the held-out smoothings on the whole picture
    (``benchmarks/whole_photo.py --smooth-region image``). The random draws are unchanged."""
    if region is not None and region not in REGION_SHARES:
        raise ValueError(f"smoothing region must be one of {', '.join(REGION_SHARES)}, got {region!r}")
    token = _FORCED_REGION.set(region)
    try:
        yield
    finally:
        _FORCED_REGION.reset(token)


def forced(region: str) -> str:
    """``region``, or the one :func:`smoothing_region` forces."""
    return _FORCED_REGION.get() or region


def box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a ``(2r+1)^2`` window (normalised at the borders)."""
    size = 2 * radius + 1
    return cv2.boxFilter(x, -1, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT_101)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. guided filter; ``guide`` HxW (grey) or HxWxC matching ``src`` channel-wise, float32."""
    mean_i, mean_p = box(guide, radius), box(src, radius)
    cov_ip = box(guide * src, radius) - mean_i * mean_p
    var_i = box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a, radius) * guide + box(b, radius)


def even_tone(x: np.ndarray, mask: np.ndarray, sigma_fine: float, sigma_coarse: float, amount: float) -> np.ndarray:
    """Pull the band between two blur scales of the skin towards zero (skin-only normalised blurs)."""
    weight = mask[..., None]

    def skin_blur(sigma: float) -> np.ndarray:
        num = cv2.GaussianBlur(x * weight, (0, 0), sigma)
        den = cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]
        return num / np.maximum(den, 1e-3)

    return x + amount * (skin_blur(sigma_coarse) - skin_blur(sigma_fine))


def _region(image: np.ndarray, landmarks: FaceLandmarks, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    feather = float(rng.uniform(0.025, 0.05))
    region = forced(draw_region(rng))
    return region_mask(image, landmarks, region, feather), {"feather": feather, "region": region}


def _blend(x: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = x + mask[..., None] * (target - x)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def at_working_scale(image: np.ndarray, landmarks: FaceLandmarks, mask: np.ndarray, fine: float,
                     target_fn: Callable[[np.ndarray, FaceLandmarks, np.ndarray], np.ndarray]) -> np.ndarray:
    """``target_fn(image, landmarks, mask) -> float target`` run where the face is at most WORKING_SIZE px.

    Big faces are filtered downscaled (filter cost does not grow with the resolution); the change
    is upsampled and the finest band the small image cannot hold (pore-level texture) is reduced
    by ``fine``. At the working size or below this is exactly ``target_fn`` at full resolution.
    """
    scale = min(1.0, WORKING_SIZE / landmarks.face_size())
    x = image.astype(np.float32)
    if scale >= 1.0:
        return target_fn(image, landmarks, mask)
    h, w = image.shape[:2]
    sw, sh = max(int(round(w * scale)), 1), max(int(round(h * scale)), 1)
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA)
    small_face = landmarks.scaled(sw / w, sh / h)
    change = target_fn(small, small_face, small_mask) - small.astype(np.float32)
    base = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return x + cv2.resize(change, (w, h), interpolation=cv2.INTER_LINEAR) - fine * (x - base)


def smooth_bilateral(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                     rng: np.random.Generator) -> RetouchResult:
    """Bilateral filter + high-pass blend inside the region of :func:`draw_region`."""
    space = float(rng.uniform(0.025, 0.05))  # spatial sigma / face size
    colour = float(rng.uniform(40.0, 80.0))  # colour sigma (0..255) at strength 1
    highpass = float(rng.uniform(1.2, 1.8))  # how strongly the smoothed difference is applied
    detail_sigma = float(rng.uniform(0.002, 0.006))
    opacity_jitter = float(rng.uniform(0.8, 1.0))
    evening = float(rng.uniform(*EVENING))
    fine = float(rng.uniform(*FINE))
    mask, record = _region(image, landmarks, rng)
    opacity = float(np.clip(OPACITY * strength * opacity_jitter, 0.0, 1.0))
    record = {"op": "smooth", "strength": float(strength), "filter": "bilateral", "sigma_space": space,
              "sigma_colour": colour, "highpass": highpass, "evening": evening, "fine": fine, "opacity": opacity,
              **record}
    if strength <= 0:
        return RetouchResult(image.copy(), record)

    def target_fn(img: np.ndarray, face: FaceLandmarks, skin: np.ndarray) -> np.ndarray:
        size = face.face_size()
        sigma_space = max(space * size, 0.8)
        diameter = int(2 * round(2 * sigma_space) + 1)
        x = img.astype(np.float32)
        smooth = cv2.bilateralFilter(img, diameter, colour * (0.5 + 0.5 * strength), sigma_space)
        difference = cv2.GaussianBlur(smooth.astype(np.float32) - x, (0, 0), max(detail_sigma * size, 0.5))
        return even_tone(x + highpass * difference, skin, 0.01 * size, 0.045 * size, evening)

    target = at_working_scale(image, landmarks, mask, fine, target_fn)
    return RetouchResult(_blend(image.astype(np.float32), target, mask * opacity), record)


def smooth_guided(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                  rng: np.random.Generator) -> RetouchResult:
    """Self-guided filter (per channel or luminance guide) inside the region of :func:`draw_region`."""
    radius_frac = float(rng.uniform(0.025, 0.05))
    eps_base = float(rng.uniform(0.01, 0.035))  # (0..1 intensity)^2 at strength 1
    luminance_guide = bool(rng.random() < 0.5)
    opacity_jitter = float(rng.uniform(0.8, 1.0))
    evening = float(rng.uniform(*EVENING))
    fine = float(rng.uniform(*FINE))
    mask, record = _region(image, landmarks, rng)
    eps = eps_base * (0.3 + 0.7 * strength)
    opacity = float(np.clip(OPACITY * strength * opacity_jitter, 0.0, 1.0))
    record = {"op": "smooth", "strength": float(strength), "filter": "guided", "radius": radius_frac, "eps": eps,
              "luminance_guide": luminance_guide, "evening": evening, "fine": fine, "opacity": opacity, **record}
    if strength <= 0:
        return RetouchResult(image.copy(), record)

    def target_fn(img: np.ndarray, face: FaceLandmarks, skin: np.ndarray) -> np.ndarray:
        size = face.face_size()
        radius = max(int(round(radius_frac * size)), 1)
        x = img.astype(np.float32) / 255.0
        if luminance_guide:
            grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
            target = np.stack([guided_filter(grey, x[..., c], radius, eps) for c in range(3)], axis=2)
        else:
            target = guided_filter(x, x, radius, eps)
        return even_tone(target * 255.0, skin, 0.01 * size, 0.045 * size, evening)

    target = at_working_scale(image, landmarks, mask, fine, target_fn)
    return RetouchResult(_blend(image.astype(np.float32), target, mask * opacity), record)


def draw_common(rng: np.random.Generator) -> dict:
    """Mask feather, opacity jitter and fine-band share every smoothing api draws first."""
    return {"feather": float(rng.uniform(0.025, 0.05)), "jitter": float(rng.uniform(0.8, 1.0)),
            "fine": float(rng.uniform(*FINE))}


def run_filter(image: np.ndarray, landmarks: FaceLandmarks, strength: float, region: str, common: dict,
               record: dict, filter_fn: Callable[[np.ndarray, FaceLandmarks, np.ndarray], np.ndarray],
               gain: float = OPACITY) -> RetouchResult:
    """Blend ``filter_fn(float image 0..255, face, region mask) -> float target`` into ``region``.

    The filter runs at the working scale (:func:`at_working_scale`); the opacity is
    ``gain * strength * jitter`` (clipped to 1), so the edit grows with the strength.
    """
    region = forced(region)
    opacity = float(np.clip(gain * strength * common["jitter"], 0.0, 1.0))
    record = {"op": "smooth", "strength": float(strength), "region": region, "opacity": opacity,
              "feather": common["feather"], "fine": common["fine"], **record}
    if strength <= 0:
        return RetouchResult(image.copy(), record)
    mask = region_mask(image, landmarks, region, common["feather"])

    def target_fn(img: np.ndarray, face: FaceLandmarks, weight: np.ndarray) -> np.ndarray:
        return filter_fn(img.astype(np.float32), face, weight)

    target = at_working_scale(image, landmarks, mask, common["fine"], target_fn)
    return RetouchResult(_blend(image.astype(np.float32), target, mask * opacity), record)
