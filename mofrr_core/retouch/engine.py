"""The retouching engine: apply registered, landmark-driven retouching ops to a face image.

Ops come from the plugin manager (``register_retouch_ops``), so third-party ops (lips, nose...)
are used exactly like the built-in ones. Each op may have several implementations (``api``);
:func:`retouch` picks one per op, at random unless told, and can hold some out
(``exclude_apis``), which is the paper's cross-implementation protocol.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks, load_landmarks
from mofrr_core.spec import RetouchOpSpec, RetouchResult

TYPES = ("white", "smooth", "face", "eye")
STRENGTH_RANGE = (0.25, 1.0)
ENGINE_VERSION = "6"  # bump when an op changes its output (invalidates cached degree thresholds)


class NoFaceError(ValueError):
    """No usable face: the landmarks are missing, non-finite, collapsed or outside the image."""


def sample_strength(rng: np.random.Generator) -> float:
    """A strength from the training distribution: uniform in ``[0.25, 1]``: every edit visible."""
    low, high = STRENGTH_RANGE
    return float(rng.uniform(low, high))


def random_ops(rng: np.random.Generator, types: Sequence[str] = TYPES, min_ops: int = 2,
               max_ops: int = 4) -> list[str]:
    """``min_ops..max_ops`` distinct ops from ``types`` in random order (multi-retouching)."""
    types = list(dict.fromkeys(types))
    if not 1 <= min_ops <= max_ops:
        raise ValueError(f"need 1 <= min_ops <= max_ops, got min_ops={min_ops}, max_ops={max_ops}")
    if min_ops > len(types):
        raise ValueError(f"min_ops={min_ops} but only {len(types)} types given: {types}")
    count = int(rng.integers(min_ops, min(max_ops, len(types)) + 1))
    return [types[i] for i in rng.permutation(len(types))[:count]]


def check_face(image: np.ndarray, landmarks: FaceLandmarks | np.ndarray | None,
               where: str = "image") -> FaceLandmarks:
    """``landmarks`` as :class:`FaceLandmarks`, or :class:`NoFaceError` if there is no usable face."""
    if landmarks is None:
        raise NoFaceError(f"no face found in {where}: no landmarks")
    try:
        face = load_landmarks(landmarks)
    except ValueError as error:
        raise NoFaceError(f"no face found in {where}: {error}") from error
    if not face.is_valid(image.shape):
        raise NoFaceError(f"no face found in {where}: landmarks are non-finite, collapsed or outside "
                          f"the {image.shape[1]}x{image.shape[0]} image ({face!r})")
    return face


def choose_api(op: str, apis: Mapping[str, RetouchOpSpec], rng: np.random.Generator,
               wanted: str | None = None, excluded: Collection[str] = ()) -> RetouchOpSpec:
    """The implementation of ``op`` to use: ``wanted``, or a random registered one not ``excluded``."""
    if wanted is not None:
        if wanted not in apis:
            raise KeyError(f"retouch op {op!r} has no api {wanted!r} (registered: {', '.join(sorted(apis))})")
        if wanted in excluded:
            raise ValueError(f"retouch op {op!r}: api {wanted!r} is both requested and excluded")
        return apis[wanted]
    allowed = sorted(set(apis) - set(excluded))
    if not allowed:
        raise ValueError(f"retouch op {op!r}: every api is excluded ({', '.join(sorted(apis))})")
    return apis[allowed[int(rng.integers(len(allowed)))]]


def retouch(image: np.ndarray, landmarks: FaceLandmarks, ops: Sequence[str], rng: np.random.Generator,
            strengths: Sequence[float] | None = None, apis: Mapping[str, str] | None = None,
            exclude_apis: Mapping[str, Collection[str]] | None = None, *, where: str = "image") -> RetouchResult:
    """Apply ``ops`` in order to a uint8 ``HxWx3`` face image.

    ``strengths`` (one per op, in [0, 1]) default to :func:`sample_strength`; each op's api is
    ``apis[op]`` or random among its registered apis minus ``exclude_apis[op]``. The record is
    ``{"ops": [{"op", "api", "strength", ...the op's own record}], "types": [...], "strengths": {...}}``.
    ``where`` names the image in :class:`NoFaceError` messages.
    """
    from mofrr_core.plugins import get_retouch_ops

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{where}: expected a uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
    face = check_face(image, landmarks, where)
    ops = list(ops)
    if len(set(ops)) != len(ops):
        raise ValueError(f"each op may appear once, got {ops}")
    if strengths is not None:
        strengths = [float(s) for s in strengths]
        if len(strengths) != len(ops):
            raise ValueError(f"{len(strengths)} strengths for {len(ops)} ops {ops}")
        bad = [s for s in strengths if not 0.0 <= s <= 1.0]
        if bad:
            raise ValueError(f"strengths must be in [0, 1], got {bad}")
    registered = get_retouch_ops()
    unknown = [op for op in ops if op not in registered]
    if unknown:
        raise KeyError(f"unknown retouch op(s) {unknown} (registered: {', '.join(sorted(registered))})")
    apis = apis or {}
    exclude_apis = exclude_apis or {}

    out = image.copy()
    records = []
    for i, op in enumerate(ops):
        spec = choose_api(op, registered[op], rng, apis.get(op), exclude_apis.get(op, ()))
        strength = sample_strength(rng) if strengths is None else strengths[i]
        result = spec.fn(out, face, strength, rng)
        result_image = np.asarray(result.image)
        if result_image.shape != out.shape or result_image.dtype != np.uint8:
            raise ValueError(f"retouch op {op!r} (api {spec.api!r}, {spec.distribution}) returned "
                             f"{result_image.dtype} {result_image.shape}, expected uint8 {out.shape}")
        entry = {"op": op, "api": spec.api, "strength": strength}
        entry.update({k: v for k, v in dict(result.record).items() if k not in entry})
        records.append(entry)
        out = result_image
    return RetouchResult(out, {"ops": records, "types": ops,
                               "strengths": {entry["op"]: entry["strength"] for entry in records}})
