"""Eye enlarging: a local radial magnification ("bulge") around each eye centre.

Inside an ellipse aligned with the eye (radius from the eye's width) the image is sampled
closer to the centre, ``src = c + (x - c) * (1 - a * f(r))`` with a compact falloff ``f``; the
map stays monotone (no fold-over) for ``a < 1`` (here ``a <= 0.45``).
"""

from __future__ import annotations

import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.masks import FALLOFFS, clip_box, falloff, remap_box
from mofrr_core.spec import RetouchResult

# Magnification at strength 1 (tuned so mean input PSNR lands near the paper's ~35.8 dB).
GAIN = 0.37


def enlarge_eyes(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                 rng: np.random.Generator) -> RetouchResult:
    """Magnify both eyes around their centres; radius scales with the eye width."""
    kind = str(rng.choice(FALLOFFS))
    reach = float(rng.uniform(1.2, 1.7))  # ellipse semi-axis along the eye / eye width
    aspect = float(rng.uniform(0.7, 1.0))  # across / along the eye
    gain_jitter = float(rng.uniform(0.8, 1.2))
    balance = float(rng.uniform(-0.08, 0.08))  # apps rarely treat both eyes exactly alike
    gain = float(np.clip(GAIN * strength * gain_jitter, 0.0, 0.45))
    record = {"op": "eye", "strength": float(strength), "falloff": kind, "reach": reach, "aspect": aspect,
              "gain": gain}
    if strength <= 0:
        return RetouchResult(image.copy(), record)

    centres = landmarks.eye_centres()
    widths = landmarks.eye_sizes()[:, 0]
    axis = centres[1] - centres[0]
    angle = float(np.arctan2(axis[1], axis[0]))
    cos, sin = np.cos(angle), np.sin(angle)
    out = image
    for (cx, cy), width, side in zip(centres, widths, (-1.0, 1.0)):
        width = max(float(width), 0.12 * landmarks.interocular())
        ra, rb = reach * width, reach * width * aspect
        a = gain * (1.0 + side * balance)
        box = clip_box(cx - ra, cy - ra, cx + ra, cy + ra, image.shape)
        ys, xs = np.mgrid[box[1]:box[3], box[0]:box[2]].astype(np.float32)
        u, v = xs - cx, ys - cy
        along, across = u * cos + v * sin, -u * sin + v * cos
        r = np.sqrt((along / ra) ** 2 + (across / rb) ** 2)
        scale = 1.0 - a * falloff(r, kind).astype(np.float32)
        out = remap_box(out, box, cx + u * scale, cy + v * scale)
    return RetouchResult(out, record)
