"""Reading user images robustly and writing outputs atomically, never overwriting silently."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
Action = Literal["write", "skip"]


class ImageLoadError(ValueError):
    """An input file is not a readable image; the message names the file."""


def resolve_inputs(patterns: Sequence[str | Path]) -> list[Path]:
    """Files, folders (their images, sorted, not recursive) and glob patterns -> image paths."""
    found: list[Path] = []
    for pattern in map(str, patterns):
        path = Path(pattern)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(path)
        elif matches := sorted(glob.glob(pattern)):
            found += [Path(m) for m in matches if Path(m).is_file()]
        else:
            raise FileNotFoundError(f"{pattern}: no such file, folder or matching glob")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise FileNotFoundError(f"no images found in {', '.join(map(str, patterns))}")
    return unique


def plan_outputs(inputs: Sequence[Path], out_dir: Path, *, ext: str = ".png", overwrite: bool = False,
                 skip_existing: bool = False) -> list[tuple[Path, Path, Action]]:
    """Decide the output path of each input; refuse clashes instead of overwriting anything.

    Raises ``FileExistsError`` naming the first existing output unless ``overwrite`` or
    ``skip_existing`` is set, and ``ValueError`` if an output would replace an input or two
    inputs map to the same output.
    """
    ext = ext if ext.startswith(".") else f".{ext}"
    plan: list[tuple[Path, Path, Action]] = []
    seen: dict[Path, Path] = {}
    sources = {p.resolve() for p in inputs}
    for src in inputs:
        dst = Path(out_dir) / f"{src.stem}{ext}"
        if dst.resolve() in sources:
            raise ValueError(f"{dst}: output path equals an input; choose another output folder")
        if dst in seen:
            raise ValueError(f"{seen[dst]} and {src} would both be written to {dst}; rename one of them")
        seen[dst] = src
        if dst.exists() and not overwrite:
            if not skip_existing:
                raise FileExistsError(f"{dst} exists; pass --overwrite to replace it or --skip-existing to keep it")
            plan.append((src, dst, "skip"))
        else:
            plan.append((src, dst, "write"))
    return plan


def load_image(path: str | Path) -> np.ndarray:
    """Any image file -> uint8 HxWx3 RGB, EXIF orientation applied; ``ImageLoadError`` names the file."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            array = _to_rgb_uint8(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = "empty file" if path.exists() and path.stat().st_size == 0 else str(error)
        raise ImageLoadError(f"{path}: not a readable image ({reason})") from None
    if min(array.shape[:2]) < 8:
        raise ImageLoadError(f"{path}: image is too small ({array.shape[1]}x{array.shape[0]} px)")
    return array


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grayscale: scale to 8 bits
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if values.max() > 255 else 255.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def save_image_atomic(image: np.ndarray | Image.Image, dst: str | Path, *, overwrite: bool = False) -> Path:
    """Write an image through a temporary file and a rename, so no partial file is ever left."""
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=dst.suffix, dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pil.save(handle, format=Image.registered_extensions().get(dst.suffix.lower(), "PNG"))
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst
