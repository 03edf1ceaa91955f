"""Whole photos: 5-point face alignment to the training geometry and feathered paste-back.

The networks are trained on FairFace-style crops (224 px, tight with margin, not FFHQ-aligned).
A face found in a photo is brought to that geometry by the similarity transform (rotation,
uniform scale, translation; least squares, Umeyama) that maps its five points (eye centres,
nose tip, mouth corners) onto :data:`TEMPLATE_224` scaled to the crop size, or, with the registry's
``alignment: upright``, by scale and translation only, snapped to a box of whole photo pixels that is
cut and resized (:func:`upright_alignment`). After
restoration only the *residual* ``restored - crop`` is warped back with the inverse transform and
added inside a feathered face mask (GFPGAN/CodeFormer style), so pixels outside the mask are
exactly unchanged and a large photo keeps its own fine detail.

Conventions: images are uint8 ``HxWx3`` RGB; points are float pixel ``(x, y)`` with pixel
centres at integer coordinates (OpenCV's convention); an alignment ``matrix`` is a ``[2, 3]``
affine map from photo pixels to crop pixels.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np

TEMPLATE_SIZE = 224
"""Side of the crops the template is measured in (the FairFace training crops)."""

# Mean over all 10,840 samples of the shared data (`../shared/data/faces/*.tar`, `<key>.landmarks.npy`,
# MediaPipe Face Mesh in 224x224 FairFace crops) of the MediaPipe points 468 and 473 (iris centres),
# 1 (nose tip), 61 and 291 (mouth corners), in that (image-left first, for an upright face) order:
#     pts = np.stack([np.load(f)[[468, 473, 1, 61, 291]] for f in every landmarks.npy]).mean(0)
# `measure_template()` recomputes it (tests/robustness checks it against the data). Per-point std is
# 6-20 px: the crops are loose (not aligned), so the mean is the geometry the networks saw most.
TEMPLATE_224 = np.array([
    [73.55, 68.42],    # eye centre, image-left (subject's right)
    [150.47, 67.91],   # eye centre, image-right
    [112.82, 120.47],  # nose tip
    [80.08, 153.75],   # mouth corner, image-left
    [145.52, 153.30],  # mouth corner, image-right
], dtype=np.float64)

# The mean MediaPipe face oval of the same samples after aligning each one to TEMPLATE_224 (five
# points, similarity), fitted with cv2.fitEllipse: centre (111.6, 100.0), full axes 167.8 x 204.7,
# upright. The paste-back mask is this ellipse enlarged by `MASK_DILATE`, kept inside the crop.
FACE_ELLIPSE_224 = (111.64, 100.02, 83.90, 102.34)  # cx, cy, semi-axis x, semi-axis y
MASK_DILATE = 1.1
MASK_FEATHER = 0.04  # gaussian sigma of the mask edge, as a fraction of the crop side
MASK_FLOOR = 1 / 512  # mask values below this are set to exactly 0 (outside pixels stay identical)

UPRIGHT_MAX_ROLL = 20.0  # degrees: a more tilted face is rotated upright by the alignment (upright_alignment)

MP_POINTS5 = (468, 473, 1, 61, 291)
MP_EYES_NO_IRIS = ([33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246],
                   [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466])
DLIB_EYES = (list(range(36, 42)), list(range(42, 48)))
DLIB_NOSE_TIP, DLIB_MOUTH = 30, (48, 54)


def template_points(size: int) -> np.ndarray:
    """``[5, 2]`` template points for a ``size`` x ``size`` crop (pixel-centre convention)."""
    return (TEMPLATE_224 + 0.5) * (size / TEMPLATE_SIZE) - 0.5


def points5_from_landmarks(landmarks: Any) -> np.ndarray:
    """Eye centres, nose tip and mouth corners ``[5, 2]`` float64 from any landmark set.

    Accepts a ``FaceLandmarks`` (anything with ``.points``) or an array ``[P, 2]``: 478 or 468
    MediaPipe face-mesh points (iris centres, or the eye-contour means without the iris), 68 dlib
    points, or 5 points already in this order. Points keep their anatomical order (no sorting by
    x), so rotated and upside-down faces align correctly.
    """
    points = np.asarray(getattr(landmarks, "points", landmarks), dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"landmarks must be an array [P, 2] of pixel (x, y), got shape {points.shape}")
    count = len(points)
    if count == 5:
        five = points
    elif count >= 478:
        five = points[list(MP_POINTS5)]
    elif count == 468:
        left, right = (points[idx].mean(axis=0) for idx in MP_EYES_NO_IRIS)
        five = np.stack([left, right, points[MP_POINTS5[2]], points[MP_POINTS5[3]], points[MP_POINTS5[4]]])
    elif count == 68:
        left, right = (points[idx].mean(axis=0) for idx in DLIB_EYES)
        five = np.stack([left, right, points[DLIB_NOSE_TIP], points[DLIB_MOUTH[0]], points[DLIB_MOUTH[1]]])
    else:
        raise ValueError(f"cannot get 5 face points from {count} landmarks "
                         "(known: 478/468 MediaPipe, 68 dlib, 5 points)")
    return np.ascontiguousarray(five, dtype=np.float64)


def estimate_alignment(points5: np.ndarray, size: int) -> np.ndarray:
    """``[2, 3]`` similarity transform (photo -> crop) best mapping ``points5`` onto the template.

    Least squares with uniform scale and no reflection (Umeyama 1991). ``ValueError`` for
    non-finite or collapsed points.
    """
    src = np.asarray(points5, dtype=np.float64)
    dst = template_points(size)
    if src.shape != (5, 2) or not np.isfinite(src).all():
        raise ValueError(f"need 5 finite face points, got {src.shape} {src.tolist()}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var < 1.0:  # all points within about a pixel: no usable face
        raise ValueError(f"face points are collapsed (spread {np.sqrt(src_var):.2f} px)")
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / src_var
    linear = scale * rotation
    return np.hstack([linear, (dst_mean - linear @ src_mean)[:, None]])


def upright_alignment(points5: np.ndarray, size: int) -> np.ndarray:
    """``[2, 3]`` alignment without rotation whose crop is a box of whole photo pixels resized to ``size``.

    Scale and translation are fitted by least squares like :func:`estimate_alignment`, then snapped so
    that :func:`align_face` cuts the box and resizes it (area when shrinking, bilinear when enlarging,
    no resampling at all when the box is ``size`` pixels wide) instead of warping: the crop has the
    pixel statistics of a resized photo, like the training crops, not those of a rotated one. Faces
    rolled by more than :data:`UPRIGHT_MAX_ROLL` degrees get the similarity of :func:`estimate_alignment`.
    """
    similarity = estimate_alignment(points5, size)
    if abs(np.degrees(np.arctan2(similarity[1, 0], similarity[0, 0]))) > UPRIGHT_MAX_ROLL:
        return similarity
    src, dst = np.asarray(points5, dtype=np.float64), template_points(size)
    src_c, dst_c = src - src.mean(axis=0), dst - dst.mean(axis=0)
    scale = (src_c * dst_c).sum() / (src_c**2).sum()
    shift = dst.mean(axis=0) - scale * src.mean(axis=0)
    side = max(2, round(size / scale))
    snapped = size / side
    x0, y0 = np.round(0.5 - (shift + 0.5) / snapped)  # crop pixel c = (p - x0 + 0.5) * snapped - 0.5
    return np.array([[snapped, 0.0, (0.5 - x0) * snapped - 0.5], [0.0, snapped, (0.5 - y0) * snapped - 0.5]])


ALIGNMENTS = ("similarity", "upright")


def face_alignment(points5: np.ndarray, size: int, alignment: str = "similarity") -> np.ndarray:
    """The ``[2, 3]`` alignment of whole-photo mode: ``"similarity"`` (:func:`estimate_alignment`) or
    ``"upright"`` (:func:`upright_alignment`)."""
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment: expected one of {', '.join(ALIGNMENTS)}, got {alignment!r}")
    return upright_alignment(points5, size) if alignment == "upright" else estimate_alignment(points5, size)


def crop_box(matrix: np.ndarray, size: int) -> tuple[int, int, int] | None:
    """``(x0, y0, side)`` when ``matrix`` is an :func:`upright_alignment` (a box of whole pixels), else ``None``."""
    (a, b, tx), (c, d, ty) = np.asarray(matrix, dtype=np.float64)
    if b != 0 or c != 0 or a != d or a <= 0:
        return None
    side, x0, y0 = size / a, 0.5 - (tx + 0.5) / a, 0.5 - (ty + 0.5) / a
    if max(abs(v - round(v)) for v in (side, x0, y0)) > 1e-6:
        return None
    return int(round(x0)), int(round(y0)), int(round(side))


def alignment_scale(matrix: np.ndarray) -> float:
    """Crop pixels per photo pixel of an alignment (``< 1``: the face is shrunk into the crop)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def invert_alignment(matrix: np.ndarray) -> np.ndarray:
    """The ``[2, 3]`` inverse map (crop -> photo)."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def crop_footprint(matrix: np.ndarray, size: int, shape: tuple[int, ...], pad: int = 2) -> tuple[int, int, int, int]:
    """Integer box ``(x0, y0, x1, y1)`` (end-exclusive, clipped to ``shape``) covering the crop in the photo."""
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    inverse = invert_alignment(matrix)
    mapped = corners @ inverse[:, :2].T + inverse[:, 2]
    height, width = shape[:2]
    x0, y0 = np.floor(mapped.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(mapped.max(axis=0)).astype(int) + pad + 1
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), width), min(int(y1), height)


def _shift(matrix: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """The alignment of the sub-image starting at ``(x0, y0)``."""
    shifted = np.array(matrix, dtype=np.float64)
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return shifted


def align_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp the face into a ``size`` x ``size`` uint8 crop (anti-aliased when shrinking).

    Only the crop's footprint in the photo is read, so the cost does not grow with the photo.
    Parts of the crop outside the photo are filled by reflection (like a padded training crop).
    """
    x0, y0, x1, y1 = crop_footprint(matrix, size, image.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError("the face lies outside the image")
    box = crop_box(matrix, size)
    if box is not None and (crop := _resize_box(image, box, size)) is not None:
        return crop
    roi = image[y0:y1, x0:x1]
    local = _shift(matrix, x0, y0)
    scale = alignment_scale(local)
    if scale < 0.75:  # shrink with area averaging first: a bilinear warp alone would alias
        width, height = max(2, round(roi.shape[1] * scale)), max(2, round(roi.shape[0] * scale))
        sx, sy = width / roi.shape[1], height / roi.shape[0]
        roi = cv2.resize(roi, (width, height), interpolation=cv2.INTER_AREA)
        # small pixel p' = (p + 0.5) * s - 0.5  =>  p = (p' + 0.5) / s - 0.5
        back = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
        local = local @ back
    return cv2.warpAffine(np.ascontiguousarray(roi), local, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def _resize_box(image: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray | None:
    """The box ``(x0, y0, side)`` of ``image`` (reflected where it leaves the photo) resized to ``size``;
    ``None`` when it leaves the photo by more than the part inside (then it is warped instead)."""
    x0, y0, side = box
    height, width = image.shape[:2]
    pads = (max(0, -y0), max(0, y0 + side - height), max(0, -x0), max(0, x0 + side - width))
    roi = image[max(y0, 0):min(y0 + side, height), max(x0, 0):min(x0 + side, width)]
    if max(pads[:2]) >= roi.shape[0] or max(pads[2:]) >= roi.shape[1]:
        return None
    if any(pads):
        roi = cv2.copyMakeBorder(roi, *pads, cv2.BORDER_REFLECT_101)
    if side == size:
        return np.ascontiguousarray(roi)
    return cv2.resize(roi, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)


@lru_cache(maxsize=8)
def _face_mask(size: int, dilate: float, feather: float) -> np.ndarray:
    scale = size / TEMPLATE_SIZE
    cx, cy, ax, ay = FACE_ELLIPSE_224
    sigma = max(feather * size, 0.5)
    margin = int(np.ceil(2.5 * sigma))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    inside = (((xx - ((cx + 0.5) * scale - 0.5)) / (ax * scale * dilate)) ** 2
              + ((yy - ((cy + 0.5) * scale - 0.5)) / (ay * scale * dilate)) ** 2) <= 1.0
    inner = np.zeros((size, size), dtype=bool)
    inner[margin:size - margin, margin:size - margin] = True
    mask = cv2.GaussianBlur((inside & inner).astype(np.float32), (0, 0), sigma)
    mask[mask < MASK_FLOOR] = 0.0
    mask[[0, -1], :] = 0.0  # the crop border itself is always outside
    mask[:, [0, -1]] = 0.0
    mask.setflags(write=False)
    return mask


def face_mask(size: int, dilate: float = MASK_DILATE, feather: float = MASK_FEATHER) -> np.ndarray:
    """Feathered face mask ``[size, size]`` float32 in ``[0, 1]`` in crop coordinates (read-only).

    The template face ellipse (enlarged by ``dilate``), kept inside the crop and blurred by a
    gaussian of sigma ``feather * size``; values below ``1/512`` are exactly 0.
    """
    return _face_mask(int(size), float(dilate), float(feather))


def _warp_back(array: np.ndarray, matrix: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return cv2.warpAffine(array, _shift(matrix, x0, y0), (x1 - x0, y1 - y0),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def paste_mask(matrix: np.ndarray, size: int, shape: tuple[int, ...],
               mask: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The face mask in photo coordinates: ``(mask [y1-y0, x1-x0] float32, box (x0, y0, x1, y1))``.

    Pixels outside ``box``, and inside it where the mask is 0, are never changed by :func:`paste_back`.
    """
    box = crop_footprint(matrix, size, shape)
    mask = face_mask(size) if mask is None else np.asarray(mask, dtype=np.float32)
    warped = _warp_back(np.ascontiguousarray(mask), matrix, box)
    warped[warped < MASK_FLOOR] = 0.0
    return warped, box


def full_paste_mask(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> np.ndarray:
    """:func:`paste_mask` as a full ``[H, W]`` float32 image (convenient for small images and tests)."""
    local, (x0, y0, x1, y1) = paste_mask(matrix, size, shape)
    full = np.zeros(shape[:2], dtype=np.float32)
    full[y0:y1, x0:x1] = local
    return full


def paste_back(image: np.ndarray, restored: np.ndarray, matrix: np.ndarray, *, crop: np.ndarray | None = None,
               mask: np.ndarray | None = None, inplace: bool = False) -> np.ndarray:
    """Add the restoration residual ``restored - crop`` back into the photo inside the face mask.

    ``restored`` is the restored ``size`` x ``size`` crop and ``crop`` the aligned crop the
    restorer was given (recomputed with :func:`align_face` when omitted). The residual and the
    feathered mask go back through the inverse transform; a new uint8 image is returned (``image``
    itself with ``inplace=True``) and pixels where the mask is 0 are bit-identical to ``image``.
    """
    restored = np.asarray(restored)
    size = restored.shape[0]
    if restored.shape[:2] != (size, size) or restored.ndim != 3:
        raise ValueError(f"restored crop must be square HxWx3, got shape {restored.shape}")
    crop = align_face(image, matrix, size) if crop is None else np.asarray(crop)
    if crop.shape != restored.shape:
        raise ValueError(f"crop {crop.shape} and restored crop {restored.shape} differ in shape")
    weights, (x0, y0, x1, y1) = paste_mask(matrix, size, image.shape, mask)
    out = image if inplace else image.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    residual = restored.astype(np.float32) - crop.astype(np.float32)
    change = _warp_back(residual, matrix, (x0, y0, x1, y1)) * weights[..., None]
    roi = out[y0:y1, x0:x1]
    roi[...] = np.clip(np.rint(roi.astype(np.float32) + change), 0, 255).astype(np.uint8)
    return out


def measure_template(landmark_arrays) -> np.ndarray:
    """Recompute :data:`TEMPLATE_224` from MediaPipe 478-point landmark arrays (224 px crops)."""
    points = [np.asarray(a, dtype=np.float64)[list(MP_POINTS5)] for a in landmark_arrays]
    if not points:
        raise ValueError("no landmark arrays given")
    return np.mean(points, axis=0)


# -- finding faces of any size in a photo of any size ------------------------------------------------
SEARCH_WINDOW = 256
"""Side (px) of the square windows a face detector is given; no detector ever sees more pixels."""
SEARCH_FIRST_SCALE = 0.25
"""Finest pyramid level: the photo shrunk 4x, so one window covers 1024 photo pixels. A full-range
detector finds faces of at least 1/8 of its window (measured with MediaPipe's full-range BlazeFace),
that is faces of 128 photo px (about 28 px between the eyes) and up."""
NMS_IOU = 0.3
NMS_INSIDE = 0.7
"""Two boxes are one face's when their IoU reaches :data:`NMS_IOU` or the smaller lies this much inside the other."""


def pyramid_scales(height: int, width: int, window: int = SEARCH_WINDOW, first: float = SEARCH_FIRST_SCALE
                   ) -> list[float]:
    """Scales (level px per photo px) of the search pyramid, finest first, ending with the whole photo
    fitted into one window. Each level is half the previous one; every face of at least ``window / 8``
    level px and at most ``window / 2`` lies whole inside one of the level's half-overlapping windows."""
    longest = max(height, width)
    scales, scale = [], first
    while longest * scale > window:
        scales.append(scale)
        scale /= 2
    return scales + [window / longest]


def window_starts(length: int, window: int) -> list[int]:
    """Starts of windows of ``window`` px covering ``0..length`` with half overlap."""
    if length <= window:
        return [0]
    return list(range(0, length - window, window // 2)) + [length - window]


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def find_face_boxes(image: np.ndarray, detect_boxes, window: int = SEARCH_WINDOW,
                    first: float = SEARCH_FIRST_SCALE) -> list[tuple[float, float, float, float, float]]:
    """Face boxes ``(x0, y0, x1, y1, score)`` in photo pixels, best first, overlaps merged.

    ``detect_boxes(window_image)`` returns ``(x0, y0, x1, y1, score)`` in the window's pixels; it
    is called on every window of every pyramid level (:func:`pyramid_scales`), never on more than
    ``window`` x ``window`` pixels, so its cost and memory do not grow with the photo beyond the
    number of windows (about 40 for 4000x3000). A last window holds the whole photo at half its
    side, for faces that fill the photo (a full-range detector misses faces that fill its window).
    """
    boxes = []
    level = image
    for scale in pyramid_scales(*image.shape[:2], window=window, first=first):
        level = _resize(level, scale * image.shape[1] / level.shape[1])  # from the previous level: cheap
        height, width = level.shape[:2]
        sx, sy = width / image.shape[1], height / image.shape[0]
        for y in window_starts(height, window):
            for x in window_starts(width, window):
                tile = np.ascontiguousarray(level[y:y + window, x:x + window])
                for x0, y0, x1, y1, score in detect_boxes(tile):
                    boxes.append(((x0 + x) / sx, (y0 + y) / sy, (x1 + x) / sx, (y1 + y) / sy, float(score)))
    # faces that fill the photo: the whole photo at half a window, centred on a black window
    small = _resize(level, window / 2 / max(level.shape[:2]))
    sx, sy = small.shape[1] / image.shape[1], small.shape[0] / image.shape[0]
    top, left = (window - small.shape[0]) // 2, (window - small.shape[1]) // 2
    padded = cv2.copyMakeBorder(small, top, window - small.shape[0] - top, left, window - small.shape[1] - left,
                                cv2.BORDER_CONSTANT, value=(0, 0, 0))
    for x0, y0, x1, y1, score in detect_boxes(padded):
        boxes.append(((x0 - left) / sx, (y0 - top) / sy, (x1 - left) / sx, (y1 - top) / sy, float(score)))
    return non_max_suppression(boxes)


def _overlap(a, b) -> tuple[float, float]:
    """``(intersection over union, intersection over the smaller box)`` of two boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0, 0.0
    inter = width * height
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter), inter / max(min(area_a, area_b), 1e-9)


def same_face(a, b, iou: float = NMS_IOU) -> bool:
    """Whether boxes ``a`` and ``b`` (``x0, y0, x1, y1, ...``) overlap as two finds of one face do: IoU of
    ``iou`` or more, or the smaller one at least :data:`NMS_INSIDE` inside the other."""
    overlap, inside = _overlap(a, b)
    return overlap >= iou or inside >= NMS_INSIDE


def non_max_suppression(boxes: list, iou: float = NMS_IOU) -> list:
    """Keep the best-scoring box of each group of boxes that overlap (:func:`same_face`)."""
    kept: list = []
    for box in sorted(boxes, key=lambda b: -b[4]):
        if not any(same_face(box, k, iou) for k in kept):
            kept.append(box)
    return kept


def square_crop(image: np.ndarray, box: tuple[float, ...], factor: float, side: int
                ) -> tuple[np.ndarray, float, float, float]:
    """A ``side`` x ``side`` crop of ``factor`` times the box's longer side around its centre.

    Returns ``(crop, x0, y0, scale)``: a crop pixel ``p`` is the photo pixel ``(p + 0.5) / scale - 0.5
    + (x0, y0)``. Parts outside the photo are black; only the crop's own area is read.
    """
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    extent = max(box[2] - box[0], box[3] - box[1]) * factor
    x0, y0 = int(np.floor(cx - extent / 2)), int(np.floor(cy - extent / 2))
    span = max(2, int(np.ceil(extent)))
    height, width = image.shape[:2]
    roi = image[max(y0, 0):min(y0 + span, height), max(x0, 0):min(x0 + span, width)]
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = span - top - roi.shape[0], span - left - roi.shape[1]
    if roi.size == 0:
        return np.zeros((side, side, 3), np.uint8), float(x0), float(y0), side / span
    padded = cv2.copyMakeBorder(np.ascontiguousarray(roi), top, max(bottom, 0), left, max(right, 0),
                                cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return _resize(padded, side / span), float(x0), float(y0), side / span
