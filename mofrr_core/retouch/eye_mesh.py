"""Eye enlarging beyond the radial bulge: elliptical scaling, lid opening and control-point warps.

- ``ellipse``: a uniform scale on an inner ellipse, blended back to the identity on an outer one;
- ``lid``: the lids pushed apart (a stretch across the eye only, nothing along it);
- ``mls`` / ``tps`` / ``pwa`` / ``idw`` / ``lines``: the eye contour (or an iris circle, for the
  "iris-only" look) moved outward from the eye centre, the centre and an outer ellipse pinned,
  the field built by the shared interpolators of :mod:`mofrr_core.retouch.warps`.

Sizes follow the eye width (at least 12 % of the interocular distance), the eye-line angle
gives the frame.
"""

from __future__ import annotations

import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.masks import FALLOFFS, clip_box, falloff, remap_box
from mofrr_core.retouch.warps import idw_field, lines_field, mls_field, pwa_field, ring, tps_field, warp_box
from mofrr_core.spec import RetouchResult

CONTROL_GAIN = 0.3  # contour moved outward by this share of its distance to the centre at strength 1
# per control api (calibrated so every api's mean input PSNR lands near ~36 dB)
GAINS = {"mls": 1.65, "tps": 0.85, "pwa": 1.3, "idw": 1.65, "lines": 1.3}
SCALE_GAIN = 0.27  # inner-ellipse magnification at strength 1
LID_GAIN = 0.8


def eye_frames(landmarks: FaceLandmarks) -> list[tuple[np.ndarray, float, float, np.ndarray]]:
    """Per eye (image-left first): centre, width, eye-line angle and contour."""
    centres = landmarks.eye_centres()
    widths = landmarks.eye_sizes()[:, 0]
    axis = centres[1] - centres[0]
    angle = float(np.arctan2(axis[1], axis[0]))
    minimum = 0.12 * landmarks.interocular()
    return [(c.astype(np.float64), max(float(w), minimum), angle, contour.astype(np.float64))
            for c, w, contour in zip(centres, widths, landmarks.eyes())]


def _local(xs: np.ndarray, ys: np.ndarray, centre: np.ndarray, angle: float):
    u, v = xs - centre[0], ys - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    return u, v, u * cos + v * sin, -u * sin + v * cos


def enlarge_eyes_ellipse(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                         rng: np.random.Generator) -> RetouchResult:
    """Uniform magnification inside an inner ellipse, smoothly back to the identity at an outer one."""
    inner = float(rng.uniform(0.45, 0.7))  # inner semi-axis / eye width
    outer = float(rng.uniform(1.2, 1.6))
    aspect = float(rng.uniform(0.65, 1.0))
    jitter = float(rng.uniform(0.8, 1.2))
    scale = SCALE_GAIN * strength * jitter
    record = {"op": "eye", "strength": float(strength), "inner": inner, "outer": outer, "aspect": aspect,
              "scale": scale}
    if strength <= 0:
        return RetouchResult(image.copy(), record)
    out = image
    for centre, width, angle, _ in eye_frames(landmarks):
        ra = outer * width
        box = clip_box(centre[0] - ra, centre[1] - ra, centre[0] + ra, centre[1] + ra, image.shape)
        ys, xs = np.mgrid[box[1]:box[3], box[0]:box[2]].astype(np.float32)
        u, v, along, across = _local(xs, ys, centre, angle)
        r = np.sqrt(along**2 + (across / aspect) ** 2) / width
        t = np.clip((outer - r) / (outer - inner), 0.0, 1.0)
        s = 1.0 + scale * t * t * (3.0 - 2.0 * t)
        out = remap_box(out, box, centre[0] + u / s, centre[1] + v / s)
    return RetouchResult(out, record)


def enlarge_eyes_lid(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                     rng: np.random.Generator) -> RetouchResult:
    """Open the eyes: a stretch across the eye (upper lid up, lower lid down), none along it."""
    kind = str(rng.choice(FALLOFFS))
    reach = float(rng.uniform(0.9, 1.3))  # along-eye semi-axis / eye width
    height = float(rng.uniform(0.6, 0.9))  # across semi-axis / eye width
    jitter = float(rng.uniform(0.8, 1.2))
    gain = float(np.clip(LID_GAIN * strength * jitter, 0.0, 0.75))
    record = {"op": "eye", "strength": float(strength), "falloff": kind, "reach": reach, "height": height,
              "gain": gain}
    if strength <= 0:
        return RetouchResult(image.copy(), record)
    out = image
    for centre, width, angle, _ in eye_frames(landmarks):
        ra, rb = reach * width, height * width
        r = max(ra, rb)
        box = clip_box(centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r, image.shape)
        ys, xs = np.mgrid[box[1]:box[3], box[0]:box[2]].astype(np.float32)
        u, v, along, across = _local(xs, ys, centre, angle)
        shrink = gain * falloff(np.abs(along) / ra, kind) * falloff(np.abs(across) / rb, kind)
        source_across = across * (1.0 - shrink)
        cos, sin = np.cos(angle), np.sin(angle)
        out = remap_box(out, box, centre[0] + along * cos - source_across * sin,
                        centre[1] + along * sin + source_across * cos)
    return RetouchResult(out, record)


