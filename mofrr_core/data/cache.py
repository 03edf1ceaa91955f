"""An in-memory cache of generated pairs: retouch N faces once, train on them for many epochs.

On 2 CPU cores the retouching engine costs about as much as a training step, so regenerating
every sample each step halves the training speed. ``CachedPairs`` generates ``size`` samples of
any paired dataset once (in DataLoader workers, with a progress bar), keeps them as uint8, and
serves them -- plus their horizontal mirrors, a free and label-preserving augmentation (every
built-in op is left/right symmetric) -- as a deterministic map-style dataset.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

IMAGE_KEYS = ("retouched", "original")


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1


class CachedPairs(Dataset):
    """The first ``size`` samples of ``dataset``, generated once; index ``i >= size`` is the mirror of ``i - size``.

    Args:
        dataset: a map-style dataset yielding the standard sample dict (see docs/architecture.md).
        size: how many samples to generate (capped at ``len(dataset)``).
        mirror: also serve the horizontally flipped pairs (doubles the length).
        num_workers: DataLoader workers for the one-off generation.
    """

    def __init__(self, dataset: Dataset, size: int, mirror: bool = True, num_workers: int = 0,
                 desc: str = "retouching pairs") -> None:
        size = min(int(size), len(dataset))
        loader = DataLoader(torch.utils.data.Subset(dataset, range(size)), batch_size=16, num_workers=num_workers)
        images: dict[str, list[torch.Tensor]] = {k: [] for k in IMAGE_KEYS}
        labels, degrees, keys = [], [], []
        with tqdm(total=size, desc=desc, unit="pair", leave=False) as bar:
            for batch in loader:
                for k in IMAGE_KEYS:
                    images[k].append(_to_uint8(batch[k]))
                labels.append(batch["labels"])
                degrees.append(batch["degrees"])
                keys += list(batch["key"])
                bar.update(len(batch["key"]))
        self.images = {k: torch.cat(v) for k, v in images.items()}
        self.labels, self.degrees, self.keys = torch.cat(labels), torch.cat(degrees), keys
        self.size, self.mirror = size, mirror

    def __len__(self) -> int:
        return self.size * (2 if self.mirror else 1)

    def __getitem__(self, index: int) -> dict:
        i, flip = index % self.size, index >= self.size
        sample = {k: _to_float(self.images[k][i]) for k in IMAGE_KEYS}
        if flip:
            sample = {k: v.flip(-1) for k, v in sample.items()}
        return {**sample, "labels": self.labels[i], "degrees": self.degrees[i], "key": self.keys[i]}

    @property
    def shape(self) -> tuple[int, ...]:
        """``[N, 3, H, W]`` of the cached images."""
        return tuple(self.images["original"].shape)


