"""``SyntheticPairs``: an in-memory stand-in for ``RetouchPairs`` (tests, benchmarks, smoke runs).

It yields the same sample dict as the real data engine but builds the pairs with cheap tensor
"retouchings" (brighten, blur, squeeze, local magnify, colour shift for any other type) on
smooth random images or on the ``images`` you give it. It needs no face data and no landmarks;
it is *not* a substitute for real training data (``data: {type: RetouchPairs}``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

DEFAULT_TYPES = ("white", "smooth", "face", "eye")


def _identity_grid(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([xs, ys], dim=-1)


def _warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(image[None], grid[None], mode="bilinear", padding_mode="border", align_corners=True)[0]


def synthetic_retouch(image: torch.Tensor, op: str, strength: float) -> torch.Tensor:
    """Apply a cheap stand-in of retouching ``op`` with ``strength`` in ``(0, 1]`` to ``[3, H, W]``."""
    _, h, w = image.shape
    if op == "white":
        return image + strength * 0.35 * (1 - image)
    if op == "smooth":
        k = 5
        blurred = F.avg_pool2d(F.pad(image[None], (k // 2,) * 4, mode="replicate"), k, stride=1)[0]
        return torch.lerp(image, blurred, strength)
    grid = _identity_grid(h, w)
    if op == "face":  # squeeze the lower half towards the vertical axis
        lower = ((grid[..., 1] + 1) / 2).clamp(0, 1) ** 2
        grid[..., 0] = grid[..., 0] * (1 + 0.15 * strength * lower)
        return _warp(image, grid)
    if op == "eye":  # magnify two discs in the upper half
        out = grid.clone()
        for cx in (-0.35, 0.35):
            d = torch.sqrt((grid[..., 0] - cx) ** 2 + (grid[..., 1] + 0.3) ** 2)
            weight = (1 - d / 0.3).clamp(min=0) ** 2 * 0.3 * strength
            out[..., 0] -= (grid[..., 0] - cx) * weight
            out[..., 1] -= (grid[..., 1] + 0.3) * weight
        return _warp(image, out)
    channel = zlib.crc32(op.encode()) % 3  # any other (plugin) type: a colour shift of one channel
    shifted = image.clone()
    shifted[channel] = shifted[channel] + 0.3 * strength
    return shifted


class SyntheticPairs(Dataset):
    """Deterministic synthetic retouched/original pairs with the ``RetouchPairs`` sample contract.

    Args:
        types: retouching types of the ``labels``/``degrees`` vectors.
        ops: fixed ops applied to every sample (as ``RetouchPairs``), or ``None`` to draw them from ``types``.
        num_ops: ``(min, max)`` number of ops per sample when ``ops`` is ``None``.
        resolution: square image size.
        length: number of samples.
        seed: sample ``i`` is a pure function of ``(seed, i)``.
        p_clean: probability of an untouched pair.
        images: optional base images (uint8 HxWx3 arrays), cycled; else smooth random images.
    """

    def __init__(self, types: Sequence[str] = DEFAULT_TYPES, ops: Sequence[str] | None = None,
                 num_ops: tuple[int, int] = (1, 1), resolution: int = 64, length: int = 64, seed: int = 0,
                 p_clean: float = 0.0, images: Sequence[np.ndarray] | None = None, split: str = "train",
                 **_: object) -> None:
        self.types = list(types) + [op for op in (ops or ()) if op not in types]
        self.ops = list(ops) if ops is not None else None
        self.num_ops = (int(num_ops[0]), int(num_ops[1]))
        self.resolution = resolution
        self.length = int(length)
        self.seed = seed + (0 if split == "train" else 7919 * (1 + zlib.crc32(split.encode()) % 97))
        self.p_clean = p_clean
        self.images = None
        if images is not None:
            self.images = [self._prepare(image) for image in images]
        self.num_faces = len(self.images) if self.images is not None else self.length

    def _prepare(self, image: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1
        return F.interpolate(tensor[None], size=(self.resolution,) * 2, mode="bilinear", antialias=True,
                             align_corners=False)[0]

    def __len__(self) -> int:
        return self.length

    def _base(self, index: int, generator: torch.Generator) -> torch.Tensor:
        if self.images is not None:
            return self.images[index % len(self.images)].clone()
        coarse = torch.rand(3, 6, 6, generator=generator) * 1.6 - 0.8
        base = F.interpolate(coarse[None], size=(self.resolution,) * 2, mode="bicubic", align_corners=False)[0]
        return base + 0.05 * torch.randn(base.shape, generator=generator)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        rng = np.random.default_rng([self.seed, index])
        original = self._base(index, generator).clamp(-1, 1)
        labels = torch.zeros(len(self.types))
        degrees = torch.zeros(len(self.types), dtype=torch.long)
        retouched = original
        low, high = self.num_ops
        if self.p_clean > 0 and rng.random() < self.p_clean:
            chosen: list[str] = []
        elif self.ops is not None:
            chosen = list(self.ops)
        else:
            count = min(int(rng.integers(low, high + 1)), len(self.types))
            chosen = [self.types[int(i)] for i in sorted(rng.choice(len(self.types), size=count, replace=False))]
        for op in chosen:
            strength = float(rng.uniform(0.2, 1.0))
            retouched = synthetic_retouch(retouched, op, strength)
            column = self.types.index(op)
            labels[column] = 1.0
            degrees[column] = max(1, min(5, math.ceil(strength * 5)))
        return {"retouched": retouched.clamp(-1, 1).contiguous(), "original": original.contiguous(),
                "labels": labels, "degrees": degrees, "key": f"synthetic-{self.seed}-{index:06d}"}
