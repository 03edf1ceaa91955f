"""Checks of the Python API's arguments: one clear ``TypeError``/``ValueError`` naming the argument.

``Pipeline.__call__`` and ``restore_photo`` call one function of this module first, so a wrong
argument fails there, with its name and value, instead of deep inside torch or OpenCV.

Documented conversions (everything else is refused):

- a ``str``/``Path`` is read with :func:`mofrr_core.io.load_image` (any image file, EXIF applied);
- a 2-D uint8 array is grayscale (three equal channels); an ``HxWx4`` array drops its alpha;
- a PIL image of any mode is converted to RGB.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mofrr_core.io import check_image_size, load_image

SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
"""The seeds ``torch.Generator.manual_seed`` accepts."""
OUTPUT_TYPES = ("pil", "np", "pt")


def check_steps(steps: Any, name: str = "num_inference_steps") -> int | None:
    """``None`` (the pipeline's default) or a positive int; 0, negatives, floats and bools are refused."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer or None, got {steps!r}")
    if steps < 1:
        raise ValueError(f"{name} must be a positive integer (or None for the default), got {steps}")
    return int(steps)


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """``None`` or an int that ``torch.Generator.manual_seed`` accepts (-2**63 .. 2**64-1)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {seed!r}")
    if not SEED_MIN <= seed <= SEED_MAX:
        raise ValueError(f"{name} must be between -2**63 and 2**64-1, got {seed}")
    return int(seed)


def check_positive_int(value: Any, name: str) -> int:
    """A positive int (not a bool), or a ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def _check_array(array: np.ndarray, name: str, min_side: int = 1) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"{name}: expected an HxWx3 (or HxW grayscale) uint8 array, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise TypeError(f"{name}: expected a uint8 array (0..255), got dtype {array.dtype}; "
                        "convert with (x * 255).round().astype(np.uint8) if it holds floats in [0, 1]")
    _check_size(array.shape[1], array.shape[0], name, min_side)
    return array


def _check_size(width: int, height: int, name: str, min_side: int = 1) -> None:
    reason = check_image_size(width, height, min_side=min_side)
    if reason:
        raise ValueError(f"{name}: {reason}")


def _check_tensor(tensor, name: str) -> None:
    import torch

    if tensor.ndim != 3 or tensor.shape[0] != 3:
        hint = " (pass a [B, 3, H, W] batch itself, not inside a list)" if tensor.ndim == 4 else ""
        raise ValueError(f"{name}: expected a [3, H, W] tensor in [-1, 1], got shape {tuple(tensor.shape)}{hint}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor in [-1, 1], got dtype {tensor.dtype}")
    _check_size(tensor.shape[2], tensor.shape[1], name)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    low, high = float(tensor.min()), float(tensor.max())
    if low < -1.01 or high > 1.01:
        raise ValueError(f"{name}: tensor values must be in [-1, 1], got {low:.3g}..{high:.3g} "
                         "(uint8 images: pass a numpy array or PIL image instead)")


def _check_one(image: Any, name: str) -> Any:
    """One image checked, paths read; returns what the pipeline converts (PIL, array or tensor)."""
    import torch
    from PIL import Image

    if isinstance(image, (str, Path)):
        return load_image(image)
    if isinstance(image, Image.Image):
        _check_size(image.width, image.height, name)
        return image
    if isinstance(image, torch.Tensor):
        _check_tensor(image, name)
        return image
    if isinstance(image, np.ndarray):
        return _check_array(image, name)
    raise TypeError(f"{name}: expected a PIL image, a uint8 HxWx3 array, a [3, H, W] tensor in [-1, 1] or a "
                    f"file path, got {type(image).__name__}")


def check_images(images: Any) -> list[Any]:
    """The pipeline's ``images`` argument as a non-empty list of checked images.

    Accepts one image, a sequence of images, a ``[B, 3, H, W]`` tensor (in ``[-1, 1]``) or a
    ``[B, H, W, 3]`` uint8 array. ``TypeError``/``ValueError`` naming ``images[i]`` otherwise.
    """
    import torch
    from PIL import Image

    if isinstance(images, torch.Tensor) and images.ndim == 4:
        if images.shape[0] == 0:
            raise ValueError("images: empty batch; pass at least one image")
        return [_check_one(image, f"images[{i}]") for i, image in enumerate(images)]
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    elif isinstance(images, (str, Path, Image.Image, np.ndarray, torch.Tensor)):
        images = [images]
    if not isinstance(images, Sequence):
        raise TypeError(f"images: expected an image or a list of images, got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images: empty list; pass at least one image")
    return [_check_one(image, f"images[{i}]") for i, image in enumerate(images)]


def check_per_face(name: str, values: Any, count: int) -> Any:
    """``values`` (``None`` allowed) when it has one entry per face of the call, else a one-line ``ValueError``."""
    if values is not None and len(values) != count:
        raise ValueError(f"{name}: expected {count} entries (one per face), got {len(values)}")
    return values


def check_pipeline_call(images: Any, num_inference_steps: Any, seed: Any,
                        output_type: Any) -> tuple[list[Any], int | None, int | None]:
    """Everything ``Pipeline.__call__`` is given: ``(images, num_inference_steps, seed)`` checked."""
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
    return check_images(images), check_steps(num_inference_steps), check_seed(seed)


def check_photo(image: Any, name: str = "image", min_side: int = 1) -> np.ndarray:
    """A photo for ``restore_photo`` as a uint8 ``HxWx3`` array (paths read, PIL and grayscale converted)."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        return load_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a uint8 HxWx3 array, a PIL image or a file path, "
                        f"got {type(image).__name__}")
    array = _check_array(image, name, min_side)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array)


def check_restore_photo(image: Any, *, aligned: Any, detector: Any, max_faces: Any, steps: Any,
                        seed: Any) -> tuple[np.ndarray, int, int | None, int]:
    """Everything ``restore_photo`` is given: ``(image, max_faces, steps, seed)`` checked."""
    if not isinstance(aligned, (bool, np.bool_)):
        raise TypeError(f"aligned must be True or False, got {aligned!r}")
    if not aligned and detector is None:
        raise ValueError("detector: whole-photo mode needs a face detector "
                         "(mofrr_core.restore.face_detector()), or pass aligned=True")
    if not aligned and not callable(detector):
        raise TypeError(f"detector must be callable (image -> list of landmarks), got {type(detector).__name__}")
    from mofrr_core.io import MIN_SIDE

    photo = check_photo(image, min_side=1 if aligned else MIN_SIDE)
    seed = check_seed(seed)
    return photo, check_positive_int(max_faces, "max_faces"), check_steps(steps, "steps"), 0 if seed is None else seed


def check_device(device: Any, name: str = "--device") -> str:
    """A torch device that exists here (default: ``cuda`` if available, else ``cpu``), as a string."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} {device}: not a torch device (e.g. cpu, cuda, cuda:1)") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    if not available.get(parsed.type, True):
        raise ValueError(f"{name} {device}: {parsed.type.upper()} is not available on this machine "
                         "(this torch build or driver has none); use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"{name} {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    return str(parsed)
