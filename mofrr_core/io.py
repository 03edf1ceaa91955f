"""Reading user images robustly and writing outputs atomically, never overwriting silently."""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
OUTPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
MIN_SIDE = 16
"""Smaller images are refused: too few pixels to hold a face (16..255 px are upscaled for the networks)."""
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Larger images are refused before decoding (Pillow's decompression-bomb limit, about 89 megapixels)."""
MAX_SIDE = 16384
"""Longer sides are refused before decoding: OpenCV (and MediaPipe through it) aborts the whole
process on images with a side of 32767 px or more; half of that leaves room for every resize."""
MAX_ASPECT = 32
"""Images longer than this many times their width (or wider than their height) are refused: no photo."""
PARTIAL_SUFFIX = ".partial"
NAME_MAX = 255
"""Longest file name (bytes) on common file systems; ``os.pathconf`` is asked where it answers."""
Action = Literal["write", "skip"]


class ImageLoadError(ValueError):
    """An input file is not a readable image; the message names the file."""


class OutputError(OSError):
    """The output folder cannot be created or written to; the message names it."""


def check_image_size(width: int, height: int, min_side: int = MIN_SIDE) -> str | None:
    """Why an image of ``width`` x ``height`` px is refused (too small, too large, too thin), or ``None``."""
    if min(width, height) < min_side:
        return f"image is too small ({width}x{height} px; at least {min_side} px per side are needed)"
    if width * height > MAX_PIXELS:
        return (f"image is too large ({width}x{height} = {width * height / 1e6:.0f} megapixels; "
                f"limit {MAX_PIXELS / 1e6:.0f}); downscale it first")
    if max(width, height) > MAX_SIDE:
        return f"image is too large ({width}x{height} px; at most {MAX_SIDE} px per side); downscale it first"
    if max(width, height) > MAX_ASPECT * min(width, height):
        return (f"image is too elongated ({width}x{height} px, aspect ratio over {MAX_ASPECT}:1); "
                "crop it to the part with the face")
    return None


def name_max(folder: str | Path) -> int:
    """Longest file name (in bytes) allowed in ``folder``."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def check_name_length(path: Path, hint: str = "rename the input") -> None:
    """``ValueError`` naming ``path`` if its file name is longer than its file system allows."""
    folder = next((p for p in path.parents if p.is_dir()), Path("."))
    limit = name_max(folder)
    if len(os.fsencode(path.name)) > limit:
        raise ValueError(f"{path}: file name too long ({len(os.fsencode(path.name))} bytes, limit {limit}); "
                         + hint)


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
    ext = (ext if ext.startswith(".") else f".{ext}").lower()
    if ext not in OUTPUT_SUFFIXES:
        raise ValueError(f"--ext {ext}: unsupported output format (choose one of {', '.join(sorted(OUTPUT_SUFFIXES))})")
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
        check_name_length(dst, "rename the input or use a shorter --ext")
        if dst.exists() and not overwrite:
            if not skip_existing:
                raise FileExistsError(f"{dst} exists; pass --overwrite to replace it or --skip-existing to keep it")
            plan.append((src, dst, "skip"))
        else:
            plan.append((src, dst, "write"))
    return plan


def load_image(path: str | Path) -> np.ndarray:
    """Any image file -> writable uint8 HxWx3 RGB, EXIF orientation applied.

    Grayscale, 16-bit, palette, RGBA/LA (composited on white) and CMYK inputs are converted.
    ``ImageLoadError`` (naming the file) for a missing, empty, truncated, corrupt or non-image
    file, an image smaller than :data:`MIN_SIDE` or larger than :data:`MAX_PIXELS`.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: {'is a folder, not an image' if path.is_dir() else 'no such file'}")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: not a readable image (empty file)")
    try:
        with Image.open(path) as image:
            if reason := check_image_size(*image.size, min_side=1):  # from the header, before decoding
                raise ImageLoadError(f"{path}: {reason}")
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            array = _to_rgb_uint8(image)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError:
        raise ImageLoadError(_too_large(path, *_header_size(path))) from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except MemoryError:
        raise ImageLoadError(f"{path}: not enough memory to decode this image") from None
    except Exception as error:  # noqa: BLE001 - decoders raise many types on corrupt data
        reason = str(error) or type(error).__name__
        raise ImageLoadError(f"{path}: not a readable image ({reason})") from None
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageLoadError(f"{path}: unsupported image layout {array.shape}")
    if reason := check_image_size(array.shape[1], array.shape[0]):
        raise ImageLoadError(f"{path}: {reason}")
    return array


