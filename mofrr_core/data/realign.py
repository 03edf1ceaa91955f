"""Whole-photo geometry for training pairs: the face as ``mofrr restore`` hands it to the networks.

In whole-photo mode a face is found in a photo of any size and brought to the template by a
similarity warp (:func:`mofrr_core.faces.align_face`: area shrink when needed, then bilinear).
That resamples every pixel. A detector trained only on native crops reads this resampling as
retouching (a warp is what face lifting and eye enlarging do), so in whole-photo mode it called
untouched faces "lifted". ``realign`` gives a share of the training pairs the same treatment:
the photo is rescaled by a random factor (a face that was larger or smaller in its photo), then
both images of the pair are aligned with the *same* matrix, computed from the face's own five
points exactly as whole-photo mode does. Input and target stay pixel-aligned, so the pairs still
train the experts; untouched faces get it with the same probability, so resampling is never a
cue for "retouched". A configuration is a preset name or a mapping::

    realign: photo                          # the preset below
    realign: {p: 0.5, photo_scale: [0.7, 1.4]}
    realign: {p: 0.8, photo_scale: [0.7, 1.4], alignment: upright}   # preset photo-upright
    realign: {p: 0.8, photo_scale: [0.7, 1.4], alignment: upright, rescale_p: 0.5}   # preset photo-kept

``rescale_p`` (default 1) is the chance that a realigned photo is rescaled before the cut: a photo exported
or shared at another size after the retouching, whose warp traces the resize has blurred. The others are cut
at the size they were retouched at, as a photo kept at that size reaches ``mofrr restore``: the cut is then
their only resampling, and what a warp leaves in the pixels is still there to be found (untouched faces get
the same, so the cut itself is never a cue).

``retouch_size`` (a separate dataset option, :func:`enlarge_for_retouch`) is the size the *app* worked at: a
share of the faces is enlarged by a random factor before the retouching and shrunk back after it, as a photo
taken larger than the face crop and exported small. The engine's ops scale with the face, so the edit looks
the same; what a warp or a filter leaves in the pixels at the app's size is mostly gone after the shrink::

    retouch_size: large                     # the preset: {p: 0.5, scale: [1.5, 3.0]}

``reframe`` (a third dataset option, :func:`reframe_for_retouch`) is the framing the app received: a share of the
photos gets a reflected border and is brought back to its size *before* the retouching, as a portrait cropped
looser and resized before an app retouched it. The face is smaller, the photo's JPEG grid is gone, and what the
retouching leaves in the pixels stays there (it runs at the size the photo is shown at)::

    reframe: portrait                       # the preset: {p: 0.5, border: [0.05, 0.3]}
    reframe: portrait-jpeg                  # {p: 1.0, border: [0.05, 0.3], jpeg: [70, 95]}

``jpeg: [lo, hi]`` saves the reframed photo as a JPEG of a quality drawn in that range before the retouching, as a
photo stored on a phone or a site reaches the app: its 8x8 block pattern is fresh, and a warp breaks it where it
resamples the face.

``crop: native`` (with ``alignment: upright``; preset ``photo-native``) cuts the photo's own pixels where the
face allows it, as the registry's ``router_crop: native`` does (:func:`mofrr_core.router_view.native_view`),
instead of resizing the face's box; ``grid_native_range`` (preset ``photo-native-grid``) as the registry's
``grid_native.range``: faces of those sizes too where the retouched photo's cut was saved as a JPEG at its size
(record ``view``: ``native-grid``).

``alignment`` is the whole-photo alignment to imitate (:data:`mofrr_core.faces.ALIGNMENTS`; default
``similarity``): ``upright`` cuts a box of the rescaled photo and resizes it, as ``mofrr restore`` does
with ``alignment: upright``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from mofrr_core.retouch.postprocess import check_probability, check_range, named_preset

REALIGN_PRESETS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "photo": {"p": 0.5, "photo_scale": [0.7, 1.4]},
    "photo-upright": {"p": 0.8, "photo_scale": [0.7, 1.4], "alignment": "upright"},
    "photo-kept": {"p": 0.8, "photo_scale": [0.7, 1.4], "alignment": "upright", "rescale_p": 0.5},
    "photo-kept-wide": {"p": 0.8, "photo_scale": [0.5, 2.0], "alignment": "upright", "rescale_p": 0.5},
    "photo-native": {"p": 0.8, "photo_scale": [0.5, 2.0], "alignment": "upright", "rescale_p": 0.5, "crop": "native"},
    "photo-native-wide": {"p": 0.8, "photo_scale": [0.5, 2.0], "alignment": "upright", "rescale_p": 0.5,
                          "crop": "native", "native_range": [0.6, 1.3]},
    "photo-native-grid": {"p": 1.0, "alignment": "upright", "crop": "native", "grid_native_range": [0.6, 0.9]},
}
SCALE_LIMITS = (0.25, 4.0)
RETOUCH_SIZE_PRESETS: dict[str, dict[str, Any] | None] = {"none": None, "large": {"p": 0.5, "scale": [1.5, 3.0]}}
RETOUCH_SCALE_LIMITS = (1.0, 4.0)
REFRAME_PRESETS: dict[str, dict[str, Any] | None] = {
    "none": None, "portrait": {"p": 0.5, "border": [0.05, 0.3]},
    "portrait-jpeg": {"p": 1.0, "border": [0.05, 0.3], "jpeg": [70, 95]},
}
REFRAME_LIMITS = (0.0, 1.0)
JPEG_QUALITY_LIMITS = (1, 100)


def crops_natively(config: str | Mapping[str, Any] | bool | None) -> bool:
    """Whether ``config`` cuts faces from the photo's own pixels where it can (``crop: native``, preset
    ``photo-native``): the realignment a per-view calibration needs."""
    return (resolve_realign(config) or {}).get("crop") == "native"


def resolve_realign(config: str | Mapping[str, Any] | bool | None) -> dict[str, Any] | None:
    """A validated ``{"p": float, "photo_scale": [lo, hi]}`` or ``None`` (off)."""
    if config is None or config is False:
        return None
    if isinstance(config, str):
        return resolve_realign(named_preset(config, REALIGN_PRESETS, "realign"))
    from mofrr_core.faces import ALIGNMENTS

    if not isinstance(config, Mapping) or set(config) - {"p", "photo_scale", "alignment", "rescale_p", "crop",
                                                          "native_range", "grid_native_range"}:
        raise ValueError("realign: expected a preset name or a mapping with keys p, photo_scale, alignment, "
                         f"rescale_p, crop, native_range, grid_native_range, got {config!r}")
    p = check_probability(config.get("p", 1.0), "realign.p")
    scale = check_range(config.get("photo_scale", [1.0, 1.0]), "realign.photo_scale", SCALE_LIMITS)
    alignment = config.get("alignment", "similarity")
    if alignment not in ALIGNMENTS:
        raise ValueError(f"realign.alignment: expected {' or '.join(ALIGNMENTS)}, got {alignment!r}")
    rescale_p = check_probability(config.get("rescale_p", 1.0), "realign.rescale_p")
    crop = config.get("crop", "resized")
    if crop not in ("resized", "native") or (crop == "native" and alignment != "upright"):
        raise ValueError(f"realign.crop: expected resized, or native with alignment upright, got {crop!r}")
    from mofrr_core.router_view import NATIVE_SCALE_RANGE, check_native_range

    native_range = check_native_range(config.get("native_range", NATIVE_SCALE_RANGE), "realign.native_range")
    grid = config.get("grid_native_range")
    grid = None if grid is None else check_native_range(grid, "realign.grid_native_range")
    return {"p": p, "photo_scale": list(scale), "alignment": alignment, "rescale_p": rescale_p, "crop": crop,
            "native_range": native_range, "grid_native_range": grid}


def rescale_photo(image: np.ndarray, scale: float) -> np.ndarray:
    """The photo at ``scale`` times its size (area when shrinking, bilinear when enlarging)."""
    height, width = image.shape[:2]
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def realign_pair(original: np.ndarray, retouched: np.ndarray, points5: np.ndarray, rng: np.random.Generator,
                 config: str | Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(original, retouched, record)`` after the whole-photo alignment (same size as the inputs).

    ``points5`` are the face's five points (:func:`mofrr_core.faces.points5_from_landmarks`) in the
    input's pixels. All three random numbers are drawn whatever applies, so the result is a function of
    the generator's state and the configuration only.
    """
    from mofrr_core.faces import align_face, face_alignment
    from mofrr_core.router_view import native_crop, native_view

    config = resolve_realign(config)
    if config is None:
        return original, retouched, {"applied": False}
    applied, u, rescaled = bool(rng.random() < config["p"]), rng.random(), rng.random() < config["rescale_p"]
    if not applied:
        return original, retouched, {"applied": False}
    lo, hi = config["photo_scale"]
    scale = lo + (hi - lo) * u if rescaled else 1.0
    photos = [rescale_photo(image, scale) for image in (original, retouched)]
    ratio = np.array(photos[0].shape[1::-1], dtype=np.float64) / original.shape[1::-1]  # (x, y) after rounding
    points = (np.asarray(points5, dtype=np.float64) + 0.5) * ratio - 0.5  # pixel centres follow the resize
    size = original.shape[0]
    matrix = face_alignment(points, size, config["alignment"])
    record = {"applied": True, "photo_scale": round(scale, 4)}
    if config["crop"] == "native":  # the photo's own pixels where router_crop: native reads them
        cut, view = native_view(photos[1], matrix, size, config["native_range"], config["grid_native_range"])
        if cut is not None:  # the input decides, as in mofrr restore; the target is cut at the same box
            return native_crop(photos[0], matrix, size, (0.0, np.inf)), cut, {**record, "native": True, "view": view}
    original, retouched = (align_face(photo, matrix, size) for photo in photos)
    return original, retouched, record


