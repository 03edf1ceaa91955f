"""Retouching degree labels 1..5, as the paper defines them (Sec. 3, RetouchingFFHQ++).

Per operation, the retouched images of the training split are sorted by
PSNR(retouched, original) and cut into groups of 15/25/25/25/10 % (ascending PSNR), labelled
5, 4, 3, 2, 1: the lowest PSNR (strongest visible change) is degree 5. The four cut points per
op are fitted once on training samples (:meth:`DegreeThresholds.fit`,
:func:`fit_degree_thresholds`), saved as JSON, and applied unchanged to val/test.

Without fitted thresholds the data falls back to :func:`degree_from_strength` (the
engine's strength range cut into five equal bins); datasets and manifests say which source was used
(``degree_source`` = ``"psnr"`` or ``"strength"``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEGREE_SHARES = (0.15, 0.25, 0.25, 0.25, 0.10)
"""Shares of the degree groups in ascending PSNR order (labels 5, 4, 3, 2, 1)."""
CUMULATIVE_SHARES = tuple(float(x) for x in np.cumsum(DEGREE_SHARES)[:-1])  # 0.15, 0.40, 0.65, 0.90
NUM_DEGREES = 5
FORMAT_VERSION = 1
CACHE_ENV = "MOFRR_CACHE"


def degree_from_psnr(psnr: float, cuts: Sequence[float]) -> int:
    """Degree 1..5 of one PSNR given the four ascending cut points of its op.

    ``psnr < cuts[0]`` -> 5, ``cuts[0] <= psnr < cuts[1]`` -> 4, ..., ``psnr >= cuts[3]`` -> 1.
    """
    group = int(np.searchsorted(np.asarray(cuts, dtype=np.float64), psnr, side="right"))
    return NUM_DEGREES - group


def engine_strength_range() -> tuple[float, float]:
    """The engine's strength range (``mofrr_core.retouch.engine.STRENGTH_RANGE``), strengths drawn uniformly in it."""
    from mofrr_core.retouch.engine import STRENGTH_RANGE

    return float(STRENGTH_RANGE[0]), float(STRENGTH_RANGE[1])


def degree_from_strength(strength: float, strength_range: tuple[float, float] | None = None) -> int:
    """Fallback degree of an op from its strength: the strength range cut into five equal bins (1 = weakest).

    ``strength_range`` defaults to the engine's :func:`engine_strength_range`; strengths are drawn
    uniformly in it, so every degree is equally frequent. Values outside clip to 1 or 5.
    """
    low, high = strength_range or engine_strength_range()
    position = (float(strength) - low) / (high - low)
    return int(min(NUM_DEGREES, max(1, math.floor(position * NUM_DEGREES) + 1)))


def fit_cuts(psnrs: Sequence[float]) -> list[float]:
    """Four cut points that split ``psnrs`` into exactly 15/25/25/25/10 % (up to rounding and ties).

    With ``n`` values sorted ascending, group boundaries sit at ranks ``round(n * share)``; each
    cut is the midpoint between the last value of a group and the first of the next.
    """
    values = np.sort(np.asarray(psnrs, dtype=np.float64))
    values = values[np.isfinite(values)]
    n = len(values)
    if n < NUM_DEGREES:
        raise ValueError(f"need at least {NUM_DEGREES} PSNR values to fit degree cuts, got {n}")
    cuts = []
    for share in CUMULATIVE_SHARES:
        rank = min(n - 1, max(1, int(round(n * share))))
        cuts.append(float((values[rank - 1] + values[rank]) / 2))
    return cuts


