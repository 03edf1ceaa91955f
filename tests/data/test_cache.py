"""CachedPairs: generated once, served as uint8-exact samples plus their mirrors."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from mofrr_core.data.cache import CachedPairs


class CountingPairs(Dataset):
    """Random pairs on the uint8 grid that count how often they are generated."""

    def __init__(self, n: int = 5, size: int = 8) -> None:
        self.n, self.size, self.calls = n, size, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        self.calls += 1
        g = torch.Generator().manual_seed(i)
        image = lambda: torch.randint(0, 256, (3, self.size, self.size), generator=g).float() / 127.5 - 1  # noqa: E731
        return {"retouched": image(), "original": image(), "labels": torch.tensor([1.0, 0.0]),
                "degrees": torch.tensor([i % 5 + 1, 0]), "key": f"k{i}"}


def test_cache_serves_exact_samples_and_mirrors_without_regenerating():
    source = CountingPairs()
    cached = CachedPairs(source, size=4)
    assert len(cached) == 8 and source.calls == 4
    for i in range(4):
        want = source[i]
        got, mirror = cached[i], cached[i + 4]
        assert torch.allclose(got["retouched"], want["retouched"], atol=1e-6)
        assert torch.allclose(mirror["original"], want["original"].flip(-1), atol=1e-6)
        assert torch.equal(got["degrees"], want["degrees"]) and mirror["key"] == want["key"]
    calls = source.calls
    _ = [cached[i] for i in range(len(cached))]
    assert source.calls == calls


def test_cache_size_is_capped_and_mirror_optional():
    cached = CachedPairs(CountingPairs(n=3), size=10, mirror=False)
    assert len(cached) == 3 and cached.shape == (3, 3, 8, 8)