def _draw_controls(rng: np.random.Generator) -> dict:
    return {"target": str(rng.choice(["eye", "iris"], p=[0.7, 0.3])), "reach": float(rng.uniform(1.3, 1.8)),
            "aspect": float(rng.uniform(0.75, 1.0)), "jitter": float(rng.uniform(0.8, 1.2)),
            "balance": float(rng.uniform(-0.08, 0.08))}


def eye_controls(centre: np.ndarray, width: float, angle: float, contour: np.ndarray, params: dict,
                 gain: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moving points (contour or iris circle), their moves, and the pinned centre + outer ellipse."""
    if params["target"] == "iris":
        moving = ring(centre, (0.22 * width, 0.22 * width), angle, 10).astype(np.float64)
        gain = 1.6 * gain  # the iris is small: a bigger relative scale for a visible edit
    else:
        moving = contour
    moves = (moving - centre) * gain
    outer = ring(centre, (params["reach"] * width, params["reach"] * width * params["aspect"]), angle, 14)
    fixed = np.concatenate([centre[None], outer.astype(np.float64)])
    return moving, moves, fixed


def _warp_eyes(image: np.ndarray, landmarks: FaceLandmarks, strength: float, params: dict, record: dict,
               make_field, api: str) -> RetouchResult:
    gain = CONTROL_GAIN * GAINS[api] * strength * params["jitter"]
    record.update({"op": "eye", "strength": float(strength), "gain": gain, **params})
    if strength <= 0:
        return RetouchResult(image.copy(), record)
    out, shift = image, 0.0
    for (centre, width, angle, contour), side in zip(eye_frames(landmarks), (-1.0, 1.0)):
        moving, moves, fixed = eye_controls(centre, width, angle, contour, params,
                                            gain * (1.0 + side * params["balance"]))
        r = params["reach"] * width
        field = make_field(moving, moves, fixed, width)
        out, s = warp_box(out, fixed[1:], field, max(0.06 * width, 1.0), 0.25 * r)
        shift = max(shift, s)
    record["max_shift"] = shift / landmarks.face_size()
    return RetouchResult(out, record)


def _points(moving, moves, fixed):
    return np.concatenate([moving, fixed]), np.concatenate([moves, np.zeros_like(fixed)])


def enlarge_eyes_mls(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                     rng: np.random.Generator) -> RetouchResult:
    """Moving least squares around the eye contour (affine or similarity)."""
    params = _draw_controls(rng)
    kind = str(rng.choice(["affine", "similarity"]))
    return _warp_eyes(image, landmarks, strength, params, {"mls": kind},
                      lambda m, d, f, w: mls_field(*_points(m, d, f), 1.0, kind), "mls")


def enlarge_eyes_tps(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                     rng: np.random.Generator) -> RetouchResult:
    """Thin-plate spline around the eye contour."""
    params = _draw_controls(rng)
    return _warp_eyes(image, landmarks, strength, params, {}, lambda m, d, f, w: tps_field(*_points(m, d, f)),
                      "tps")


def enlarge_eyes_pwa(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                     rng: np.random.Generator) -> RetouchResult:
    """Piecewise-affine mesh around the eye contour."""
    params = _draw_controls(rng)
    return _warp_eyes(image, landmarks, strength, params, {}, lambda m, d, f, w: pwa_field(*_points(m, d, f)),
                      "pwa")


def enlarge_eyes_idw(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                     rng: np.random.Generator) -> RetouchResult:
    """Shepard inverse-distance weighting around the eye contour."""
    params = _draw_controls(rng)
    power = float(rng.uniform(2.0, 3.5))
    return _warp_eyes(image, landmarks, strength, params, {"power": power},
                      lambda m, d, f, w: idw_field(*_points(m, d, f), power), "idw")


def enlarge_eyes_lines(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                       rng: np.random.Generator) -> RetouchResult:
    """Beier-Neely feature lines: the closed eye contour's segments move outward, the outer ring stays."""
    params = _draw_controls(rng)
    a_frac = float(rng.uniform(0.05, 0.15))
    b = float(rng.uniform(1.5, 2.2))

    def make(moving, moves, fixed, width):
        moved = moving + moves
        src = np.stack([moving, np.roll(moving, -1, 0)], 1)
        dst = np.stack([moved, np.roll(moved, -1, 0)], 1)
        outer = fixed[1:]
        pins = np.stack([outer, np.roll(outer, -1, 0)], 1)
        return lines_field(np.concatenate([src, pins]), np.concatenate([dst, pins]), a_frac * width, b)

    return _warp_eyes(image, landmarks, strength, params, {"a": a_frac, "b": b}, make, "lines")
