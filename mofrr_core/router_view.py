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
- ``native-grid`` (with ``native`` and the registry's ``grid_native``): a face outside the native range but inside
  ``grid_native.range`` (e.g. ``[0.6, 0.9]``: smaller faces) in a photo saved as JPEG at its size
  (:func:`mofrr_core.jpeg_grid.jpeg_lattice`) is read resized, except by ``grid_native.gates`` (e.g. the warp
  gates, face and eye), which read its own pixels: the break of the block pattern where a warp resampled the face is
  evidence at any face size (validation photos reframed and saved at JPEG quality 90 / 75 before the retouching:
  face-lift AUC 0.76 / 0.75 read resized, 0.84 / 0.95 so); without the pattern a smaller face is read better
  resized. The router judges such faces with that view's own gate offsets (``mofrr-train calibrate --view
  native-grid``).

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
from mofrr_core.jpeg_grid import (
    JPEG_BLOCK,
    JPEG_GRID_MIN,
    SAVED_LATTICE_MIN,
    jpeg_grid_strength,
    jpeg_lattice,
    saved_size,
)

if TYPE_CHECKING:
    from mofrr_core.pipeline import Pipeline

ROUTER_CROPS = ("shared", "own", "native")
# how the router read a face: its photo's own pixels, resampled, or its own pixels kept for their JPEG grid
ROUTER_VIEWS = ("native", "resized", "native-grid")
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


def native_view(image: np.ndarray, matrix: np.ndarray, size: int, scale_range: tuple[float, float],
                grid_range: tuple[float, float] | None = None) -> tuple[np.ndarray | None, str]:
    """``(crop, view)``: the :func:`native_crop` of a face in ``scale_range`` (view ``native``), else, with
    ``grid_range``, of a face in that range whose crop was saved as a JPEG at this size (``native-grid``), else
    ``(None, "resized")``: the face is to be read resized."""
    crop = native_crop(image, matrix, size, scale_range)
    if crop is not None:
        return crop, "native"
    crop = None if grid_range is None else native_crop(image, matrix, size, grid_range)
    if crop is not None and jpeg_lattice(crop) >= SAVED_LATTICE_MIN:
        return crop, "native-grid"
    return None, "resized"


class RouterCrops(NamedTuple):
    """What the router reads of each face of a photo: ``images`` (``None``: the experts' crops, resized), per
    face, ``views``: ``"native"`` (the photo's own pixels), ``"resized"`` (a crop resampled to its size) or
    ``"native-grid"`` (a face outside the native range, read resized but by ``grid_native.gates`` natively), and
    ``gate_images``: per context gate, the resized crop of each close-up face, and per ``grid_native`` gate, the
    native crop of each ``native-grid`` face (``None`` elsewhere; the whole mapping ``None`` when no face needs
    one); ``grids``: per face, whether its native crop keeps the photo's JPEG grid (``None`` where the registry has
    no ``grid_gates``); ``saved_scale``: how many times the photo was enlarged since its JPEG save, where the router
    read it shrunk back (``undo_enlargement``; else ``None``)."""

    images: list[np.ndarray] | None
    views: list[str]
    gate_images: dict[str, list[np.ndarray | None]] | None = None
    grids: list[bool] | None = None
    saved_scale: float | None = None

    def face_report(self, i: int) -> dict[str, Any]:
        """What the router read of face ``i``, for the forensic report: ``router_view``, ``gate_views`` (the gates
        that read another view: ``{type: "resized"}`` where a context gate read the close-up resized, ``{type:
        "native"}`` where a ``grid_native`` gate read a ``native-grid`` face's own pixels), and
        ``jpeg_grid`` (whether its view kept the photo's JPEG grid) where the registry has ``grid_gates``, and
        ``saved_scale`` where the router read the photo shrunk back to its saved size."""
        other = "native" if self.views[i] == "native-grid" else "resized"
        gates = {t: other for t, images in (self.gate_images or {}).items() if images[i] is not None}
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
    grid_native = pipeline.grid_native or {}
    crops, views, close_ups, natives = [], [], [], []
    for _, points5, _ in faces:
        matrix = face_alignment(points5, size, pipeline.alignment)
        crop, view = (native_view(image, matrix, size, pipeline.router_native_range, grid_native.get("range"))
                      if pipeline.router_crop == "native" else (None, "resized"))
        crops.append(crop if view == "native" else align_face(image, matrix, size))
        views.append(view)
        natives.append(crop)  # the photo's own pixels (native and native-grid views)
        close_up = view == "native" and pipeline.router_context_types and box_ratio(matrix, size) > CLOSE_UP
        close_ups.append(align_face(image, matrix, size) if close_up else None)
    gate_images = {t: close_ups for t in pipeline.router_context_types}  # a grid_native gate is not a context gate
    gate_images.update({t: [n if v == "native-grid" else None for n, v in zip(natives, views)]
                        for t in grid_native.get("gates", ())})
    gate_images = {t: images for t, images in gate_images.items() if any(x is not None for x in images)} or None
    grids = ([crop is not None and jpeg_grid_strength(crop) >= JPEG_GRID_MIN for crop in natives]
             if pipeline.grid_gates else None)
    return RouterCrops(crops, views, gate_images, grids, None if saved is None else saved.scale)
