"""Face lifting by mesh and scattered-data warps (the control-point family of beauty apps).

All apis move the same kind of controls: the lower face contour (jaw, cheeks, V-line or chin
profile from :func:`~mofrr_core.retouch.lifting.contour_moves`) towards the face centre, with
the eyes, nose, face centre (and optionally the mouth) pinned and an outer ring around the
contour pinned; they differ in how the displacement field between the controls is built
(:mod:`mofrr_core.retouch.warps`):

- ``mls``: moving least squares (affine or similarity);
- ``tps``: thin-plate spline;
- ``pwa``: piecewise affine on a Delaunay mesh;
- ``squeeze``: no controls: a horizontal compression of the lower face in the eye-line frame;
- ``lines``: Beier-Neely feature lines (jaw segments and pinned feature lines);
- ``idw``: Shepard inverse-distance weighting.
"""

from __future__ import annotations

import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.lifting import PUSH, STYLES, contour_moves
from mofrr_core.retouch.warps import idw_field, lines_field, mls_field, pwa_field, tps_field, warp_box
from mofrr_core.spec import RetouchResult

MESH_STYLES = (*STYLES, "chin")
STEP = 0.02  # field grid step / face size (the fields are smooth at this scale)
# push per api relative to liquify's PUSH (calibrated so every api's mean input PSNR lands near ~30 dB)
GAINS = {"mls": 1.4, "tps": 1.0, "pwa": 1.35, "idw": 1.45, "lines": 1.8}


def mesh_moves(landmarks: FaceLandmarks, style: str, push: float, upward: float, asymmetry: float) -> np.ndarray:
    """Contour displacements ``[N, 2]``; ``chin`` lifts and narrows the chin (a short, rounder chin)."""
    if style != "chin":
        return contour_moves(landmarks, style, push, upward, asymmetry)
    jaw = landmarks.jaw()
    t = np.linspace(-1.0, 1.0, len(jaw), dtype=np.float32)
    profile = np.exp(-(t / 0.3) ** 2) * (1.0 + asymmetry * np.sign(t))
    towards = landmarks.face_centre() - jaw
    towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-6)
    towards[:, 1] -= 0.5 + upward
    return (towards * (push * profile)[:, None]).astype(np.float32)


def lift_controls(landmarks: FaceLandmarks, moves: np.ndarray, support: float,
                  pin_mouth: bool) -> tuple[np.ndarray, np.ndarray]:
    """Control points and their moves: the contour, the pinned features and a pinned outer ring."""
    jaw = landmarks.jaw()
    outward = jaw - landmarks.face_centre()
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-6)
    outer = jaw + outward * support * landmarks.face_size()
    pins = [landmarks.eye_centres(), landmarks.nose_tip()[None], landmarks.face_centre()[None], outer]
    if pin_mouth:
        pins.append(landmarks.lips()[::4])
    fixed = np.concatenate(pins).astype(np.float64)
    return np.concatenate([jaw, fixed]), np.concatenate([moves, np.zeros_like(fixed)])


def _draw_common(rng: np.random.Generator) -> dict:
    return {"style": str(rng.choice(MESH_STYLES)), "support": float(rng.uniform(0.16, 0.28)),
            "push_jitter": float(rng.uniform(0.75, 1.25)), "upward": float(rng.uniform(0.0, 0.35)),
            "asymmetry": float(rng.uniform(-0.15, 0.15)), "pin_mouth": bool(rng.random() < 0.6)}


def _warp(image: np.ndarray, landmarks: FaceLandmarks, strength: float, common: dict, record: dict,
          make_field, api: str) -> RetouchResult:
    """Build controls at this strength, the api's field over them, and warp inside the controls' hull."""
    size = landmarks.face_size()
    push = PUSH * GAINS[api] * size * strength * common["push_jitter"]
    record.update({"op": "face", "strength": float(strength), "push": push / size,
                   **{k: v for k, v in common.items() if k != "push_jitter"}})
    if strength <= 0:
        return RetouchResult(image.copy(), record)
    moves = mesh_moves(landmarks, common["style"], push, common["upward"], common["asymmetry"])
    points, all_moves = lift_controls(landmarks, moves, common["support"], common["pin_mouth"])
    margin = 0.5 * common["support"] * size
    out, shift = warp_box(image, points, make_field(landmarks, points, all_moves), STEP * size, margin)
    record["max_shift"] = shift / size
    return RetouchResult(out, record)


def lift_face_mls(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                  rng: np.random.Generator) -> RetouchResult:
    """Moving-least-squares deformation of the contour controls (affine or similarity)."""
    common = _draw_common(rng)
    kind = str(rng.choice(["affine", "similarity"]))
    alpha = float(rng.uniform(1.0, 1.6))
    return _warp(image, landmarks, strength, common, {"mls": kind, "alpha": alpha},
                 lambda face, p, m: mls_field(p, m, alpha, kind), "mls")


def lift_face_tps(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                  rng: np.random.Generator) -> RetouchResult:
    """Thin-plate-spline interpolation of the contour controls (slightly regularised)."""
    common = _draw_common(rng)
    smoothing = float(rng.uniform(0.0, 0.002))
    return _warp(image, landmarks, strength, common, {"smoothing": smoothing},
                 lambda face, p, m: tps_field(p, m, smoothing), "tps")


def lift_face_pwa(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                  rng: np.random.Generator) -> RetouchResult:
    """Piecewise-affine mesh warp: each Delaunay triangle of the controls moves affinely."""
    common = _draw_common(rng)
    return _warp(image, landmarks, strength, common, {}, lambda face, p, m: pwa_field(p, m), "pwa")


def lift_face_idw(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                  rng: np.random.Generator) -> RetouchResult:
    """Shepard inverse-distance-weighted field of the contour controls."""
    common = _draw_common(rng)
    power = float(rng.uniform(2.0, 3.5))
    return _warp(image, landmarks, strength, common, {"power": power}, lambda face, p, m: idw_field(p, m, power),
                 "idw")


def lift_face_lines(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                    rng: np.random.Generator) -> RetouchResult:
    """Beier-Neely feature-line morph: jaw segments move, pinned segments link the fixed controls."""
    common = _draw_common(rng)
    a_frac = float(rng.uniform(0.01, 0.04))
    b = float(rng.uniform(1.5, 2.2))

    def make(face: FaceLandmarks, points: np.ndarray, moves: np.ndarray):
        n = len(face.jaw())
        jaw, jaw_to = points[:n], points[:n] + moves[:n]
        src = np.stack([jaw[:-1], jaw[1:]], 1)
        dst = np.stack([jaw_to[:-1], jaw_to[1:]], 1)
        fixed = points[n:]
        pins = np.stack([fixed[:-1], fixed[1:]], 1)  # chained pins: features and the outer ring stay
        return lines_field(np.concatenate([src, pins]), np.concatenate([dst, pins]), a_frac * face.face_size(), b)

    return _warp(image, landmarks, strength, common, {"a": a_frac, "b": b}, make, "lines")


def lift_face_squeeze(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                      rng: np.random.Generator) -> RetouchResult:
    """Horizontal compression of the lower face towards its midline (eye-line frame), no controls."""
    size = landmarks.face_size()
    amount_jitter = float(rng.uniform(0.75, 1.25))
    peak = float(rng.uniform(0.15, 0.45))  # height of the strongest squeeze: 0 nose tip .. 1 chin
    spread = float(rng.uniform(0.35, 0.6))
    record = {"op": "face", "strength": float(strength), "peak": peak, "spread": spread}
    squeeze = 0.17 * strength * amount_jitter
    record["squeeze"] = squeeze
    if strength <= 0:
        return RetouchResult(image.copy(), record)
    left, right = landmarks.eye_centres()
    axis = (right - left) / max(float(np.linalg.norm(right - left)), 1e-6)
    down = np.array([-axis[1], axis[0]])
    centre = landmarks.nose_tip().astype(np.float64)
    jaw = landmarks.jaw()
    half_width = float(np.abs((jaw - centre) @ axis).max())
    chin_depth = float((landmarks.chin() - centre) @ down)

    def field(x: np.ndarray) -> np.ndarray:
        u = (x - centre) @ axis
        v = ((x - centre) @ down) / max(chin_depth, 1e-6)
        vertical = np.exp(-(((v - peak) / spread) ** 2)) * (v > -0.6)
        horizontal = np.clip(1.25 - np.abs(u) / (1.25 * half_width), 0.0, 1.0) ** 0.5
        return (-squeeze * u * vertical * horizontal)[:, None] * axis[None]

    outward = jaw - landmarks.face_centre()
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-6)
    hull = np.concatenate([jaw + 0.15 * size * outward, landmarks.eye_centres()])
    out, shift = warp_box(image, hull, field, STEP * size, 0.1 * size)
    record["max_shift"] = shift / size
    return RetouchResult(out, record)
