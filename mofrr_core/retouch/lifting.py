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


def contour_moves(landmarks: FaceLandmarks, style: str, push: float, upward: float,
                  asymmetry: float) -> np.ndarray:
    """Displacements ``[N, 2]`` of the jaw contour points towards the face centre (``push`` px at the peak)."""
    jaw = landmarks.jaw()
    t = np.linspace(-1.0, 1.0, len(jaw), dtype=np.float32)  # -1 left ear, 0 chin, +1 right ear
    if style == "jaw":  # strongest at the jaw angles
        profile = np.exp(-((np.abs(t) - 0.55) / 0.3) ** 2)
    elif style == "cheeks":  # strongest high on the cheeks
        profile = np.exp(-((np.abs(t) - 0.85) / 0.3) ** 2)
    elif style == "vline":  # V-line: jaw angles in, chin slightly up
        profile = np.exp(-((np.abs(t) - 0.5) / 0.35) ** 2) + 0.35 * np.exp(-(t / 0.2) ** 2)
    else:
        raise ValueError(f"unknown lifting style {style!r} (known: {', '.join(STYLES)})")
    profile = profile * (1.0 + asymmetry * np.sign(t))
    towards = landmarks.face_centre() - jaw
    towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-6)
    towards[:, 1] -= upward
    return (towards * (push * profile)[:, None]).astype(np.float32)


def wendland(r: np.ndarray) -> np.ndarray:
    """Wendland's compactly supported C2 kernel ``(1 - r)^4 (4 r + 1)`` (positive definite in 2-D)."""
    r = np.clip(r, 0.0, 1.0)
    return (1.0 - r) ** 4 * (4.0 * r + 1.0)


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
    push = PUSH * size * strength * push_jitter
    moves = contour_moves(landmarks, style, push, upward, asymmetry)
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
    record["max_shift"] = float(np.sqrt(dx * dx + dy * dy).max() / size) if dx.size else 0.0
    out = remap_box(image, box, xs - dx, ys - dy)
    return RetouchResult(out, record)


def lift_face_rbf(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                  rng: np.random.Generator) -> RetouchResult:
    """Face slimming by scattered-data interpolation of the contour displacements.

    The jaw contour moves by its target displacement while the eyes, nose (and mouth) are pinned;
    a compactly supported (Wendland) RBF interpolates the field in between, so nothing moves
    beyond the support radius.
    """
    size = landmarks.face_size()
    style = str(rng.choice(STYLES))
    support = float(rng.uniform(0.24, 0.34))
    push_jitter = float(rng.uniform(0.75, 1.25))
    upward = float(rng.uniform(0.0, 0.35))
    asymmetry = float(rng.uniform(-0.15, 0.15))
    pin_mouth = bool(rng.random() < 0.7)
    push = PUSH * size * strength * push_jitter
    record = {"op": "face", "strength": float(strength), "style": style, "support": support,
              "push": push / size, "upward": upward, "pin_mouth": pin_mouth}
    if strength <= 0:
        return RetouchResult(image.copy(), record)

    jaw = landmarks.jaw()
    moves = contour_moves(landmarks, style, push, upward, asymmetry)
    pins = [landmarks.eye_centres(), landmarks.nose_tip()[None], landmarks.face_centre()[None]]
    if pin_mouth:
        pins.append(landmarks.lips()[::4])
    anchors = np.concatenate(pins).astype(np.float32)
    centres = np.concatenate([jaw, anchors])
    targets = np.concatenate([moves, np.zeros_like(anchors)])
    radius = support * size
    gram = wendland(np.linalg.norm(centres[:, None] - centres[None], axis=2) / radius)
    weights = np.linalg.solve(gram + 1e-3 * np.eye(len(centres)), targets)  # [N, 2]

    x0, y0 = centres.min(axis=0) - radius
    x1, y1 = centres.max(axis=0) + radius
    box = clip_box(x0, y0, x1, y1, image.shape)
    ys, xs = np.mgrid[box[1]:box[3], box[0]:box[2]].astype(np.float32)
    dx = np.zeros_like(xs)
    dy = np.zeros_like(xs)
    for (cx, cy), (wx, wy) in zip(centres, weights):
        phi = wendland(np.hypot(xs - cx, ys - cy) / radius).astype(np.float32)
        dx += wx * phi
        dy += wy * phi
    record["max_shift"] = float(np.sqrt(dx * dx + dy * dy).max() / size) if dx.size else 0.0
    out = remap_box(image, box, xs - dx, ys - dy)
    return RetouchResult(out, record)
