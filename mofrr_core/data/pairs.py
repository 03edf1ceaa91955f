"""On-the-fly (retouched, original) pairs from the face shards: a map-style torch ``Dataset``.

Sample ``i`` is fully determined by ``(seed, split, i)``: a per-sample ``numpy`` generator
picks the face (``i`` modulo the faces of the split), the ops, their strengths and APIs, so
DataLoader workers, shuffling and exact resume all see the same data. Retouching runs at the
native 224 px with the face's own landmarks; both images are then resized to ``resolution``
identically (area when shrinking, bicubic when enlarging).

Which ops:

- ``ops=["eye"]``: every sample gets exactly these ops (expert stage: single-op images).
- ``ops=None, num_ops=(2, 4)``: ``k`` drawn uniformly in ``2..4`` (capped at ``len(types)``),
  then ``k`` distinct types (shared-expert stage: multi-op images).
- ``num_ops=(0, 4)``: ``k`` uniform in ``0..4`` (router/combine stages; 20 % untouched).
  If ``p_clean > 0`` the share of untouched images is exactly ``p_clean`` and the others get
  ``k`` uniform in ``max(1, lo)..hi``.
- ``p_single=0.8``: of the retouched images, this share gets exactly one op and the rest ``k``
  uniform in ``max(2, lo)..hi``: the op mix of ``mofrr eval --ops balanced`` (80 % single-op
  images, one type each in equal shares, 20 % 2-4-op images) instead of ``k`` uniform.
- ``p_type=0.3``: every type is applied independently with this probability (``num_ops``, ``p_clean`` and
  ``p_single`` are then unused; ``(1 - p_type) ** len(types)`` of the images are untouched). With ``k`` drawn
  first, one type's presence makes another's more likely (a smoothed image is more often also whitened than
  an unsmoothed one), and a gate trained on that learns to call one type from another's traces.

Other retouchings beside fixed ops (``beside=(lo, hi)``, default off): a sample with fixed ``ops`` (an expert's
own-type images) also gets ``k`` in ``lo..hi`` ops of the other types, all in random order, and its target is the
original with only those applied: what the expert should give back when the router found its type alone on a
photo retouched several ways. Datasets that draw their ops are unaffected. ``sample.extra["beside"]`` lists them.

Which implementations (``apis_set``): ``"train"`` (default) draws only training apis, never the
held-out ones of ``mofrr_core/retouch/heldout.yaml``; ``"heldout"`` only held-out apis (the
held-out table), ``"all"`` both. The train split refuses anything but ``"train"``
(:class:`~mofrr_core.retouch.heldout.HeldOutLeak`), and every drawn api is checked again at
generation time, so a held-out api cannot reach training data.

Post-processing (``postprocess``, default off): a preset name or mapping of
:mod:`mofrr_core.retouch.postprocess` (resampling, sharpening, noise, JPEG) applied to the
*input* of every sample, untouched ones included, with one distribution; the target stays the
original. Its record is ``sample.extra["postprocess"]``.

Whole-photo geometry (``realign``, default off): a preset name or mapping of
:mod:`mofrr_core.data.realign`; a share of the pairs (untouched ones included) is rescaled as a
photo and aligned to the template by the face's own five points, like ``mofrr restore`` does
to a face in a photo; input and target get the same warp. Its record is ``sample.extra["realign"]``.

The app's size (``retouch_size``, default off): a preset name or mapping of
:func:`mofrr_core.data.realign.resolve_retouch_size`; a share of the faces (untouched ones included) is
enlarged before the retouching and shrunk back to 224 px after it, both images alike, as a photo retouched
at a larger size and exported small. Its record is ``sample.extra["retouch_size"]``.

The app's framing (``reframe``, default off): a preset name or mapping of
:func:`mofrr_core.data.realign.resolve_reframe`; a share of the photos (untouched ones included) gets a reflected
border and is brought back to 224 px *before* the retouching, as a portrait cropped looser and resized before an
app retouched it: the face smaller, its JPEG grid gone, the retouching's traces kept. The reframed photo is the
target. Its record is ``sample.extra["reframe"]``.

Degrees: with ``degree_thresholds`` every applied op gets the paper's PSNR degree, computed
from the PSNR of that op applied *alone* (same API and strength) to the original, so the label
of an op does not depend on what else was applied (nor on the post-processing); without
thresholds the strength fallback of :func:`~mofrr_core.data.degrees.degree_from_strength` is
used. ``dataset.degree_source`` says which (``"psnr"`` or ``"strength"``). ``degree_view: photo`` (with
``realign``) reads that PSNR on the pair as whole-photo mode cuts it (realigned as the input, without the
post-processing) instead of the face's own crop: a photo enlarged after the retouching shows less of the
change, and its label says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mofrr_core.data.degrees import DegreeThresholds, degree_from_strength
from mofrr_core.data.shards import SHARP, FaceRecord, read_shards, resolve_data_root
from mofrr_core.data.splits import SPLITS, check_split, filter_split
from mofrr_core.metrics import psnr as psnr_uint8
from mofrr_core.utils.image import uint8_to_tensor

DEFAULT_TYPES = ("white", "smooth", "face", "eye")
DEGREE_VIEWS = ("native", "photo")
_MAX_FACE_RETRIES = 8
_POSTPROCESS_STREAM = 1_000_003  # extra seed word of the post-processing generator (face retries use 1..7)
_REALIGN_STREAM = 1_000_033  # extra seed word of the whole-photo alignment generator
_RETOUCH_SIZE_STREAM = 1_000_037  # extra seed word of the app's-size generator
_REFRAME_STREAM = 1_000_039  # extra seed word of the app's-framing generator


def resize_uint8(image: np.ndarray, resolution: int | None) -> np.ndarray:
    """Square resize of a uint8 ``HxWx3`` image: area when shrinking, bicubic when enlarging."""
    if resolution is None or image.shape[:2] == (resolution, resolution):
        return image
    shrink = resolution < max(image.shape[:2])
    return cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


@dataclass
class PairSample:
    """One generated pair (uint8 ``HxWx3`` at the dataset resolution) with everything known about it."""

    index: int
    key: str
    original: np.ndarray
    retouched: np.ndarray
    ops: list[dict[str, Any]]  # per applied op: op, api, strength, degree, psnr_alone (if computed)
    types: tuple[str, ...]
    labels: np.ndarray  # float32 [N] multi-hot over types
    degrees: np.ndarray  # int64 [N], 0 = not applied
    psnr: float  # PSNR(input, original) at the dataset resolution (after post-processing, if any)
    degree_source: str  # "psnr", "strength" or "none" (untouched)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_sample(self) -> dict[str, Any]:
        """The documented sample dict (``docs/architecture.md``), default-collatable."""
        return {"retouched": uint8_to_tensor(np.array(self.retouched)),
                "original": uint8_to_tensor(np.array(self.original)),
                "labels": torch.from_numpy(self.labels.copy()), "degrees": torch.from_numpy(self.degrees.copy()),
                "key": self.key}

    def record(self) -> dict[str, Any]:
        """JSON-ready description (what ``mofrr synth`` writes per item)."""
        return {"key": self.key, "index": self.index, "ops": self.ops,
                "labels": {t: int(v) for t, v in zip(self.types, self.labels)},
                "degrees": {t: int(v) for t, v in zip(self.types, self.degrees)},
                "psnr": round(float(self.psnr), 4), "degree_source": self.degree_source, **self.extra}


def _jsonable(value: Any) -> Any:
    """Op records as plain JSON types (numpy scalars/arrays -> numbers/lists)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _engine():
    from mofrr_core.retouch import engine

    return engine


