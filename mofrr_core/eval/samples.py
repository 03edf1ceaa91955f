"""The test samples of ``mofrr eval``: face shards (pairs synthesised on the fly, balanced per type), a
``mofrr synth`` output, original/ + retouched/ folders, or the authors' RetouchingFFHQ++ layout."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mofrr_core.eval import tables

OPS_MODES = {"single": (1, 1), "multi": (2, 4), "mixed": (0, 4)}
DEFAULT_TYPES = tables.CANONICAL_TYPES


def is_shards(path: Path | None) -> bool:
    return path is None or (path.is_dir() and any(path.glob("*.tar")))


def _degree_thresholds(choice: str, root: Path | None, resolution: int, quiet: bool, fit_n: int = 1000):
    if choice == "none":
        return None
    if choice == "auto":
        from mofrr_core.data.degrees import fit_degree_thresholds

        return fit_degree_thresholds(root, n=fit_n, resolution=resolution, progress=not quiet)
    from mofrr_core.data.degrees import DegreeThresholds

    return DegreeThresholds.load(choice)


def load_samples(data: Path | None, split: str = "test", n: int = 200, resolution: int = 256,
                 ops: str = "balanced", apis: Mapping[str, str] | None = None, degrees: str = "auto",
                 seed: int = 0, quiet: bool = False, fit_n: int = 1000, apis_set: str = "train",
                 untouched: bool = True, postprocess: str | None = None,
                 retouch_size: str | Mapping[str, Any] | None = None,
                 reframe: str | Mapping[str, Any] | None = None, min_sharpness: float | None = None,
                 ) -> tuple[Sequence[Mapping[str, Any]], list[str], str]:
    """The test samples (a lazy sequence of sample dicts), their type axis, and a description.

    Shards: ``apis_set`` picks the retouching implementations (``train``: in-domain, ``heldout``: the
    implementations no weight was trained on); ``balanced`` adds untouched faces as a sixth share when
    ``untouched``; ``postprocess`` (a preset of :mod:`mofrr_core.retouch.postprocess`) degrades every input,
    untouched ones included, as a photo app's export would; ``retouch_size`` (see
    :func:`mofrr_core.data.realign.resolve_retouch_size`) retouches the faces at a larger size and shrinks them
    back, as a large photo exported small; ``reframe`` (see :func:`mofrr_core.data.realign.resolve_reframe`) frames
    the photos looser and resizes them before the retouching; ``min_sharpness`` keeps only the faces whose
    metadata sharpness is at least this (2.0: real skin detail); ``seed`` picks the retouching and, from face
    ``seed * n`` on, the faces (:func:`face_offset`).
    """
    open_dataset = _open_dataset()

    if not is_shards(data):
        if apis:
            raise ValueError(f"--apis applies to shard folders only; {data} holds fixed pairs (make them with "
                             "mofrr synth --apis ...)")
        dataset = open_dataset(data, split=split, resolution=resolution)
        if hasattr(dataset, "has_labels") and not dataset.has_labels:
            warnings.warn(f"{data}: pairs without labels: per-type columns, router and degree accuracy are "
                          "unavailable", stacklevel=2)
        count = min(n, len(dataset))
        return _Head(dataset, count), list(getattr(dataset, "types", DEFAULT_TYPES)), repr(dataset)
    thresholds = _degree_thresholds(degrees, data, resolution, quiet, fit_n)
    offset = face_offset(seed, n)
    common = {"split": split, "resolution": resolution, "seed": seed, "apis": dict(apis) if apis else None,
              "degree_thresholds": thresholds, "apis_set": apis_set, "postprocess": postprocess,
              "retouch_size": retouch_size, "reframe": reframe, "min_sharpness": min_sharpness}
    if ops == "balanced":
        types = list(DEFAULT_TYPES)
        length = n + offset
        parts = [open_dataset(data, ops=[t], length=length, **common) for t in types]
        parts.append(open_dataset(data, num_ops=OPS_MODES["multi"], length=length, **common))
        if untouched:
            parts.append(open_dataset(data, num_ops=OPS_MODES["multi"], p_clean=1.0, length=length, **common))
        dataset = _Interleaved(parts, n, offset)
        types = list(parts[0].types)
    else:
        if ops == "untouched":  # every face as it came: the do-no-harm side alone
            dataset = open_dataset(data, num_ops=OPS_MODES["multi"], p_clean=1.0, length=n + offset, **common)
        elif ops in OPS_MODES:
            dataset = open_dataset(data, num_ops=OPS_MODES[ops], length=n + offset, **common)
        else:
            chosen = [o.strip() for o in ops.split(",") if o.strip()]
            if not chosen:
                raise ValueError(f"--ops {ops!r}: expected balanced, single, multi, mixed, untouched or a comma "
                                 "list of ops")
            dataset = open_dataset(data, ops=chosen, length=n + offset, **common)
        types = list(dataset.types)
        dataset = _Interleaved([dataset], n, offset)
    source = getattr(thresholds, "cuts", None)
    description = (f"shards {data or '(default)'}: split {split}, ops {ops}, seed {seed}, apis {dict(apis or {})}, "
                   f"implementations {apis_set}, post-processing {postprocess or 'none'}, "
                   f"retouched at {retouch_size or 'the native size'}, "
                   + (f"reframed before the retouching {reframe}, " if reframe else "")
                   + (f"faces of sharpness >= {min_sharpness:g}, " if min_sharpness is not None else "")
                   + f"degrees {'PSNR thresholds' if source is not None else degrees}")
    return _Head(dataset, min(n, len(dataset))), types, description


def face_offset(seed: int, n: int) -> int:
    """Where the faces of data seed ``seed`` start: seed 0 at face 0, seed ``S`` at face ``S * n``, so seeds use
    different faces as far as the split has them (the engine takes face ``i`` modulo the split's size)."""
    return max(int(seed), 0) * n


def _open_dataset():
    try:
        from mofrr_core.data import open_dataset
    except ImportError:  # the package re-export may not exist yet
        from mofrr_core.data.folders import open_dataset
    return open_dataset


class _Interleaved:
    """Item ``i`` is item ``i + offset`` of part ``i % len(parts)``: types take turns (white, smooth, face, eye,
    multi, untouched, white, ...) so any prefix is balanced, and item ``i`` uses face ``i + offset``, so faces
    differ (:func:`face_offset`)."""

    def __init__(self, parts: Sequence[Any], n: int, offset: int = 0) -> None:
        self.parts, self.n, self.offset = list(parts), n, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Mapping[str, Any]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.parts[index % len(self.parts)][index + self.offset]


class _Head:
    """The first ``n`` items of a map-style dataset, loaded lazily."""

    def __init__(self, dataset: Any, n: int) -> None:
        self.dataset, self.n = dataset, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.dataset[i]
