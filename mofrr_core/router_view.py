"""What the router reads of a face in whole-photo mode (the registry's ``router_crop``).

- ``shared``: the experts' aligned crop, resized to the router's size.
- ``own``: the face cut from the photo a second time, aligned the same way, directly at the router's size
  (one resampling, not two).
- ``native``: the photo's own pixels, not resampled at all: a box of the router's size centred on the face,
  its origin on the photo's 8 px grid, where JPEG's blocks start (:func:`native_crop`). A warp or a smoothing
  filter resamples the pixels it touches and breaks the 8x8 block pattern a JPEG photo carries everywhere
  else; a face cut at another scale, or on another phase of that grid, hides the break from the router. In
  photos without a grid (resized after the retouching) the unresampled pixels still keep more of a warp's
  traces than a resized crop. Used when the face's box is :data:`NATIVE_SCALE_RANGE` times the router's size;
  otherwise ``own``: a smaller face would fill less of the view than the faces the router learned from, and it
  reads such a view worse than a resized crop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mofrr_core.faces import align_face, crop_box, face_alignment

if TYPE_CHECKING:
    from mofrr_core.pipeline import Pipeline

ROUTER_CROPS = ("shared", "own", "native")
NATIVE_SCALE_RANGE = (0.9, 1.3)  # native: the face's upright box over the router's size, smallest and largest
JPEG_BLOCK = 8  # side of JPEG's blocks: native crops start on this grid of the photo


def native_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray | None:
    """The ``size`` x ``size`` box of photo pixels centred on the face of the upright alignment ``matrix``,
    not resized, its origin on the photo's :data:`JPEG_BLOCK` grid (parts outside the photo reflected);
    ``None`` when ``matrix`` is not upright or the face's box over ``size`` is outside :data:`NATIVE_SCALE_RANGE`."""
    box = crop_box(matrix, size)
    if box is None or not NATIVE_SCALE_RANGE[0] <= box[2] / size <= NATIVE_SCALE_RANGE[1]:
        return None
    x0, y0, side = box
    left, top = (JPEG_BLOCK * round((c + (side - size) / 2) / JPEG_BLOCK) for c in (x0, y0))
    height, width = image.shape[:2]
    window = image[max(top, 0):top + size, max(left, 0):left + size]
    if min(window.shape[:2]) < 2:
        return None
    pad = ((max(0, -top), max(0, top + size - height)), (max(0, -left), max(0, left + size - width)), (0, 0))
    reflect = max(pad[0]) < window.shape[0] and max(pad[1]) < window.shape[1]
    return np.ascontiguousarray(np.pad(window, pad[:image.ndim], mode="reflect" if reflect else "edge"))


class RouterCrops(NamedTuple):
    """What the router reads of each face of a photo: ``images`` (``None``: the experts' crops, resized) and,
    per face, ``views``: ``"native"`` (the photo's own pixels) or ``"resized"`` (a crop resampled to its size)."""

    images: list[np.ndarray] | None
    views: list[str]


def router_crops(pipeline: Pipeline, image: np.ndarray, faces: list) -> RouterCrops:
    """The faces of ``image`` (``usable_faces`` rows) as the router reads them, by ``pipeline.router_crop``."""
    size = pipeline.router_size
    if pipeline.router_crop == "shared" or (pipeline.router_crop == "own" and size == pipeline.face_crop_size):
        return RouterCrops(None, ["resized"] * len(faces))
    crops, views = [], []
    for _, points5, _ in faces:
        matrix = face_alignment(points5, size, pipeline.alignment)
        crop = native_crop(image, matrix, size) if pipeline.router_crop == "native" else None
        crops.append(align_face(image, matrix, size) if crop is None else crop)
        views.append("resized" if crop is None else "native")
    return RouterCrops(crops, views)
