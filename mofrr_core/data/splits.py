"""Deterministic 8:1:1 train/val/test splits by a stable hash of the sample key.

There is no identity label in the face data, so the key decides: ``sha256(key)`` read as an
integer, modulo 10: 0-7 train, 8 val, 9 test. The split of a key never depends on the other
keys, the Python version or ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Literal, TypeVar

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
SPLIT_RATIOS = (8, 1, 1)
_BUCKETS = sum(SPLIT_RATIOS)
T = TypeVar("T")


def key_bucket(key: str) -> int:
    """Stable bucket 0..9 of a key (sha256, not Python's salted ``hash()``)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def split_of(key: str) -> Split:
    """``"train"``, ``"val"`` or ``"test"`` for a key, 8:1:1."""
    bucket = key_bucket(key)
    edge = 0
    for name, share in zip(SPLITS, SPLIT_RATIOS):
        edge += share
        if bucket < edge:
            return name
    raise AssertionError("unreachable")


def check_split(split: str) -> Split:
    """Validate a split name; the error lists the valid ones."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split  # type: ignore[return-value]


def filter_split(items: Iterable[T], split: str, key: str = "key") -> list[T]:
    """The items (objects with a ``key`` attribute, dicts with a ``"key"``, or strings) of ``split``."""
    check_split(split)

    def key_of(item: T) -> str:
        if isinstance(item, str):
            return item
        if isinstance(item, dict):
            return item[key]
        return getattr(item, key)

    return [item for item in items if split_of(key_of(item)) == split]


def split_counts(keys: Sequence[str]) -> dict[str, int]:
    """How many keys fall in each split."""
    counts = dict.fromkeys(SPLITS, 0)
    for k in keys:
        counts[split_of(k)] += 1
    return counts