class RetouchPairs(Dataset):
    """Paired retouched/original faces generated on the fly from the shards (see module docstring).

    Args:
        root: shard folder (default ``$MOFRR_DATA`` or ``../shared/data/faces``).
        split: ``"train"``, ``"val"`` or ``"test"`` (8:1:1 by key hash).
        resolution: output side in pixels (``None``: native 224).
        ops: fixed ops applied to every sample, or ``None`` to draw them from ``types``.
        num_ops: ``(lo, hi)`` number of ops per sample when ``ops`` is ``None``.
        types: label axis (multi-hot order) and the pool random ops are drawn from.
        seed: dataset seed; sample ``i`` uses a generator seeded from ``(seed, split, i)``.
        length: virtual epoch size (default: number of faces in the split); may exceed it.
        min_sharpness: keep only faces whose metadata ``sharpness`` is at least this.
        sharp_repeat: list every face with real skin detail (metadata ``sharpness`` of :data:`SHARP` or more, about
            one in six) this many times, so they weigh as much as the soft ones (a detector or an estimator that
            saw few of them misjudges them); ``1``: as they come.
        p_clean: share of untouched samples (see module docstring).
        p_single: share of single-op samples among the retouched ones (``None``: ``k`` uniform).
        p_type: every type applied independently with this probability (see module docstring); ``None``: off.
        apis / exclude_apis: passed to the engine (cross-implementation protocol, e.g.
            ``exclude_apis={"smooth": ["guided"]}`` for training, ``apis={"smooth": "guided"}`` for testing).
        degree_thresholds: fitted :class:`DegreeThresholds` (or a JSON path); ``None``: strength fallback.
        apis_set: ``"train"`` (default; the only choice on the train split), ``"heldout"`` or ``"all"``.
        postprocess: post-processing of the input (preset name or mapping, see
            :func:`~mofrr_core.retouch.postprocess.resolve_postprocess`); ``None``: off.
        realign: whole-photo alignment of a share of the pairs (preset name or mapping, see
            :func:`~mofrr_core.data.realign.resolve_realign`); ``None``: off.
        retouch_size: the size the retouching ran at (preset name or mapping, see
            :func:`~mofrr_core.data.realign.resolve_retouch_size`); ``None``: the native 224 px.
        reframe: the framing the retouching received (preset name or mapping, see
            :func:`~mofrr_core.data.realign.resolve_reframe`); ``None``: the face's own crop.
        beside: ``(lo, hi)`` ops of the other types added to fixed ``ops`` and kept in the target; ``None``: off.
        degree_view: where the PSNR of a degree label is read: ``"native"`` (the face's own crop) or ``"photo"``
            (the pair realigned as the input is; needs ``realign``).
        records: use these :class:`FaceRecord` instead of reading ``root`` (subsets, tests).
    """

    def __init__(self, root: str | Path | None = None, split: str = "train", resolution: int | None = 256,
                 ops: Sequence[str] | None = None, num_ops: tuple[int, int] = (1, 1),
                 types: Sequence[str] = DEFAULT_TYPES, seed: int = 0, length: int | None = None,
                 min_sharpness: float | None = None, sharp_repeat: int = 1, p_clean: float = 0.0,
                 p_single: float | None = None,
                 p_type: float | None = None, apis: Mapping[str, str] | None = None,
                 exclude_apis: Mapping[str, Sequence[str]] | None = None,
                 degree_thresholds: DegreeThresholds | str | Path | None = None,
                 records: Sequence[FaceRecord] | None = None, apis_set: str = "train",
                 postprocess: str | Mapping[str, Any] | None = None,
                 realign: str | Mapping[str, Any] | None = None,
                 retouch_size: str | Mapping[str, Any] | None = None,
                 reframe: str | Mapping[str, Any] | None = None, degree_view: str = "native",
                 beside: Sequence[int] | None = None) -> None:
        from mofrr_core.data.realign import resolve_realign, resolve_reframe, resolve_retouch_size
        from mofrr_core.retouch.postprocess import resolve_postprocess

        self.split = check_split(split)
        self.root = None if records is not None else resolve_data_root(root)
        self.resolution = resolution
        self.seed = int(seed)
        self.types = tuple(types) + tuple(op for op in (ops or ()) if op not in types)
        self.ops = list(ops) if ops is not None else None
        lo, hi = (int(v) for v in num_ops)
        if not 0 <= lo <= hi:
            raise ValueError(f"num_ops must be (lo, hi) with 0 <= lo <= hi, got {num_ops}")
        if self.ops is None and hi > len(types):
            hi = len(types)
            lo = min(lo, hi)
        self.num_ops = (lo, hi)
        if not 0.0 <= p_clean <= 1.0:
            raise ValueError(f"p_clean must be in [0, 1], got {p_clean}")
        self.p_clean = float(p_clean)
        if p_single is not None and not 0.0 <= p_single <= 1.0:
            raise ValueError(f"p_single must be in [0, 1], got {p_single}")
        self.p_single = None if p_single is None else float(p_single)
        if p_type is not None and not 0.0 <= p_type <= 1.0:
            raise ValueError(f"p_type must be in [0, 1], got {p_type}")
        self.p_type = None if p_type is None else float(p_type)
        self.apis = dict(apis) if apis else None
        self.exclude_apis = {k: list(v) for k, v in exclude_apis.items()} if exclude_apis else None
        if isinstance(degree_thresholds, (str, Path)):
            degree_thresholds = DegreeThresholds.load(degree_thresholds)
        self.degree_thresholds = degree_thresholds
        self.apis_set = apis_set
        self.postprocess = resolve_postprocess(postprocess)
        self.realign = resolve_realign(realign)
        self.retouch_size = resolve_retouch_size(retouch_size)
        self.reframe = resolve_reframe(reframe)
        if degree_view not in DEGREE_VIEWS or (degree_view == "photo" and self.realign is None):
            raise ValueError(f"degree_view: expected one of {DEGREE_VIEWS} ('photo' with realign), got {degree_view!r}")
        self.degree_view = degree_view
        if beside is not None and (len(beside) != 2 or not 0 <= int(beside[0]) <= int(beside[1])):
            raise ValueError(f"beside: expected [lo, hi] with 0 <= lo <= hi, got {beside!r}")
        self.beside = None if beside is None else (int(beside[0]), int(beside[1]))
        self._check_ops()
        self._check_apis_set()
        faces = filter_split(records if records is not None else read_shards(self.root), split)
        if min_sharpness is not None:
            faces = [f for f in faces if f.sharpness >= min_sharpness]
        if not isinstance(sharp_repeat, int) or sharp_repeat < 1:
            raise ValueError(f"sharp_repeat: expected a whole number >= 1, got {sharp_repeat!r}")
        faces = [f for f in faces for _ in range(sharp_repeat if f.sharpness >= SHARP else 1)]  # in place: any
        # prefix of the list (a cache shorter than it) keeps the share
        if not faces:
            where = self.root or "the given records"
            raise ValueError(f"{where}: no faces in split {split!r}"
                             + (f" with sharpness >= {min_sharpness}" if min_sharpness is not None else ""))
        self.faces = faces
        self.length = len(faces) if length is None else int(length)
        if self.length <= 0:
            raise ValueError(f"length must be positive, got {length}")

    # -- description -------------------------------------------------------------------------
    @property
    def degree_source(self) -> str:
        """``"psnr"`` if thresholds cover every type, ``"strength"`` if there are none, else ``"mixed"``."""
        if self.degree_thresholds is None:
            return "strength"
        return "psnr" if all(t in self.degree_thresholds for t in self.types) else "mixed"

    def _check_ops(self) -> None:
        from mofrr_core.plugins import get_retouch_ops

        known = get_retouch_ops()
        pool = self.ops if self.ops is not None else list(self.types)
        if known:  # the engine validates too; this names the dataset argument
            unknown = [op for op in pool if op not in known]
            if unknown:
                raise ValueError(f"unknown retouching op(s) {', '.join(map(repr, unknown))}; registered: "
                                 f"{', '.join(sorted(known))}")

    def _check_apis_set(self) -> None:
        """The held-out guard: the train split only ever sees training apis; the chosen set is non-empty."""
        from mofrr_core.plugins import get_retouch_ops
        from mofrr_core.retouch.heldout import API_SETS, HeldOutLeak, apis_in_set, is_heldout

        if self.apis_set not in API_SETS:
            raise ValueError(f"apis_set must be one of {', '.join(API_SETS)}, got {self.apis_set!r}")
        if self.split == "train" and self.apis_set != "train":
            raise HeldOutLeak(f"split 'train' with apis_set={self.apis_set!r}: training data may only use "
                              f"training apis (held-out list: mofrr_core/retouch/heldout.yaml)")
        registered = get_retouch_ops()
        for op, api in (self.apis or {}).items():
            if self.apis_set == "train" and is_heldout(op, api):
                raise HeldOutLeak(f"apis={{{op!r}: {api!r}}}: {op}/{api} is held out "
                                  f"(mofrr_core/retouch/heldout.yaml); use apis_set='heldout' on a test split")
        for op in self.ops if self.ops is not None else self.types:
            if op in registered and not apis_in_set(op, self.apis_set, list(registered[op])):
                raise ValueError(f"op {op!r} has no {self.apis_set!r} apis (registered: "
                                 f"{', '.join(sorted(registered[op]))}; see mofrr_core/retouch/heldout.yaml)")

    def _choose_api(self, op: str, specs: Mapping[str, Any], rng: np.random.Generator, engine: Any) -> Any:
        """The engine's api choice restricted to ``apis_set``, checked again against the held-out list."""
        from mofrr_core.retouch.heldout import HeldOutLeak, apis_in_set, is_heldout

        allowed = set(apis_in_set(op, self.apis_set, list(specs)))
        excluded = (set(specs) - allowed) | set((self.exclude_apis or {}).get(op, ()))
        spec = engine.choose_api(op, specs, rng, (self.apis or {}).get(op), excluded)
        if (self.split == "train" or self.apis_set == "train") and is_heldout(op, spec.api):
            raise HeldOutLeak(f"{op}/{spec.api} is held out but was drawn for split {self.split!r} "
                              f"(apis_set={self.apis_set!r})")
        return spec

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (f"RetouchPairs(split={self.split!r}, faces={len(self.faces)}, length={self.length}, "
                f"ops={self.ops}, num_ops={self.num_ops}, p_type={self.p_type}, resolution={self.resolution}, "
                f"seed={self.seed}, degrees={self.degree_source}, apis_set={self.apis_set!r}, "
                f"postprocess={'on' if self.postprocess else 'off'}, realign={'on' if self.realign else 'off'}, "
                f"retouch_size={'on' if self.retouch_size else 'off'}, reframe={'on' if self.reframe else 'off'})")

    # -- generation --------------------------------------------------------------------------
    def _rng(self, index: int, *extra: int) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, SPLITS.index(self.split), index, *extra])

    def _choose_ops(self, rng: np.random.Generator) -> list[str]:
        lo, hi = self.num_ops
        if self.ops is None and self.p_type is not None:  # each type on its own coin: no type predicts another
            return [self.types[j] for j in rng.permutation(len(self.types)) if rng.random() < self.p_type]
        if self.p_clean > 0 and rng.random() < self.p_clean:
            return []
        if self.ops is not None:
            return list(self.ops)
        lo = max(lo, 1) if self.p_clean > 0 else lo
        if self.p_single is not None and lo <= 1 < hi:  # one op with p_single, else 2..hi
            k = 1 if rng.random() < self.p_single else int(rng.integers(2, hi + 1))
        else:
            k = int(rng.integers(lo, hi + 1))
        return [self.types[j] for j in rng.permutation(len(self.types))[:k]]  # random order, as the engine

    def _choose_beside(self, ops: list[str], rng: np.random.Generator) -> tuple[list[str], list[str]]:
        """``(ops in the order applied, the ones the target keeps)``: with ``beside`` and fixed ops, ``k`` other
        types join them in random order; otherwise ``(ops, [])`` and ``rng`` is not used."""
        if self.beside is None or self.ops is None or not ops:
            return ops, []
        others = [t for t in self.types if t not in ops]
        k = min(int(rng.integers(self.beside[0], self.beside[1] + 1)), len(others))
        kept = [others[j] for j in rng.permutation(len(others))[:k]]
        order = ops + kept
        return [order[j] for j in rng.permutation(len(order))], kept

    @staticmethod
    def _replay_op(engine: Any, image: np.ndarray, landmarks: Any, entry: dict[str, Any], seed: int) -> np.ndarray:
        """``image`` with the applied op ``entry`` replayed: same API, strength and random parameters (its seed)."""
        return engine.retouch(image, landmarks, [entry["op"]], np.random.default_rng(seed),
                              strengths=[float(entry["strength"])], apis={entry["op"]: entry["api"]}).image

    def _replay(self, engine: Any, work: np.ndarray, landmarks: Any, applied: list[dict[str, Any]], seeds: list[int],
                kept: list[str]) -> np.ndarray:
        """``work`` with only the ``kept`` ops of ``applied`` replayed, in their order."""
        target = work
        for entry, seed in zip(applied, seeds):
            if entry["op"] in kept:
                target = self._replay_op(engine, target, landmarks, entry, seed)
        return target

    def generate(self, index: int) -> PairSample:
        """Sample ``index`` as uint8 images plus its full record (deterministic)."""
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        index %= self.length
        engine = _engine()
        for attempt in range(_MAX_FACE_RETRIES):
            rng = self._rng(index, attempt) if attempt else self._rng(index)
            face = self.faces[(index + attempt * 7919) % len(self.faces)]
            try:
                return self._generate(index, face, rng, engine)
            except engine.NoFaceError:
                continue
        raise RuntimeError(f"sample {index}: the engine found no usable face in {_MAX_FACE_RETRIES} tries "
                           f"(last key {face.key!r})")

    def _generate(self, index: int, face: FaceRecord, rng: np.random.Generator, engine: Any) -> PairSample:
        from mofrr_core.data.realign import enlarge_for_retouch, reframe_for_retouch, shrink_to
        from mofrr_core.plugins import get_retouch_ops
        from mofrr_core.retouch.landmarks import FaceLandmarks

        ops, kept = self._choose_beside(self._choose_ops(rng), rng)
        image = face.image()
        landmarks = engine.check_face(image, FaceLandmarks(face.landmarks), where=f"face {face.key}")
        image, landmarks, border = reframe_for_retouch(image, landmarks, self._rng(index, _REFRAME_STREAM),
                                                       self.reframe)
        work, work_landmarks, app_scale = enlarge_for_retouch(image, landmarks, self._rng(index, _RETOUCH_SIZE_STREAM),
                                                              self.retouch_size)
        registered = get_retouch_ops() if ops else {}
        applied: list[dict[str, Any]] = []
        op_seeds: list[int] = []
        retouched = work
        for op in ops:  # one engine call per op, each with its own seed, so an op can be replayed alone
            spec = self._choose_api(op, registered[op], rng, engine)
            strength = engine.sample_strength(rng)
            op_seeds.append(int(rng.integers(2**63)))
            result = engine.retouch(retouched, work_landmarks, [op], np.random.default_rng(op_seeds[-1]),
                                    strengths=[strength], apis={op: spec.api}, where=f"face {face.key}")
            retouched = result.image
            applied.append(_jsonable(result.record["ops"][0]))
        extra: dict[str, Any] = {"reframe": {"border": border}} if self.reframe is not None else {}
        target = self._replay(engine, work, work_landmarks, applied, op_seeds, kept)  # `work` when none is kept
        if kept:
            extra["beside"] = kept
        if self.retouch_size is not None:
            extra["retouch_size"] = {"scale": app_scale}
            image, retouched, target = (shrink_to(x, image.shape) for x in (work, retouched, target))
        original_r, retouched_r = resize_uint8(target, self.resolution), resize_uint8(retouched, self.resolution)
        total_psnr = psnr_uint8(retouched_r, original_r)
        if self.postprocess is not None or self.realign is not None:
            original_r, retouched_r = self._as_photo(index, target, retouched, landmarks, extra)
            total_psnr = psnr_uint8(retouched_r, original_r)
        labels = np.zeros(len(self.types), np.float32)
        degrees = np.zeros(len(self.types), np.int64)
        sources = set()
        for entry, op_seed in zip(applied, op_seeds):
            op = entry["op"]
            if self.degree_thresholds is not None and op in self.degree_thresholds:
                alone_image = retouched
                if len(applied) > 1:  # the same op alone on the original
                    alone_image = shrink_to(self._replay_op(engine, work, work_landmarks, entry, op_seed), image.shape)
                alone = self._label_psnr(index, image, alone_image, landmarks)
                entry["psnr_alone"] = round(float(alone), 4)
                entry["degree"] = self.degree_thresholds.degree(op, alone)
                sources.add("psnr")
            else:
                entry["degree"] = degree_from_strength(float(entry["strength"]))
                sources.add("strength")
            if op in self.types:
                j = self.types.index(op)
                labels[j] = 1.0
                degrees[j] = entry["degree"]
        source = "none" if not sources else sources.pop() if len(sources) == 1 else "mixed"
        return PairSample(index, face.key, original_r, retouched_r, applied, self.types, labels, degrees,
                          total_psnr, source, extra)

    def _label_psnr(self, index: int, original: np.ndarray, retouched: np.ndarray, landmarks: Any) -> float:
        """PSNR of a retouching at ``resolution`` in the view its degree is read in (``degree_view``): the face's
        own crop, or the crop whole-photo mode cuts (the input's realignment, without the post-processing)."""
        if self.degree_view == "photo":
            from mofrr_core.data.realign import realign_pair
            from mofrr_core.faces import points5_from_landmarks

            original, retouched, _ = realign_pair(original, retouched, points5_from_landmarks(landmarks),
                                                  self._rng(index, _REALIGN_STREAM), self.realign)
        return psnr_uint8(resize_uint8(retouched, self.resolution), resize_uint8(original, self.resolution))

    def _as_photo(self, index: int, original: np.ndarray, retouched: np.ndarray, landmarks: Any,
                  extra: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The pair at ``resolution`` after the photo's life: post-processing of the input (retouched or
        not, one distribution), then the whole-photo alignment of both images."""
        if self.postprocess is not None:
            from mofrr_core.retouch.postprocess import postprocess

            retouched, extra["postprocess"] = postprocess(retouched, self._rng(index, _POSTPROCESS_STREAM),
                                                          self.postprocess)
        if self.realign is not None:
            from mofrr_core.data.realign import realign_pair
            from mofrr_core.faces import points5_from_landmarks

            original, retouched, extra["realign"] = realign_pair(
                original, retouched, points5_from_landmarks(landmarks), self._rng(index, _REALIGN_STREAM),
                self.realign)
        return resize_uint8(original, self.resolution), resize_uint8(retouched, self.resolution)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.generate(int(index)).to_sample()