def resolve_share_range(config: str | Mapping[str, Any] | bool | None, name: str, key: str,
                        presets: Mapping[str, dict[str, Any] | None], limits: tuple[float, float],
                        default: float, optional: Mapping[str, tuple[float, float]] | None = None
                        ) -> dict[str, Any] | None:
    """A validated ``{"p": float, key: [lo, hi]}`` (within ``limits``) for the option ``name``, or ``None`` (off):
    with probability ``p`` a value drawn in ``[lo, hi]`` (:func:`draw_share_range`), else ``default``. ``optional``:
    more ``[lo, hi]`` keys the option may have, each with its limits (kept where given)."""
    optional = dict(optional or {})
    if config is None or config is False:
        return None
    if isinstance(config, str):
        return resolve_share_range(named_preset(config, presets, name), name, key, presets, limits, default, optional)
    if not isinstance(config, Mapping) or set(config) - {"p", key, *optional}:
        keys = ", ".join(["p", key, *optional])
        raise ValueError(f"{name}: expected a preset name or a mapping with keys {keys}, got {config!r}")
    p = check_probability(config.get("p", 1.0), f"{name}.p")
    values = check_range(config.get(key, [default, default]), f"{name}.{key}", limits)
    more = {k: list(check_range(config[k], f"{name}.{k}", bounds)) for k, bounds in optional.items() if k in config}
    return {"p": p, key: list(values), **more}


