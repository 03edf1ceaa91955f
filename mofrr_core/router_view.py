"""What the router reads of a face in whole-photo mode (the registry's ``router_crop``).

- ``shared``: the experts' aligned crop, resized to the router's size.
- ``own``: the face cut from the photo a second time, aligned the same way, directly at the router's size
  (one resampling, not two).
- ``native``: the photo's own pixels, not resampled at all: a box of the router's size centred on the face,
  its origin on the photo's JPEG block grid (:func:`native_crop`). A warp or a smoothing filter resamples the
  pixels it touches and breaks the 8x8 block pattern a JPEG photo carries everywhere else; a face cut at
  another scale, or on another phase of that grid, hides the break from the router. Used when the photo
  carries such a grid (:func:`jpeg_grid`) and the face is about the router's size; otherwise ``own``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mofrr_core.faces import align_face, crop_box, face_alignment

if TYPE_CHECKING:
    from mofrr_core.pipeline import Pipeline

ROUTER_CROPS = ("shared", "own", "native")
NATIVE_SCALE_LIMIT = 1.3  # native: the face's upright box may be this much larger or smaller than the router's size
JPEG_BLOCK = 8  # side of JPEG's blocks
JPEG_GRID_MIN = 1.25  # native: the least grid strength (jpeg_grid) that counts as a JPEG grid


class JpegGrid(NamedTuple):
    """``strength``: how much more the luminance gradient jumps across the strongest block-boundary phase than
    across the others (about 1 without a grid; resized photos up to 1.2; FairFace's JPEG photos 1.1-2.0, 1.3 or
    more for nine in ten); ``x``, ``y``: the first column and row of a block (0-7)."""

    strength: float
    x: int
    y: int


def jpeg_grid(image: np.ndarray) -> JpegGrid:
    """The 8x8 block grid a JPEG compression leaves in ``image`` (uint8 ``HxWx3`` or ``HxW``): per phase modulo 8,
    the mean jump of the luminance step between neighbouring columns (rows) against the mean of its two
    neighbouring steps; a second difference, so smooth gradients and texture count little."""
    luma = image.astype(np.float64) @ [0.299, 0.587, 0.114] if image.ndim == 3 else image.astype(np.float64)
    strengths, starts = [], []
    for steps in (np.abs(np.diff(luma, axis=1)), np.abs(np.diff(luma, axis=0)).T):
        jumps = np.abs(steps[:, 1:-1] - 0.5 * (steps[:, :-2] + steps[:, 2:]))  # jumps[:, k]: step k + 1
        usable = jumps.shape[1] // JPEG_BLOCK * JPEG_BLOCK
        if usable == 0:
            return NO_GRID
        per_phase = np.roll(jumps[:, :usable].reshape(jumps.shape[0], -1, JPEG_BLOCK).mean(axis=(0, 1)), 1)
        edge = int(per_phase.argmax())  # the step between columns edge and edge + 1 crosses the block border
        strengths.append(per_phase[edge] / max(np.delete(per_phase, edge).mean(), 1e-9))
        starts.append((edge + 1) % JPEG_BLOCK)
    return JpegGrid(float(np.mean(strengths)), starts[0], starts[1])


NO_GRID = JpegGrid(1.0, 0, 0)  # what jpeg_grid returns for an image too small to tell


def native_crop(image: np.ndarray, matrix: np.ndarray, size: int, grid: JpegGrid = NO_GRID) -> np.ndarray | None:
    """The ``size`` x ``size`` box of photo pixels centred on the face of the upright alignment ``matrix``,
    not resized, its origin on ``grid``'s block grid (parts outside the photo reflected); ``None`` when
    ``matrix`` is not upright or the face's box is more than :data:`NATIVE_SCALE_LIMIT` times larger or smaller
    than ``size``."""
    box = crop_box(matrix, size)
    if box is None or not 1 / NATIVE_SCALE_LIMIT <= box[2] / size <= NATIVE_SCALE_LIMIT:
        return None
    x0, y0, side = box
    left, top = (start + JPEG_BLOCK * round((c + (side - size) / 2 - start) / JPEG_BLOCK)
                 for c, start in ((x0, grid.x), (y0, grid.y)))
    height, width = image.shape[:2]
    window = image[max(top, 0):top + size, max(left, 0):left + size]
    if min(window.shape[:2]) < 2:
        return None
    pad = ((max(0, -top), max(0, top + size - height)), (max(0, -left), max(0, left + size - width)), (0, 0))
    reflect = max(pad[0]) < window.shape[0] and max(pad[1]) < window.shape[1]
    return np.ascontiguousarray(np.pad(window, pad[:image.ndim], mode="reflect" if reflect else "edge"))


def router_crops(pipeline: Pipeline, image: np.ndarray, faces: list) -> list[np.ndarray] | None:
    """The faces of ``image`` as the router reads them (``faces``: ``usable_faces`` rows), or ``None`` when it
    reads the experts' crops (``shared``, or ``own`` at the experts' crop size)."""
    size = pipeline.router_size
    if pipeline.router_crop == "shared" or (pipeline.router_crop == "own" and size == pipeline.face_crop_size):
        return None
    grid = jpeg_grid(image) if pipeline.router_crop == "native" else None
    crops = []
    for _, points5, _ in faces:
        matrix = face_alignment(points5, size, pipeline.alignment)
        crop = native_crop(image, matrix, size, grid) if grid and grid.strength >= JPEG_GRID_MIN else None
        crops.append(align_face(image, matrix, size) if crop is None else crop)
    return crops
