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
  reads such a view worse than a resized crop. The registry's ``router_native_range`` sets another range, for a
  router trained on smaller faces read natively (``realign: {crop: native, native_range: ...}``).

Context gates (the registry's ``router_context_types``, e.g. ``[white]``) judge a face against what is around it:
where the native view is a close-up (the face's box more than :data:`CLOSE_UP` times the router's size), they
read the resized crop, which shows the whole face and its surroundings, and the other gates the native view.

A photo enlarged since its JPEG save has its grid stretched, and its faces read at the photo's size show no grid.
With the registry's ``undo_enlargement``, the router reads such a photo shrunk back to the size it was saved at,
when its stretched grid says what that size was (:func:`mofrr_core.jpeg_grid.saved_size`); the experts still
restore the photo as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mofrr_core.faces import align_face, crop_box, face_alignment
from mofrr_core.jpeg_grid import JPEG_BLOCK, JPEG_GRID_MIN, jpeg_grid_strength, saved_size

if TYPE_CHECKING:
    from mofrr_core.pipeline import Pipeline

ROUTER_CROPS = ("shared", "own", "native")
ROUTER_VIEWS = ("native", "resized")  # how the router read a face: its photo's own pixels, or resampled
NATIVE_SCALE_RANGE = (0.9, 1.3)  # native: the face's upright box over the router's size, smallest and largest
CLOSE_UP = 1.1  # a native view of a face's box larger than this (over the router's size) is a close-up
JPEG_GRID = "jpeg_grid"  # registry ``grid_gates``: the condition "this native view keeps its photo's JPEG grid"


def box_ratio(matrix: np.ndarray, size: int) -> float | None:
    """The side of the face's box of the upright alignment ``matrix`` over ``size`` (``None``: not upright)."""
    box = crop_box(matrix, size)
    return None if box is None else box[2] / size


def check_native_range(value: Any, name: str) -> tuple[float, float]:
    """``value`` as ``(smallest, largest)`` face box over the router's size, ``0 < smallest <= largest``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected [smallest, largest], got {value!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"{name}: expected 0 < smallest <= largest, got {value!r}")
    return lo, hi


def native_crop(image: np.ndarray, matrix: np.ndarray, size: int,
                scale_range: tuple[float, float] = NATIVE_SCALE_RANGE) -> np.ndarray | None:
    """The ``size`` x ``size`` box of photo pixels centred on the face of the upright alignment ``matrix``,
    not resized, its origin on the photo's :data:`JPEG_BLOCK` grid (parts outside the photo reflected);
    ``None`` when ``matrix`` is not upright or the face's box over ``size`` is outside ``scale_range``."""
    box = crop_box(matrix, size)
    if box is None or not scale_range[0] <= box[2] / size <= scale_range[1]:
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
    """What the router reads of each face of a photo: ``images`` (``None``: the experts' crops, resized), per
    face, ``views``: ``"native"`` (the photo's own pixels) or ``"resized"`` (a crop resampled to its size), and
    ``gate_images``: per context gate, the resized crop of each close-up face (``None`` elsewhere; the whole
    mapping ``None`` when no face needs one); ``grids``: per face, whether its native view keeps the photo's JPEG
    grid (``None`` where the registry has no ``grid_gates``); ``saved_scale``: how many times the photo was
    enlarged since its JPEG save, where the router read it shrunk back (``undo_enlargement``; else ``None``)."""

    images: list[np.ndarray] | None
    views: list[str]
    gate_images: dict[str, list[np.ndarray | None]] | None = None
    grids: list[bool] | None = None
    saved_scale: float | None = None

    def face_report(self, i: int) -> dict[str, Any]:
        """What the router read of face ``i``, for the forensic report: ``router_view``, ``gate_views`` (the gates
        that read another view: ``{type: "resized"}``) where a context gate read the close-up resized, and
        ``jpeg_grid`` (whether its view kept the photo's JPEG grid) where the registry has ``grid_gates``, and
        ``saved_scale`` where the router read the photo shrunk back to its saved size."""
        gates = {t: "resized" for t, images in (self.gate_images or {}).items() if images[i] is not None}
        grid = {} if self.grids is None else {JPEG_GRID: self.grids[i]}
        saved = {} if self.saved_scale is None else {"saved_scale": round(self.saved_scale, 4)}
        return {"router_view": self.views[i], **({"gate_views": gates} if gates else {}), **grid, **saved}

    def pipeline_kwargs(self) -> dict[str, Any]:
        """The keywords that hand these views to :class:`~mofrr_core.pipeline.Pipeline`."""
        return {"router_images": self.images, "gate_images": self.gate_images, "router_views": self.views,
                "router_grids": self.grids}


def router_crops(pipeline: Pipeline, image: np.ndarray, faces: list) -> RouterCrops:
    """The faces of ``image`` (``usable_faces`` rows) as the router reads them, by ``pipeline.router_crop``."""
    size = pipeline.router_size
    if pipeline.router_crop == "shared" or (pipeline.router_crop == "own" and size == pipeline.face_crop_size):
        return RouterCrops(None, ["resized"] * len(faces))
    saved = saved_size(image) if pipeline.undo_enlargement and pipeline.router_crop == "native" else None
    if saved is not None:  # read as it was saved: the faces' points in the shrunk photo's pixels
        image, faces = saved.shrink(image), [(scale, saved.points(points5), m) for scale, points5, m in faces]
    crops, views, close_ups = [], [], []
    for _, points5, _ in faces:
        matrix = face_alignment(points5, size, pipeline.alignment)
        native = pipeline.router_crop == "native"
        crop = native_crop(image, matrix, size, pipeline.router_native_range) if native else None
        crops.append(align_face(image, matrix, size) if crop is None else crop)
        views.append("resized" if crop is None else "native")
        close_up = crop is not None and pipeline.router_context_types and box_ratio(matrix, size) > CLOSE_UP
        close_ups.append(align_face(image, matrix, size) if close_up else None)
    gate_images = ({t: close_ups for t in pipeline.router_context_types}
                   if any(c is not None for c in close_ups) else None)
    grids = ([view == "native" and jpeg_grid_strength(crop) >= JPEG_GRID_MIN for crop, view in zip(crops, views)]
             if pipeline.grid_gates else None)
    return RouterCrops(crops, views, gate_images, grids, None if saved is None else saved.scale)
