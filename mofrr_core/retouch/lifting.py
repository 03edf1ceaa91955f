"""Face lifting / slimming: a liquify-style push of the jaw and cheeks towards the face centre.

Each contour point of the lower face is a "forward warp" brush: everything within its radius
is translated towards the face centre, with a smooth compactly supported falloff. The
brushes' displacements are averaged into one smooth field and applied with ``cv2.remap``;
outside the brushes nothing moves.
"""

from __future__ import annotations

import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.masks import FALLOFFS, clip_box, falloff, remap_box
from mofrr_core.spec import RetouchResult

STYLES = ("jaw", "cheeks", "vline")
# Largest push at strength 1 as a fraction of the face size (tuned so mean input PSNR lands near ~29.5 dB).
PUSH = 0.056


def displacement_field(xs: np.ndarray, ys: np.ndarray, centres: np.ndarray, moves: np.ndarray,
                       radii: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Smooth field ``(dx, dy)`` on the grid: brushes at ``centres`` [N, 2] moving by ``moves`` [N, 2]."""
    dx = np.zeros_like(xs)
    dy = np.zeros_like(xs)
    total = np.zeros_like(xs)
    for (cx, cy), (mx, my), radius in zip(centres, moves, radii):
        weight = falloff(np.hypot(xs - cx, ys - cy) / radius, kind).astype(np.float32)
        dx += weight * mx
        dy += weight * my
        total += weight
    norm = np.maximum(total, 1.0)  # overlapping brushes average instead of adding up
    return dx / norm, dy / norm


def lift_face(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
              rng: np.random.Generator) -> RetouchResult:
    """Push the jaw and cheek contour towards the face centre (slimmer, "lifted" face)."""
    size = landmarks.face_size()
    style = str(rng.choice(STYLES))
    kind = str(rng.choice(FALLOFFS))
    radius_frac = float(rng.uniform(0.16, 0.26))
    push_jitter = float(rng.uniform(0.75, 1.25))
    upward = float(rng.uniform(0.0, 0.35))  # lifting also moves the contour a little up
    asymmetry = float(rng.uniform(-0.15, 0.15))

    jaw = landmarks.jaw()
    n = len(jaw)
    t = np.linspace(-1.0, 1.0, n, dtype=np.float32)  # -1 left ear, 0 chin, +1 right ear
    if style == "jaw":  # strongest at the jaw angles
        profile = np.exp(-((np.abs(t) - 0.55) / 0.3) ** 2)
    elif style == "cheeks":  # strongest high on the cheeks
        profile = np.exp(-((np.abs(t) - 0.85) / 0.3) ** 2)
    else:  # V-line: jaw angles in, chin slightly up
        profile = np.exp(-((np.abs(t) - 0.5) / 0.35) ** 2) + 0.35 * np.exp(-(t / 0.2) ** 2)
    profile = profile * (1.0 + asymmetry * np.sign(t))

    centre = landmarks.face_centre()
    towards = centre - jaw
    towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-6)
    towards[:, 1] -= upward
    push = PUSH * size * strength * push_jitter
    moves = towards * (push * profile)[:, None]
    radii = np.full(n, radius_frac * size, dtype=np.float32)
    record = {"op": "face", "strength": float(strength), "style": style, "falloff": kind,
              "radius": radius_frac, "push": push / size, "upward": upward}
    if strength <= 0:
        return RetouchResult(image.copy(), record)

    reach = radii.max()
    x0, y0 = jaw.min(axis=0) - reach
    x1, y1 = jaw.max(axis=0) + reach
    box = clip_box(x0, y0, x1, y1, image.shape)
    ys, xs = np.mgrid[box[1]:box[3], box[0]:box[2]].astype(np.float32)
    dx, dy = displacement_field(xs, ys, jaw, moves, radii, kind)
    # backward mapping of a forward push: the output at x shows the input at x - d(x)
    out = remap_box(image, box, xs - dx, ys - dy)
    return RetouchResult(out, record)
