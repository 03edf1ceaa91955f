"""Shared warp machinery of the geometric ops: scattered-data fields, windows and the remap.

Every geometric api describes its edit as *control points* ``points`` [N, 2] that move by
``moves`` [N, 2] (pins move by 0) and asks one interpolator for the forward displacement
``d(x)`` on a grid; the image is then resampled at ``x - d(x)`` (the backward mapping of a
forward push, as :func:`~mofrr_core.retouch.lifting.lift_face` does). The interpolators are
different algorithms, not parameter changes of one:

- :func:`mls_field`: moving least squares (Schaefer et al. 2006), affine or similarity;
- :func:`tps_field`: thin-plate spline (``r^2 log r`` kernel + affine part, regularised);
- :func:`pwa_field`: piecewise affine on the Delaunay triangulation of the controls;
- :func:`idw_field`: Shepard inverse-distance weighting;
- :func:`lines_field`: Beier-Neely feature-line morphing (line pairs, a backward map by nature).

Fields are evaluated on a coarse grid (step ``~1 %`` of the face), upsampled bilinearly and
multiplied by a window that reaches 0 at the edge of the controls' convex hull (nothing outside
the hull moves).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from scipy.spatial import Delaunay

from mofrr_core.retouch.masks import clip_box, polygon_mask, remap_box

Field = Callable[[np.ndarray], np.ndarray]  # grid points [G, 2] -> forward displacement [G, 2]


def mls_field(points: np.ndarray, moves: np.ndarray, alpha: float = 1.0, kind: str = "affine") -> Field:
    """Moving-least-squares deformation ``f(v) - v`` with controls ``points -> points + moves``."""
    p = points.astype(np.float64)
    q = p + moves

    def field(v: np.ndarray) -> np.ndarray:
        d2 = ((v[:, None, :] - p[None]) ** 2).sum(-1)
        w = 1.0 / np.maximum(d2, 1e-6) ** alpha  # [G, N]
        wsum = w.sum(1, keepdims=True)
        p_star = (w @ p) / wsum
        q_star = (w @ q) / wsum
        ph = p[None] - p_star[:, None]  # [G, N, 2]
        qh = q[None] - q_star[:, None]
        vh = v - p_star
        if kind == "affine":
            a = np.einsum("gn,gni,gnj->gij", w, ph, ph) + 1e-9 * np.eye(2)
            b = np.einsum("gn,gni,gnj->gij", w, ph, qh)
            m = np.linalg.solve(a, b)
            out = np.einsum("gi,gij->gj", vh, m) + q_star
        elif kind == "similarity":
            mu = np.einsum("gn,gni,gni->g", w, ph, ph)[:, None] + 1e-9
            perp_p = np.stack([-ph[..., 1], ph[..., 0]], -1)  # p_hat rotated by +90 degrees
            c = np.einsum("gn,gni,gni->g", w, qh, ph)
            s = np.einsum("gn,gni,gni->g", w, qh, perp_p)
            vx, vy = vh[:, 0], vh[:, 1]
            out = np.stack([c * vx - s * vy, s * vx + c * vy], -1) / mu + q_star
        else:
            raise ValueError(f"unknown MLS kind {kind!r} (known: affine, similarity)")
        return out - v

    return field


def tps_field(points: np.ndarray, moves: np.ndarray, smoothing: float = 0.0) -> Field:
    """Thin-plate spline interpolation of ``moves`` (kernel ``r^2 log r``, plus an affine part)."""
    p = points.astype(np.float64)
    scale = max(float(np.ptp(p, axis=0).max()), 1.0)  # well-conditioned kernel in normalised units
    pn = p / scale

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return 0.5 * r2 * np.log(np.maximum(r2, 1e-12))

    n = len(p)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = kernel(pn, pn) + smoothing * np.eye(n)
    system[:n, n:] = np.c_[np.ones(n), pn]
    system[n:, :n] = system[:n, n:].T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = moves
    coef = np.linalg.lstsq(system, rhs, rcond=None)[0]

    def field(v: np.ndarray) -> np.ndarray:
        vn = v / scale
        return kernel(vn, pn) @ coef[:n] + np.c_[np.ones(len(v)), vn] @ coef[n:]

    return field


def pwa_field(points: np.ndarray, moves: np.ndarray) -> Field:
    """Piecewise-affine field on the Delaunay triangles of ``points`` (zero outside their hull)."""
    tri = Delaunay(points.astype(np.float64))

    def field(v: np.ndarray) -> np.ndarray:
        simplex = tri.find_simplex(v)
        inside = simplex >= 0
        out = np.zeros_like(v)
        t = tri.transform[simplex[inside]]  # [G, 3, 2]: inverse affine + offset
        bary = np.einsum("gij,gj->gi", t[:, :2], v[inside] - t[:, 2])
        bary = np.c_[bary, 1.0 - bary.sum(1)]
        out[inside] = np.einsum("gk,gkj->gj", bary, moves[tri.simplices[simplex[inside]]])
        return out

    return field


def idw_field(points: np.ndarray, moves: np.ndarray, power: float = 2.0) -> Field:
    """Shepard's inverse-distance-weighted average of ``moves`` (exact at the controls)."""
    p = points.astype(np.float64)

    def field(v: np.ndarray) -> np.ndarray:
        d2 = ((v[:, None] - p[None]) ** 2).sum(-1)
        w = 1.0 / np.maximum(d2, 1e-6) ** (power / 2)
        return (w @ moves) / w.sum(1, keepdims=True)

    return field


