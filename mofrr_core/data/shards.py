"""Read the FairFace WebDataset shards (``faces-*.tar``) with plain :mod:`tarfile`.

Each sample ``<key>`` of a shard holds ``<key>.jpg`` (original JPEG bytes), ``<key>.json``
(metadata: source, license, age, gender, race, sharpness, ...) and ``<key>.landmarks.npy``
(float16 ``[478, 2]`` MediaPipe face-mesh pixel x, y). All records of the shared set
(~10.8k faces, ~110 MB of JPEG) fit in memory; images are decoded lazily.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DATA_ENV = "MOFRR_DATA"
SHARD_PATTERN = "faces-*.tar"
_REQUIRED = ("jpg", "json", "landmarks.npy")


class DataRootError(FileNotFoundError):
    """The data folder is missing or holds no shards; the message names the path and how to set it."""


SHARP = 2.0  # metadata sharpness from which a FairFace crop has real skin detail (the shards' README)


@dataclass(frozen=True, eq=False)
class FaceRecord:
    """One face of the shards: raw JPEG bytes, metadata and float32 ``[478, 2]`` landmarks."""

    key: str
    jpeg_bytes: bytes = field(repr=False)
    meta: dict[str, Any] = field(repr=False)
    landmarks: np.ndarray = field(repr=False)

    @property
    def sharpness(self) -> float:
        """FairFace crop sharpness from the metadata (:data:`SHARP` or more: real skin detail); 0 if absent."""
        return float(self.meta.get("sharpness", 0.0))

    def image(self) -> np.ndarray:
        """Decode the JPEG -> uint8 ``HxWx3`` RGB."""
        return decode_jpeg(self.jpeg_bytes, self.key)


def decode_jpeg(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """JPEG (or any PIL-readable) bytes -> uint8 ``HxWx3`` RGB; the error names ``name``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{name}: image bytes are not decodable ({error})") from None


def checkout_root() -> Path:
    """The folder of this checkout (the parent of the ``mofrr_core`` package)."""
    return Path(__file__).resolve().parents[2]


def default_data_root() -> Path:
    """``$MOFRR_DATA`` if set, else ``../shared/data/faces`` next to the checkout.

    Raises :class:`DataRootError` naming the path (and the ``--data`` flag / ``MOFRR_DATA``
    variable) if the folder does not exist.
    """
    value = os.environ.get(DATA_ENV)
    if value:
        root, origin = Path(value).expanduser(), f"${DATA_ENV}"
    else:
        root, origin = checkout_root().parent / "shared" / "data" / "faces", "the default"
    if not root.is_dir():
        raise DataRootError(f"face data folder {root} ({origin}) does not exist; pass --data DIR or set "
                            f"{DATA_ENV}=DIR to the folder holding {SHARD_PATTERN}")
    return root


def resolve_data_root(root: str | Path | None = None) -> Path:
    """``root`` if given (must exist), else :func:`default_data_root`."""
    if root is None:
        return default_data_root()
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataRootError(f"face data folder {path} does not exist; pass --data DIR or set {DATA_ENV}=DIR "
                            f"to the folder holding {SHARD_PATTERN}")
    return path


def list_shards(root: str | Path | None = None) -> list[Path]:
    """The shard files ``faces-*.tar`` (or any ``*.tar``) of a data folder, sorted."""
    path = resolve_data_root(root)
    shards = sorted(path.glob(SHARD_PATTERN)) or sorted(path.glob("*.tar"))
    if not shards:
        raise DataRootError(f"{path}: no {SHARD_PATTERN} shards in this folder; pass --data DIR or set "
                            f"{DATA_ENV}=DIR to the folder holding them")
    return shards


def _split_name(name: str) -> tuple[str, str]:
    base = name.rsplit("/", 1)[-1]
    key, _, ext = base.partition(".")  # WebDataset: the key ends at the first dot of the basename
    prefix = name[: len(name) - len(base)]
    return prefix + key, ext


def iter_shard(path: str | Path) -> Iterator[FaceRecord]:
    """The records of one shard, in file order; a sample missing a part is an error naming it."""
    path = Path(path)
    parts: dict[str, dict[str, bytes]] = {}
    try:
        with tarfile.open(path, "r") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = _split_name(member.name)
                if ext not in _REQUIRED:
                    continue
                handle = tar.extractfile(member)
                parts.setdefault(key, {})[ext] = handle.read() if handle else b""
    except tarfile.TarError as error:
        raise ValueError(f"{path}: not a readable tar shard ({error})") from None
    for key, files in parts.items():
        missing = [ext for ext in _REQUIRED if ext not in files]
        if missing:
            raise ValueError(f"{path}: sample {key!r} lacks {', '.join(key + '.' + m for m in missing)}")
        landmarks = np.load(io.BytesIO(files["landmarks.npy"]), allow_pickle=False).astype(np.float32)
        if landmarks.ndim != 2 or landmarks.shape[1] != 2:
            raise ValueError(f"{path}: {key}.landmarks.npy has shape {landmarks.shape}, expected [478, 2]")
        yield FaceRecord(key, files["jpg"], json.loads(files["json"]), landmarks)


@lru_cache(maxsize=4)
def _read_cached(shards: tuple[tuple[str, float, int], ...]) -> tuple[FaceRecord, ...]:
    return tuple(record for path, _mtime, _size in shards for record in iter_shard(path))


def read_shards(root: str | Path | None = None) -> list[FaceRecord]:
    """Every record of every shard of ``root`` (default :func:`default_data_root`), in shard order.

    Results are cached per process (keyed by shard paths, mtimes and sizes), so several
    datasets over the same folder share one copy of the bytes.
    """
    shards = list_shards(root)
    signature = tuple((str(p.resolve()), p.stat().st_mtime, p.stat().st_size) for p in shards)
    records = list(_read_cached(signature))
    seen: set[str] = set()
    for record in records:
        if record.key in seen:
            raise ValueError(f"{resolve_data_root(root)}: key {record.key!r} occurs in more than one shard")
        seen.add(record.key)
    return records


def face_metadata(root: str | Path | None = None) -> dict[str, dict]:
    """``{key: FairFace metadata (race, gender, age...)}`` of every face of the shards of ``root``."""
    return {record.key: record.meta for record in read_shards(root)}


def write_shard(path: str | Path, records: Iterable[FaceRecord]) -> Path:
    """Write records as a WebDataset tar shard (tests, subsets); refuses to overwrite."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; remove it first")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for record in records:
            buffer = io.BytesIO()
            np.save(buffer, record.landmarks.astype(np.float16))
            for ext, data in (("jpg", record.jpeg_bytes), ("json", json.dumps(record.meta).encode()),
                              ("landmarks.npy", buffer.getvalue())):
                info = tarfile.TarInfo(f"{record.key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path