def draw_share_range(rng: np.random.Generator, config: Mapping[str, Any], key: str, default: float) -> float:
    """A value of ``config[key]``'s range with probability ``config["p"]``, else ``default``; two draws always."""
    applied, u = bool(rng.random() < config["p"]), rng.random()
    lo, hi = config[key]
    return lo + (hi - lo) * u if applied else default


def resolve_retouch_size(config: str | Mapping[str, Any] | bool | None) -> dict[str, Any] | None:
    """A validated ``{"p": float, "scale": [lo, hi]}`` (``1 <= lo <= hi <= 4``) or ``None`` (off)."""
    return resolve_share_range(config, "retouch_size", "scale", RETOUCH_SIZE_PRESETS, RETOUCH_SCALE_LIMITS, 1.0)


def enlarge_for_retouch(image: np.ndarray, landmarks: Any, rng: np.random.Generator,
                        config: str | Mapping[str, Any] | None) -> tuple[np.ndarray, Any, float]:
    """``(image, landmarks, scale)``: the face as the app saw it, ``scale`` times larger (bicubic; 1: as is).

    Two random numbers are drawn whatever applies. Undo with :func:`shrink_to` after the retouching.
    """
    config = resolve_retouch_size(config)
    if config is None:
        return image, landmarks, 1.0
    scale = draw_share_range(rng, config, "scale", 1.0)
    height, width = image.shape[:2]
    size = (round(width * scale), round(height * scale))
    if size == (width, height):
        return image, landmarks, 1.0
    enlarged = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    return enlarged, landmarks.scaled(size[0] / width, size[1] / height), round(scale, 4)


def resolve_reframe(config: str | Mapping[str, Any] | bool | None) -> dict[str, Any] | None:
    """A validated ``{"p": float, "border": [lo, hi]}`` (``0 <= lo <= hi <= 1``), with ``"jpeg": [lo, hi]``
    (qualities, 1-100) where given, or ``None`` (off)."""
    return resolve_share_range(config, "reframe", "border", REFRAME_PRESETS, REFRAME_LIMITS, 0.0,
                               {"jpeg": JPEG_QUALITY_LIMITS})


def reframe_for_retouch(image: np.ndarray, landmarks: Any, rng: np.random.Generator,
                        config: str | Mapping[str, Any] | None) -> tuple[np.ndarray, Any, float]:
    """``(image, landmarks, border)``: the photo as the app received it: a reflected border of ``border`` times its
    side on every side, brought back to its size (area; ``border`` 0: as is). The face is smaller and the photo's
    JPEG grid gone, unless ``config`` has ``jpeg``: then the reframed photo is saved as a JPEG of a quality in that
    range (one more random number), with a fresh grid. Two random numbers are drawn whatever applies."""
    config = resolve_reframe(config)
    if config is None:
        return image, landmarks, 0.0
    border = draw_share_range(rng, config, "border", 0.0)
    height, width = image.shape[:2]
    pad_y, pad_x = round(height * border), round(width * border)
    if pad_x == pad_y == 0:
        return image, landmarks, 0.0
    framed = cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REFLECT)
    shown = cv2.resize(framed, (width, height), interpolation=cv2.INTER_AREA)
    if config.get("jpeg"):
        from mofrr_core.retouch.postprocess import jpeg_roundtrip

        shown = jpeg_roundtrip(shown, round(rng.uniform(*config["jpeg"])))
    moved = landmarks.translated(pad_x, pad_y).scaled(width / framed.shape[1], height / framed.shape[0])
    return shown, moved, round(border, 4)


def shrink_to(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``image`` at ``shape``'s height and width (area; unchanged if already there)."""
    if image.shape[:2] == tuple(shape[:2]):
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
