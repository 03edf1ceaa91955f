"""More smoothing apis: surface blur, median, morphological, frequency separation, soft focus.

- ``surface``: Photoshop-style surface blur (box window, each neighbour weighted by
  ``1 - |difference| / (2.5 threshold)``), on a sparse 5x5 window;
- ``median``: a median filter (softened), optionally with part of the fine detail re-injected;
- ``morph``: grey closing + opening (dark spots and bright specks removed), softened;
- ``freqsep``: frequency separation: the low band is blurred again (within its region), the high band
  dropped or partly re-injected;
- ``softfocus``: whole image: a Gaussian "soft focus" / glow layer (normal or lighten blend).

The first four apply their filter where :func:`~mofrr_core.retouch.smoothing.draw_region` says (skin mask, face oval
or whole picture).
"""

from __future__ import annotations

import cv2
import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.smoothing import draw_common, draw_region, run_filter
from mofrr_core.spec import RetouchResult


def surface_blur(x: np.ndarray, radius: float, threshold: float, taps: int = 5) -> np.ndarray:
    """Surface blur of float ``x`` (0..255): box window of ``radius`` px sampled on ``taps`` x ``taps``."""
    offsets = sorted({int(round(o)) for o in np.linspace(-radius, radius, taps)})
    pad = max(abs(o) for o in offsets)
    h, w = x.shape[:2]
    padded = cv2.copyMakeBorder(x, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    num = np.zeros_like(x)
    den = np.zeros_like(x)
    for dy in offsets:
        for dx in offsets:
            shifted = padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]
            weight = np.maximum(1.0 - np.abs(shifted - x) / (2.5 * threshold), 0.0)
            num += weight * shifted
            den += weight
    return num / np.maximum(den, 1e-6)


def smooth_surface(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                   rng: np.random.Generator) -> RetouchResult:
    """Surface blur in a drawn region."""
    common = draw_common(rng)
    radius = float(rng.uniform(0.03, 0.05))
    threshold = float(rng.uniform(30.0, 60.0))

    def filter_fn(x, face, mask):
        return surface_blur(x, max(radius * face.face_size(), 1.0), threshold)

    return run_filter(image, landmarks, strength, draw_region(rng), common, {"radius": radius, "threshold": threshold},
                      filter_fn)


def smooth_median(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                  rng: np.random.Generator) -> RetouchResult:
    """Median filter in a drawn region, part of the finest detail put back."""
    common = draw_common(rng)
    radius = float(rng.uniform(0.025, 0.04))
    reinject = float(rng.uniform(0.0, 0.2))

    def filter_fn(x, face, mask):
        size = face.face_size()
        pixels = max(radius * size, 1.0)
        whole = int(np.floor(pixels))
        frac = pixels - whole
        x8 = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        # two odd window sizes blended by the fractional radius: the same filter at every face size
        median = (1.0 - frac) * cv2.medianBlur(x8, 2 * whole + 1).astype(np.float32)
        if frac > 0:
            median += frac * cv2.medianBlur(x8, 2 * whole + 3).astype(np.float32)
        median = cv2.GaussianBlur(median, (0, 0), 0.5 * pixels)  # softens the median's flat patches
        detail = x - cv2.GaussianBlur(x, (0, 0), max(0.004 * size, 0.5))
        return median + reinject * detail

    return run_filter(image, landmarks, strength, draw_region(rng), common, {"radius": radius, "reinject": reinject},
                      filter_fn)


def smooth_morph(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                 rng: np.random.Generator) -> RetouchResult:
    """Grey closing and opening (random order) with a disc, softened by a small Gaussian, in a drawn region."""
    common = draw_common(rng)
    radius = float(rng.uniform(0.015, 0.03))
    close_first = bool(rng.random() < 0.5)

    def filter_fn(x, face, mask):
        r = max(int(round(radius * face.face_size())), 1)
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        order = (cv2.MORPH_CLOSE, cv2.MORPH_OPEN) if close_first else (cv2.MORPH_OPEN, cv2.MORPH_CLOSE)
        y = x
        for operation in order:
            y = cv2.morphologyEx(y, operation, disc, borderType=cv2.BORDER_REFLECT_101)
        return cv2.GaussianBlur(y, (0, 0), max(0.6 * r, 0.5))

    return run_filter(image, landmarks, strength, draw_region(rng), common,
                      {"radius": radius, "close_first": close_first}, filter_fn)


def smooth_freqsep(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                   rng: np.random.Generator) -> RetouchResult:
    """Frequency separation: low band blurred again in a drawn region, high band dropped or partly re-injected."""
    common = draw_common(rng)
    split = float(rng.uniform(0.01, 0.02))
    low_blur = float(rng.uniform(0.015, 0.03))
    reinject = float(rng.uniform(0.1, 0.35)) if rng.random() < 0.6 else 0.0

    def filter_fn(x, face, mask):
        size = face.face_size()
        low = cv2.GaussianBlur(x, (0, 0), max(split * size, 0.5))
        high = x - low
        weight = mask[..., None]
        sigma = max(low_blur * size, 0.5)
        smooth_low = cv2.GaussianBlur(low * weight, (0, 0), sigma) / np.maximum(
            cv2.GaussianBlur(mask, (0, 0), sigma)[..., None], 1e-3)
        return smooth_low + reinject * high

    return run_filter(image, landmarks, strength, draw_region(rng), common,
                      {"split": split, "low_blur": low_blur, "reinject": reinject}, filter_fn, gain=1.45)


def smooth_softfocus(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                     rng: np.random.Generator) -> RetouchResult:
    """Whole image: a blurred copy blended in (normal or lighten), the "soft focus" filter of camera apps."""
    common = draw_common(rng)
    sigma = float(rng.uniform(0.012, 0.024))
    mode = str(rng.choice(["normal", "lighten"]))

    def filter_fn(x, face, mask):
        blurred = cv2.GaussianBlur(x, (0, 0), max(sigma * face.face_size(), 0.5))
        return np.maximum(x, blurred) if mode == "lighten" else blurred

    return run_filter(image, landmarks, strength, "image", common, {"sigma": sigma, "mode": mode}, filter_fn,
                      gain=1.0)
