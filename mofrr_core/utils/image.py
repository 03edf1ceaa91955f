"""Conversions between PIL images, numpy uint8 HxWx3 arrays and ``[-1, 1]`` BCHW tensors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image

ImageLike = Image.Image | np.ndarray | torch.Tensor


def to_uint8(image: ImageLike) -> np.ndarray:
    """Any single image -> uint8 HxWx3 RGB (tensors are CHW in ``[-1, 1]``)."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"expected a [3, H, W] tensor, got shape {tuple(image.shape)}")
        array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
        return rearrange(array, "c h w -> h w c").to(torch.uint8).numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 array, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {array.dtype}")
    return np.ascontiguousarray(array[..., :3])


def uint8_to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float tensor ``[3, H, W]`` in ``[-1, 1]`` (a read-only array is copied, not shared)."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return rearrange(torch.from_numpy(array), "h w c -> c h w").float() / 127.5 - 1


def to_tensor_list(images: ImageLike | Sequence[ImageLike]) -> list[torch.Tensor]:
    """One image, a list of images, or a BCHW/BHWC batch -> list of ``[3, H, W]`` tensors in ``[-1, 1]``."""
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            return [images.float()]
        if images.ndim == 4:
            return [image.float() for image in images]
        raise ValueError(f"expected a [B, 3, H, W] or [3, H, W] tensor, got {tuple(images.shape)}")
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [uint8_to_tensor(to_uint8(image)) for image in images]
    if isinstance(images, (Image.Image, np.ndarray)):
        images = [images]
    return [img.float() if isinstance(img, torch.Tensor) else uint8_to_tensor(to_uint8(img)) for img in images]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of a BCHW tensor (no-op if already that size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """``[3, H, W]`` tensor in ``[-1, 1]`` -> PIL RGB image."""
    return Image.fromarray(to_uint8(x))


def convert_output(image: torch.Tensor, output_type: str) -> Image.Image | np.ndarray | torch.Tensor:
    """A ``[3, H, W]`` tensor in ``[-1, 1]`` as asked: ``"pil"``, ``"np"`` (uint8) or ``"pt"`` (on the CPU)."""
    if output_type == "pt":
        return image.cpu()
    return tensor_to_pil(image) if output_type == "pil" else to_uint8(image)


def to_working_resolution(images: ImageLike | Sequence[ImageLike], resolution: int,
                          device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The inputs as ``[3, H, W]`` tensors on ``device`` and as one ``[B, 3, r, r]`` batch at the working size."""
    originals = [t.to(device) for t in to_tensor_list(images)]
    x = torch.cat([resize(t[None], (resolution, resolution)) for t in originals]).clamp(-1, 1)
    return originals, x


def add_residual(originals: Sequence[torch.Tensor], x: torch.Tensor, restored: torch.Tensor) -> list[torch.Tensor]:
    """Each input plus its restoration residual ``restored - x``, resized to the input's own size."""
    return [(original + resize((restored[i] - x[i])[None], original.shape[-2:])[0]).clamp(-1, 1)
            for i, original in enumerate(originals)]
