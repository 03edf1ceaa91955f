"""Paired image folders on disk, all yielding the documented sample dict.

Three layouts are recognised (:func:`detect_layout`):

``manifest``
    a ``mofrr synth`` output: ``manifest.json`` + ``original/<id>.png`` + ``retouched/<id>.png``;
    labels, degrees and keys come from the manifest.
``paired``
    ``original/*`` + ``retouched/*`` matched by file stem (any image suffix); labels and degrees
    are unknown and yielded as zeros (``dataset.has_labels`` is ``False``).
``authors``
    the RetouchingFFHQ++ layout: originals in ``ori/`` and retouched images in
    ``<type>/<degree>/<stem>.<ext>``, e.g. ``white/3/00012.png`` next to ``ori/00012.png``.
    A type folder is a type name (``white``, ``smooth``, ``face``, ``eye``, plugin ops) or an
    alias (``whitening``, ``smoothing``, ``face_lifting``/``lifting``/``facelift``,
    ``eye_enlarging``/``eyes``/``enlarging``), case-insensitive. A multi-op folder joins type
    names with ``_``, ``+``, ``-`` or ``&`` (``white_smooth``, ``white+eye+face``). Its degree
    sub-folder is either one digit ``1``..``5`` (every op of the folder has that degree) or one
    digit per op joined by ``_`` in folder order (``white_eye/4_2``). Point ``root`` at one API's
    folder (the dataset keeps APIs in separate trees).

Errors name the offending file or folder: a retouched image without an original (or vice
versa in the ``paired`` layout), an unreadable image (on access, or all at once with
:meth:`PairedFolder.verify`), an unknown type folder, a bad degree folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from mofrr_core.data.pairs import DEFAULT_TYPES, resize_uint8
from mofrr_core.data.splits import check_split, split_of
from mofrr_core.io import IMAGE_SUFFIXES, ImageLoadError, load_image
from mofrr_core.utils.image import uint8_to_tensor

Layout = Literal["manifest", "paired", "authors"]
MANIFEST = "manifest.json"
TYPE_ALIASES = {
    "white": "white", "whiten": "white", "whitening": "white",
    "smooth": "smooth", "smoothing": "smooth",
    "face": "face", "lift": "face", "lifting": "face", "facelift": "face", "face_lifting": "face",
    "facelifting": "face", "thin": "face", "slim": "face",
    "eye": "eye", "eyes": "eye", "enlarge": "eye", "enlarging": "eye", "eye_enlarging": "eye",
    "eyeenlarging": "eye", "bigeye": "eye", "big_eye": "eye",
}
_JOINERS = re.compile(r"[+&\-_]")


class LayoutError(ValueError):
    """A folder does not follow a known paired layout; the message names the file or folder."""


@dataclass(frozen=True)
class PairItem:
    """One pair on disk with its labels (``ops`` -> degree, 0 if unknown)."""

    key: str
    original: Path
    retouched: Path
    degrees: dict[str, int]
    labelled: bool = True


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def _by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in _images(folder):
        if path.stem in found:
            raise LayoutError(f"{path}: two images with stem {path.stem!r} ({found[path.stem].name} and {path.name})")
        found[path.stem] = path
    return found


def detect_layout(root: str | Path) -> Layout:
    """Which paired layout ``root`` holds; ``LayoutError`` naming the folder if none."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder")
    if (root / MANIFEST).is_file():
        return "manifest"
    if (root / "original").is_dir() and (root / "retouched").is_dir():
        return "paired"
    if (root / "ori").is_dir():
        return "authors"
    raise LayoutError(f"{root}: no {MANIFEST}, original/ + retouched/ or ori/ folder (see docs/data.md)")


