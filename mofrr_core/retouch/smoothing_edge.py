"""Smoothing apis of two further families: the domain transform and à-trous wavelet shrinkage.

- ``domain``: Gastal & Oliveira's domain-transform recursive filter (edge-aware distances,
  three horizontal + vertical passes with shrinking sigmas), on the skin mask;
- ``wavelet``: the image decomposed with the à-trous B3-spline wavelet (levels up to ~1.5 % of the
  face), detail coefficients soft-thresholded (fine levels harder), reconstructed; on the skin mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.smoothing import draw_common, run_filter
from mofrr_core.spec import RetouchResult

B3 = np.array([1, 4, 6, 4, 1], np.float32) / 16.0


def _recursive_rows(x: np.ndarray, distance: np.ndarray, sigma: float) -> np.ndarray:
    """One causal + anti-causal recursive pass along axis 1 (``distance`` [H, W-1] between columns)."""
    a = np.exp(-np.sqrt(2.0) / sigma)
    feedback = np.power(a, distance)[..., None]  # [H, W-1, 1]
    out = x.copy()
    for j in range(1, out.shape[1]):
        out[:, j] += feedback[:, j - 1] * (out[:, j - 1] - out[:, j])
    for j in range(out.shape[1] - 2, -1, -1):
        out[:, j] += feedback[:, j] * (out[:, j + 1] - out[:, j])
    return out


def domain_transform(x: np.ndarray, sigma_s: float, sigma_r: float, iterations: int = 3) -> np.ndarray:
    """Edge-preserving recursive filter of float ``x`` (0..1, HxWxC)."""
    ratio = sigma_s / sigma_r
    dx = 1.0 + ratio * np.abs(np.diff(x, axis=1)).sum(-1)
    dy = 1.0 + ratio * np.abs(np.diff(x, axis=0)).sum(-1)
    out = x
    for i in range(iterations):
        sigma = sigma_s * np.sqrt(3.0) * 2 ** (iterations - i - 1) / np.sqrt(4**iterations - 1)
        out = _recursive_rows(out, dx, sigma)
        out = _recursive_rows(out.transpose(1, 0, 2), dy.T, sigma).transpose(1, 0, 2)
    return np.ascontiguousarray(out)


def smooth_domain(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                  rng: np.random.Generator) -> RetouchResult:
    """Domain-transform recursive filter on the skin mask."""
    common = draw_common(rng)
    sigma_s = float(rng.uniform(0.035, 0.06))
    sigma_r = float(rng.uniform(0.6, 1.2))

    def filter_fn(x, face, mask):
        return domain_transform(x / 255.0, max(sigma_s * face.face_size(), 1.0), sigma_r) * 255.0

    return run_filter(image, landmarks, strength, "skin", common, {"sigma_s": sigma_s, "sigma_r": sigma_r},
                      filter_fn)


def atrous(x: np.ndarray, levels: int) -> tuple[list[np.ndarray], np.ndarray]:
    """À-trous B3-spline decomposition: detail planes (finest first) and the residual."""
    details = []
    current = x
    for j in range(levels):
        kernel = np.zeros(4 * 2**j + 1, np.float32)
        kernel[:: 2**j] = B3
        smooth = cv2.sepFilter2D(current, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
        details.append(current - smooth)
        current = smooth
    return details, current


def smooth_wavelet(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                   rng: np.random.Generator) -> RetouchResult:
    """À-trous wavelet soft-thresholding of the fine detail levels on the skin mask."""
    common = draw_common(rng)
    threshold = float(rng.uniform(10.0, 22.0))  # 0..255 units at the finest level
    decay = float(rng.uniform(0.5, 0.8))  # coarser levels are thresholded by this factor per level
    reach = float(rng.uniform(0.015, 0.025))  # coarsest treated scale / face size

    def filter_fn(x, face, mask):
        levels = int(np.clip(np.round(np.log2(max(reach * face.face_size(), 1.0))) + 1, 2, 5))
        details, residual = atrous(x, levels)
        out = residual
        for j, detail in enumerate(details):
            t = threshold * decay**j
            out = out + np.sign(detail) * np.maximum(np.abs(detail) - t, 0.0)
        return out

    return run_filter(image, landmarks, strength, "skin", common,
                      {"threshold": threshold, "decay": decay, "reach": reach}, filter_fn)
