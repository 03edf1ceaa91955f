"""Lip plumping: an anisotropic local magnification of the mouth, as beauty apps do it."""

from __future__ import annotations

import cv2
import numpy as np

from mofrr_core import RetouchResult

# MediaPipe face-mesh indices of the outer lip contour.
OUTER_LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]


def lip_points(landmarks) -> np.ndarray:
    points = np.asarray(getattr(landmarks, "points", landmarks), dtype=np.float32)
    if len(points) < 468:
        raise ValueError(f"lip plumping needs the 478 MediaPipe face-mesh points, got {len(points)}")
    return points[OUTER_LIPS]


def plump_lips(image: np.ndarray, landmarks, strength: float, rng: np.random.Generator) -> RetouchResult:
    """Magnify the lips (mostly vertically) inside a soft ellipse around the mouth."""
    lips = lip_points(landmarks)
    centre = lips.mean(axis=0)
    half_w = (lips[:, 0].max() - lips[:, 0].min()) / 2
    half_h = (lips[:, 1].max() - lips[:, 1].min()) / 2
    reach = rng.uniform(1.4, 1.9)  # how far beyond the lips the warp fades out
    vertical = rng.uniform(1.5, 2.5)  # plumping is mostly vertical
    gain = 0.25 * strength
    rx, ry = half_w * reach, max(half_h * reach * 1.6, 4.0)

    h, w = image.shape[:2]
    x0, x1 = int(max(centre[0] - rx - 2, 0)), int(min(centre[0] + rx + 3, w))
    y0, y1 = int(max(centre[1] - ry - 2, 0)), int(min(centre[1] + ry + 3, h))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xs - centre[0], ys - centre[1]
    r = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
    falloff = np.clip(1 - r, 0, 1) ** rng.uniform(1.5, 2.5)
    map_x = xs - dx * gain / vertical * falloff
    map_y = ys - dy * gain * falloff
    out = image.copy()
    out[y0:y1, x0:x1] = cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return RetouchResult(out, {"op": "lips", "strength": float(strength), "reach": float(reach),
                               "vertical": float(vertical)})