@dataclass
class DegreeThresholds:
    """Per-op PSNR cut points (4 ascending values each) that map a PSNR to a degree 1..5."""

    cuts: dict[str, list[float]]
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, psnrs_by_op: Mapping[str, Sequence[float]], **meta: Any) -> DegreeThresholds:
        """Fit the cut points of every op from its training PSNRs (``meta`` is stored alongside)."""
        counts = {op: len(values) for op, values in psnrs_by_op.items()}
        return cls({op: fit_cuts(values) for op, values in psnrs_by_op.items()},
                   {**meta, "samples_per_op": counts})

    @property
    def ops(self) -> list[str]:
        return list(self.cuts)

    def __contains__(self, op: str) -> bool:
        return op in self.cuts

    def degree(self, op: str, psnr: float) -> int:
        """Degree 1..5 of ``op`` at this PSNR; ``KeyError`` naming the op if it was not fitted."""
        if op not in self.cuts:
            raise KeyError(f"no degree thresholds for op {op!r} (fitted: {', '.join(self.cuts) or 'none'})")
        return degree_from_psnr(psnr, self.cuts[op])

    def to_dict(self) -> dict[str, Any]:
        return {"format": "mofrr-degree-thresholds", "version": FORMAT_VERSION,
                "shares_ascending_psnr": list(DEGREE_SHARES), "labels_ascending_psnr": [5, 4, 3, 2, 1],
                "cuts": {op: list(map(float, c)) for op, c in self.cuts.items()}, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> DegreeThresholds:
        cuts = data.get("cuts")
        if not isinstance(cuts, Mapping):
            raise ValueError(f"{source}: not a degree-thresholds file (no 'cuts' mapping)")
        for op, values in cuts.items():
            if len(values) != NUM_DEGREES - 1 or list(values) != sorted(values):
                raise ValueError(f"{source}: cuts of {op!r} must be {NUM_DEGREES - 1} ascending numbers, "
                                 f"got {values}")
        return cls({op: [float(v) for v in values] for op, values in cuts.items()}, dict(data.get("meta", {})))

    def save(self, path: str | Path) -> Path:
        """Write as JSON atomically."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DegreeThresholds:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: degree thresholds file not found") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(data, str(path))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON through a temporary file and a rename (no half-written file is ever visible)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def default_cache_dir() -> Path:
    """``$MOFRR_CACHE`` or ``~/.cache/mofrr``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mofrr").expanduser()


def engine_version() -> str:
    """Identity of the retouching engine: mofrr version, ``ENGINE_VERSION`` if declared, a hash of the
    engine's source files and the registered ops (op/api/distribution), so editing an op invalidates caches."""
    from mofrr_core import __version__

    try:
        from mofrr_core.retouch import engine
    except ImportError:
        return f"mofrr-{__version__}"
    from mofrr_core.plugins import get_retouch_ops

    digest = hashlib.sha256()
    folder = Path(engine.__file__).parent
    for path in sorted([*folder.rglob("*.py"), *folder.rglob("*.yaml")]):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    for op, apis in sorted(get_retouch_ops().items()):
        for api, spec in sorted(apis.items()):
            digest.update(f"{op}/{api}/{spec.distribution}-{_dist_version(spec.distribution)}".encode())
    declared = getattr(engine, "ENGINE_VERSION", None)
    return f"mofrr-{__version__}/engine-{declared or 'src'}-{digest.hexdigest()[:12]}"


def _dist_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def thresholds_cache_path(config: Mapping[str, Any], cache_dir: str | Path | None = None) -> Path:
    """Cache file of thresholds fitted with ``config`` (data root, engine version, sizes, APIs...)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()) / f"degree-thresholds-{digest}.json"


def fit_degree_thresholds(root: str | Path | None = None, n: int = 1000, resolution: int = 256, *,
                          ops: Sequence[str] | None = None, seed: int = 0, apis: Mapping[str, str] | None = None,
                          exclude_apis: Mapping[str, Sequence[str]] | None = None,
                          cache_dir: str | Path | None = None, use_cache: bool = True,
                          progress: bool = True) -> DegreeThresholds:
    """Fit degree thresholds on ``n`` single-op training samples per op (progress bar).

    Each op is applied alone (random strength and API, as in training) to ``n`` training faces;
    the PSNR at ``resolution`` is collected and cut 15/25/25/25/10 %. The result is cached as
    JSON under ``cache_dir`` (default ``~/.cache/mofrr``), keyed by the resolved data root,
    the engine version and every argument; a later call with the same key loads it. Only training
    apis are used (``apis_set="train"``): held-out apis never shape the degree labels.
    """
    from tqdm.auto import tqdm

    from mofrr_core.data.pairs import RetouchPairs
    from mofrr_core.data.shards import resolve_data_root

    data_root = resolve_data_root(root).resolve()
    if ops is None:
        from mofrr_core.retouch.engine import TYPES

        ops = list(TYPES)
    config = {"data_root": str(data_root), "engine": engine_version(), "n": int(n), "resolution": int(resolution),
              "ops": list(ops), "seed": int(seed), "apis": dict(apis or {}),
              "exclude_apis": {k: list(v) for k, v in (exclude_apis or {}).items()}, "split": "train",
              "apis_set": "train"}
    cache = thresholds_cache_path(config, cache_dir)
    if use_cache and cache.is_file():
        return DegreeThresholds.load(cache)
    psnrs: dict[str, list[float]] = {}
    with tqdm(total=n * len(ops), desc="fitting degree thresholds", unit="img", disable=not progress) as bar:
        for j, op in enumerate(ops):
            dataset = RetouchPairs(data_root, split="train", resolution=resolution, ops=[op], seed=seed * 1009 + j,
                                   length=n, apis=apis, exclude_apis=exclude_apis, apis_set="train")
            values = []
            for i in range(n):
                values.append(dataset.generate(i).psnr)
                bar.update()
            psnrs[op] = values
    thresholds = DegreeThresholds.fit(psnrs, **config)
    if use_cache:
        thresholds.save(cache)
        thresholds.meta["cache"] = str(cache)
    return thresholds