def _too_large(path: Path, width: int, height: int) -> str:
    return (f"{path}: image is too large ({width}x{height} = {width * height / 1e6:.0f} megapixels; "
            f"limit {MAX_PIXELS / 1e6:.0f}); downscale it first")


def _header_size(path: Path) -> tuple[int, int]:
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # only read the header to report the size
        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001
        return (0, 0)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _rgb_rows(image: Image.Image, rows: int = 256) -> np.ndarray:
    """A writable uint8 HxWx3 copy of an RGB image, filled a strip of rows at a time: the whole
    image is never held twice besides Pillow's own (4 bytes per pixel) copy."""
    width, height = image.size
    array = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, rows):
        array[top:top + rows] = np.asarray(image.crop((0, top, width, min(top + rows, height))))
    return array


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):  # 16/32-bit/float grayscale -> 8 bits
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        top = values.max(initial=0.0)
        if image.mode.startswith("I;16"):
            peak = 65535.0
        elif image.mode == "F" and top <= 1.0:
            peak = 1.0
        else:
            peak = 65535.0 if top > 255 else 255.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return _rgb_rows(Image.alpha_composite(background, rgba).convert("RGB"))
    return _rgb_rows(image if image.mode == "RGB" else image.convert("RGB"))


def save_image_atomic(image: np.ndarray | Image.Image, dst: str | Path, *, overwrite: bool = False) -> Path:
    """Write an image through a temporary file and a rename, so no partial file is ever left.

    The format follows ``dst``'s suffix (PNG for unknown suffixes).
    """
    dst = Path(dst)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    image_format = Image.registered_extensions().get(dst.suffix.lower(), "PNG")
    return _write_atomic(dst, lambda handle: pil.save(handle, format=image_format), overwrite)


def write_bytes_atomic(data: bytes, dst: str | Path, *, overwrite: bool = False) -> Path:
    """Write bytes through a temporary file and a rename (no partial file, never a silent overwrite)."""
    return _write_atomic(Path(dst), lambda handle: handle.write(data), overwrite)


def _write_atomic(dst: Path, write, overwrite: bool) -> Path:
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=partial_prefix(dst), suffix=PARTIAL_SUFFIX, dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def partial_prefix(dst: Path) -> str:
    """``.<name>.`` for the temporary file of ``dst``; a name too long to take 18 more bytes is cut and
    marked with a hash of the full name (``.<start>~<hash>.``), so every legal name can be written."""
    name = dst.name
    budget = name_max(dst.parent) if dst.parent.is_dir() else NAME_MAX
    budget -= 2 + 8 + len(PARTIAL_SUFFIX)  # the dots, mkstemp's random part, the suffix
    if len(os.fsencode(name)) <= budget:
        return f".{name}."
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    start = os.fsencode(name)[:budget - 9].decode(errors="ignore")
    return f".{start}~{digest}."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def prepare_output_dir(out_dir: str | Path) -> Path:
    """Create the output folder if needed and check that files can be written in it.

    ``OutputError`` names the folder (a file in the way, no permission, read-only file system).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: output path exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".mofrr-write-test.", suffix=PARTIAL_SUFFIX, dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"{out_dir}: cannot write to the output folder ({error.strerror or error})") from None
    return out_dir


def remove_stale_partials(paths: Sequence[Path]) -> list[Path]:
    """Delete temporary files left next to ``paths`` by a killed run (``.<name>.*.partial``)."""
    removed = []
    for dst in paths:
        if dst.parent.is_dir():
            for stale in dst.parent.glob(f"{glob.escape(partial_prefix(dst))}*{PARTIAL_SUFFIX}"):
                stale.unlink(missing_ok=True)
                removed.append(stale)
    return removed


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