def parse_type_folder(name: str, types: Sequence[str] = DEFAULT_TYPES) -> list[str]:
    """Ops of an authors'-layout type folder name (``"white_eye"`` -> ``["white", "eye"]``).

    Single names and aliases are tried first (so ``face_lifting`` is one op), then the name is
    split on ``_ + - &``; the ``KeyError`` names the unknown part.
    """
    lowered = name.lower()
    known = {t.lower(): t for t in types}

    def one(part: str) -> str | None:
        return known.get(part) or TYPE_ALIASES.get(part) or TYPE_ALIASES.get(part.replace("-", "_"))

    if (single := one(lowered)) is not None:
        return [single]
    ops: list[str] = []
    parts = [p for p in _JOINERS.split(lowered) if p]
    i = 0
    while i < len(parts):  # greedy: two-word aliases such as face_lifting inside white_face_lifting
        pair = one(f"{parts[i]}_{parts[i + 1]}") if i + 1 < len(parts) else None
        if pair is not None:
            ops.append(pair)
            i += 2
            continue
        op = one(parts[i])
        if op is None:
            raise KeyError(parts[i])
        ops.append(op)
        i += 1
    if not ops or len(set(ops)) != len(ops):
        raise KeyError(name)
    return ops


def _parse_degree_folder(path: Path, ops: list[str]) -> dict[str, int]:
    parts = path.name.split("_")
    if not all(p.isdigit() and 1 <= int(p) <= 5 for p in parts) or len(parts) not in (1, len(ops)):
        raise LayoutError(f"{path}: expected a degree folder 1..5 (or one degree per op joined by '_' for "
                          f"{'+'.join(ops)})")
    values = [int(p) for p in parts] * (len(ops) if len(parts) == 1 else 1)
    return dict(zip(ops, values))


def scan_authors(root: Path, types: Sequence[str]) -> list[PairItem]:
    """Pairs of the RetouchingFFHQ++ layout (``ori/`` + ``<type>/<degree>/``)."""
    originals = _by_stem(root / "ori")
    items: list[PairItem] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "ori" and not p.name.startswith(".")):
        try:
            ops = parse_type_folder(folder.name, types)
        except KeyError as error:
            raise LayoutError(f"{folder}: unknown retouching type folder (part {error.args[0]!r}); known types: "
                              f"{', '.join(types)} and aliases {', '.join(sorted(TYPE_ALIASES))}") from None
        stray = _images(folder)
        if stray:
            raise LayoutError(f"{stray[0]}: images must sit in degree sub-folders {folder.name}/1..5, not in "
                              f"{folder.name}/ itself")
        for degree_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            degrees = _parse_degree_folder(degree_dir, ops)
            for path in _images(degree_dir):
                if path.stem not in originals:
                    raise LayoutError(f"{path}: no original {root / 'ori'}/{path.stem}.* for this retouched image")
                items.append(PairItem(path.stem, originals[path.stem], path, degrees))
    if not items:
        raise LayoutError(f"{root}: ori/ found but no retouched images in <type>/<degree>/ folders")
    return items


def scan_paired(root: Path) -> list[PairItem]:
    """Pairs of ``original/`` + ``retouched/`` matched by stem (both sides must match)."""
    originals, retouched = _by_stem(root / "original"), _by_stem(root / "retouched")
    for stem, path in retouched.items():
        if stem not in originals:
            raise LayoutError(f"{path}: no original {root / 'original'}/{stem}.* for this retouched image")
    for stem, path in originals.items():
        if stem not in retouched:
            raise LayoutError(f"{path}: no retouched {root / 'retouched'}/{stem}.* for this original")
    if not retouched:
        raise LayoutError(f"{root / 'retouched'}: no images")
    return [PairItem(stem, originals[stem], retouched[stem], {}, labelled=False) for stem in sorted(retouched)]


def scan_manifest(root: Path) -> tuple[list[PairItem], dict[str, Any]]:
    """Pairs listed in a ``mofrr synth`` manifest (files must exist)."""
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        entries = manifest["items"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise LayoutError(f"{path}: not a mofrr synth manifest ({type(error).__name__}: {error})") from None
    items = []
    for entry in entries:
        original, retouched = root / entry["original"], root / entry["retouched"]
        for p in (original, retouched):
            if not p.is_file():
                raise LayoutError(f"{p}: listed in {path} but missing")
        degrees = {op: int(d) for op, d in entry.get("degrees", {}).items() if int(d) > 0}
        items.append(PairItem(entry.get("key", entry["id"]), original, retouched, degrees))
    return items, manifest


class PairedFolder(Dataset):
    """Paired images on disk (synth output, ``original``/``retouched`` folders, or RetouchingFFHQ++).

    Args:
        root: the folder (layout auto-detected, see module docstring).
        resolution: output side (``None``: keep the file size; both images must match).
        types: label axis; ops found on disk that are not in it are appended.
        split: ``None`` for all pairs, or keep only the pairs whose key (file stem) hashes to that
            split (8:1:1, as the shards) -- for the authors' layout, which holds the whole dataset.
    """

    def __init__(self, root: str | Path, resolution: int | None = 256, types: Sequence[str] = DEFAULT_TYPES,
                 split: str | None = None) -> None:
        self.root = Path(root)
        self.layout = detect_layout(self.root)
        self.resolution = resolution
        self.manifest: dict[str, Any] | None = None
        if self.layout == "manifest":
            items, self.manifest = scan_manifest(self.root)
        elif self.layout == "paired":
            items = scan_paired(self.root)
        else:
            items = scan_authors(self.root, types)
        if split is not None:
            check_split(split)
            items = [item for item in items if split_of(item.key) == split]
        self.items = items
        extra = [op for item in items for op in item.degrees if op not in types]
        self.types = tuple(types) + tuple(dict.fromkeys(extra))
        self.has_labels = all(item.labelled for item in items)

    @property
    def degree_source(self) -> str:
        """Where the degrees come from: the manifest's source, ``"folders"`` (authors') or ``"none"``."""
        if self.manifest is not None:
            return str(self.manifest.get("degree_source", "unknown"))
        return "folders" if self.layout == "authors" else "none"

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"PairedFolder({str(self.root)!r}, layout={self.layout!r}, pairs={len(self)})"

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(original, retouched)`` uint8 at the dataset resolution; errors name the file."""
        item = self.items[index]
        original, retouched = load_image(item.original), load_image(item.retouched)
        if original.shape != retouched.shape:
            raise ImageLoadError(f"{item.retouched}: size {retouched.shape[1]}x{retouched.shape[0]} differs from "
                                 f"its original {item.original} ({original.shape[1]}x{original.shape[0]})")
        return resize_uint8(original, self.resolution), resize_uint8(retouched, self.resolution)

    def verify(self) -> None:
        """Load every pair once; raises on the first unreadable or mismatched file."""
        for i in range(len(self)):
            self.load_pair(i)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        original, retouched = self.load_pair(index)
        labels = np.zeros(len(self.types), np.float32)
        degrees = np.zeros(len(self.types), np.int64)
        for op, degree in item.degrees.items():
            j = self.types.index(op)
            labels[j], degrees[j] = 1.0, degree
        return {"retouched": uint8_to_tensor(np.array(retouched)), "original": uint8_to_tensor(np.array(original)),
                "labels": torch.from_numpy(labels), "degrees": torch.from_numpy(degrees), "key": item.key}


def open_dataset(path: str | Path | None = None, split: str = "test", resolution: int | None = 256,
                 **kwargs: Any) -> Dataset:
    """A dataset for ``path``: a shard folder (``*.tar``) -> :class:`~mofrr_core.data.pairs.RetouchPairs`
    (``kwargs`` go to it); a folder with ``manifest.json``, ``original/`` + ``retouched/`` or ``ori/`` ->
    :class:`PairedFolder` (``split`` filters the authors' layout only; the others are one split already).
    ``path=None`` uses the default shard folder.
    """
    from mofrr_core.data.pairs import RetouchPairs

    if path is None:
        return RetouchPairs(None, split=split, resolution=resolution, **kwargs)
    root = Path(path)
    if root.is_dir() and any(root.glob("*.tar")):
        return RetouchPairs(root, split=split, resolution=resolution, **kwargs)
    layout = detect_layout(root)
    types = kwargs.pop("types", DEFAULT_TYPES)
    if kwargs:
        raise TypeError(f"{root}: options {', '.join(sorted(kwargs))} only apply to shard folders")
    return PairedFolder(root, resolution=resolution, types=types, split=split if layout == "authors" else None)