def lines_field(src: np.ndarray, dst: np.ndarray, a: float, b: float = 2.0, p: float = 0.5) -> Field:
    """Beier-Neely field morphing: segments ``src`` [L, 2, 2] appear at ``dst`` [L, 2, 2] in the output.

    Returns the *forward* displacement convention ``x - source(x)`` so that it plugs into
    :func:`warp_box` like the other fields (``source = x - d``).
    """
    s = src.astype(np.float64)
    t = dst.astype(np.float64)

    def perp(u: np.ndarray) -> np.ndarray:
        return np.stack([-u[..., 1], u[..., 0]], -1)

    def field(x: np.ndarray) -> np.ndarray:
        pq_d = t[:, 1] - t[:, 0]  # [L, 2]
        len_d = np.maximum(np.linalg.norm(pq_d, axis=1), 1e-6)
        rel = x[:, None] - t[None, :, 0]  # [G, L, 2]
        u = (rel * pq_d).sum(-1) / len_d**2
        v = (rel * perp(pq_d)).sum(-1) / len_d
        pq_s = s[:, 1] - s[:, 0]
        len_s = np.maximum(np.linalg.norm(pq_s, axis=1), 1e-6)
        source = s[None, :, 0] + u[..., None] * pq_s + v[..., None] * perp(pq_s) / len_s[:, None]
        dist = np.where(u < 0, np.linalg.norm(rel, axis=-1),
                        np.where(u > 1, np.linalg.norm(x[:, None] - t[None, :, 1], axis=-1), np.abs(v)))
        w = (len_d**p / (a + dist)) ** b
        back = ((source - x[:, None]) * w[..., None]).sum(1) / w.sum(1, keepdims=True)
        return -back

    return field


def hull_window(shape: tuple[int, int], hull: np.ndarray, margin: float) -> np.ndarray:
    """``HxW`` (box-local pixels): 1 deep inside the convex ``hull``, 0 at its edge (smoothstep over ``margin``)."""
    inside = polygon_mask(shape, hull).astype(np.uint8)
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    t = np.clip(distance / max(margin, 1e-6), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def warp_box(image: np.ndarray, hull: np.ndarray, field: Field, step: float,
             margin: float) -> tuple[np.ndarray, float]:
    """Resample ``image`` at ``x - field(x)`` inside the convex ``hull`` [K, 2] (nothing moves outside it).

    The field is evaluated every ``step`` px, upsampled, and faded out over ``margin`` px inside
    the hull's edge. Returns the warped image and the largest displacement in pixels.
    """
    hull = np.asarray(hull, np.float64)
    (x0, y0), (x1, y1) = hull.min(0), hull.max(0)
    box = clip_box(x0, y0, x1, y1, image.shape)
    x0, y0, x1, y1 = box
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image.copy(), 0.0
    step = max(float(step), 1.0)
    nx, ny = max(int(np.ceil((x1 - x0 - 1) / step)) + 1, 2), max(int(np.ceil((y1 - y0 - 1) / step)) + 1, 2)
    gx, gy = np.meshgrid(np.linspace(x0, x1 - 1, nx), np.linspace(y0, y1 - 1, ny))
    d = field(np.c_[gx.ravel(), gy.ravel()]).reshape(ny, nx, 2).astype(np.float32)
    size = (x1 - x0, y1 - y0)
    window = hull_window((y1 - y0, x1 - x0), hull - (x0, y0), margin)
    dx = cv2.resize(d[..., 0], size, interpolation=cv2.INTER_LINEAR) * window
    dy = cv2.resize(d[..., 1], size, interpolation=cv2.INTER_LINEAR) * window
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    shift = float(np.sqrt(dx * dx + dy * dy).max())
    return remap_box(image, box, xs - dx, ys - dy), shift


def ring(centre: np.ndarray, radii: tuple[float, float], angle: float, count: int) -> np.ndarray:
    """``count`` points on an ellipse (semi-axes ``radii``, rotated by ``angle``) around ``centre``."""
    t = np.linspace(0.0, 2 * np.pi, count, endpoint=False)
    local = np.c_[radii[0] * np.cos(t), radii[1] * np.sin(t)]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (local @ rot.T + centre).astype(np.float32)
