"""Soft region masks and smooth warp helpers shared by the retouching ops.

All sizes are fractions of the face size (:meth:`FaceLandmarks.face_size`), so an op does the
same thing to a 224 px crop and to a 1024 px photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks

FALLOFFS = ("cosine", "quartic", "smoothstep", "gauss")
SHIFT = 4  # sub-pixel bits for cv2.fillPoly
MASK_SIZE = 320  # skin masks of bigger faces are computed at this face size and upsampled


def polygon_mask(shape: tuple[int, ...], polygon: np.ndarray, convex: bool = True) -> np.ndarray:
    """A binary float32 ``HxW`` mask of a polygon (its convex hull when ``convex``), drawn sub-pixel."""
    h, w = shape[:2]
    mask = np.zeros((h, w), dtype=np.uint8)
    points = np.asarray(polygon, dtype=np.float32)
    if convex:
        points = cv2.convexHull(points).reshape(-1, 2)
    fixed = np.round(points * (1 << SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_AA, shift=SHIFT)
    return mask.astype(np.float32)


def _blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return mask
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)


def _grow(mask: np.ndarray, pixels: float) -> np.ndarray:
    """Dilate (``pixels`` > 0) or erode (< 0) a binary mask by about ``|pixels|``."""
    radius = int(round(abs(pixels)))
    if radius < 1:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    op = cv2.dilate if pixels > 0 else cv2.erode
    return op(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def skin_colour_weight(image: np.ndarray, landmarks: FaceLandmarks, tolerance: float = 2.5) -> np.ndarray:
    """``HxW`` float32 in [0, 1]: how much each pixel looks like this face's cheek skin (YCrCb distance).

    The skin colour is measured on the cheeks (median and spread, with floors so that a flat cheek
    does not make the test too strict); luminance gets a wide tolerance (shading), chroma a
    tighter one. Hair, glasses, beards and background inside the face oval get a low weight.
    """
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    sample = np.maximum(polygon_mask(image.shape, landmarks.left_cheek()),
                        polygon_mask(image.shape, landmarks.right_cheek())) > 0
    pixels = ycc[sample]
    if len(pixels) < 16:  # cheeks outside the image or tiny: no colour gating
        return np.ones(image.shape[:2], np.float32)
    centre = np.median(pixels, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(pixels - centre), axis=0), [10.0, 3.0, 3.0])
    spread = spread * np.array([2.5, 1.0, 1.0], np.float32)
    distance = np.sqrt((((ycc - centre) / spread) ** 2).sum(axis=2))
    weight = np.exp(-0.5 * np.maximum(distance - tolerance, 0.0) ** 2).astype(np.float32)
    return _blur(weight, 0.012 * landmarks.face_size())


def skin_mask(shape: tuple[int, ...], landmarks: FaceLandmarks, feather: float = 0.04,
              inset: float = 0.02, exclude_margin: float = 0.025, image: np.ndarray | None = None) -> np.ndarray:
    """Soft skin mask ``HxW`` float32 in [0, 1]: face oval minus eyes, brows and lips.

    ``feather`` is the Gaussian sigma of the edges, ``inset`` how far the oval edge is pulled in
    and ``exclude_margin`` how far the eyes/brows/lips holes are grown, all as fractions of the face size.
    Given the ``image``, pixels whose colour is far from the cheeks' (hair, glasses) are also left out
    (:func:`skin_colour_weight`). Faces bigger than ``MASK_SIZE`` px are masked downscaled (the
    mask is smooth) and the mask is upsampled.
    """
    scale = MASK_SIZE / landmarks.face_size()
    if scale < 1.0:
        h, w = shape[:2]
        sw, sh = max(int(round(w * scale)), 1), max(int(round(h * scale)), 1)
        small = _skin_mask((sh, sw), landmarks.scaled(sw / w, sh / h), feather, inset, exclude_margin,
                           None if image is None else cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA))
        return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    return _skin_mask(shape, landmarks, feather, inset, exclude_margin, image)


def _skin_mask(shape: tuple[int, ...], landmarks: FaceLandmarks, feather: float, inset: float,
               exclude_margin: float, image: np.ndarray | None) -> np.ndarray:
    size = landmarks.face_size()
    oval = _grow(polygon_mask(shape, landmarks.face_oval()), -inset * size)
    holes = np.zeros_like(oval)
    for region in [*landmarks.eyes(), *landmarks.brows(), landmarks.lips()]:
        holes = np.maximum(holes, polygon_mask(shape, region))
    margin = exclude_margin * size
    holes = _grow(holes, margin)
    # the holes' feather is half their margin: the regions themselves stay (almost) untouched
    mask = _blur(oval, feather * size) - _blur(holes, 0.45 * margin)
    if image is not None:
        mask = mask * skin_colour_weight(image, landmarks)
    return np.clip(mask, 0.0, 1.0)


def falloff(r: np.ndarray, kind: str = "cosine") -> np.ndarray:
    """A smooth bump of normalised radius ``r``: 1 at 0, 0 for ``r >= 1`` (compact support)."""
    r = np.clip(r, 0.0, 1.0)
    if kind == "cosine":
        return 0.5 * (1.0 + np.cos(np.pi * r))
    if kind == "quartic":
        return (1.0 - r * r) ** 2
    if kind == "smoothstep":
        t = 1.0 - r
        return t * t * (3.0 - 2.0 * t)
    if kind == "gauss":  # Gaussian tapered to zero at r = 1
        return (np.exp(-4.0 * r * r) - np.exp(-4.0)) / (1.0 - np.exp(-4.0))
    raise ValueError(f"unknown falloff {kind!r} (known: {', '.join(FALLOFFS)})")


def clip_box(x0: float, y0: float, x1: float, y1: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """An integer box ``(x0, y0, x1, y1)`` grown to whole pixels and clipped to the image."""
    h, w = shape[:2]
    return (int(np.clip(np.floor(x0) - 1, 0, w)), int(np.clip(np.floor(y0) - 1, 0, h)),
            int(np.clip(np.ceil(x1) + 2, 0, w)), int(np.clip(np.ceil(y1) + 2, 0, h)))


def remap_box(image: np.ndarray, box: tuple[int, int, int, int], map_x: np.ndarray, map_y: np.ndarray,
              interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """``image`` with the ``box`` region resampled at absolute source coordinates ``map_x, map_y``."""
    x0, y0, x1, y1 = box
    out = image.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    out[y0:y1, x0:x1] = cv2.remap(image, map_x.astype(np.float32), map_y.astype(np.float32), interpolation,
                                  borderMode=cv2.BORDER_REFLECT_101)
    return out


REGIONS = ("skin", "face", "image")
"""What an api may edit: the skin mask, the whole face oval (eyes and lips included) or the whole image."""


def face_mask(shape: tuple[int, ...], landmarks: FaceLandmarks, feather: float = 0.04, grow: float = 0.0) -> np.ndarray:
    """Soft mask of the face oval (features included), grown by ``grow`` and feathered by ``feather`` x face size."""
    size = landmarks.face_size()
    oval = _grow(polygon_mask(shape, landmarks.face_oval()), grow * size)
    return np.clip(_blur(oval, feather * size), 0.0, 1.0)


def region_mask(image: np.ndarray, landmarks: FaceLandmarks, region: str, feather: float) -> np.ndarray:
    """``HxW`` float32 weight of an api's ``region`` (``REGIONS``): skin mask, face oval or all ones."""
    if region == "skin":
        return skin_mask(image.shape, landmarks, feather=feather, image=image)
    if region == "face":
        return face_mask(image.shape, landmarks, feather=feather)
    if region == "image":
        return np.ones(image.shape[:2], np.float32)
    raise ValueError(f"unknown region {region!r} (known: {', '.join(REGIONS)})")
