"""Fixtures of the data tests: a temporary shard of real faces (4 train, 2 val, 2 test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mofrr_core.data.shards import iter_shard, write_shard
from mofrr_core.data.splits import split_of

WANTED = {"train": 4, "val": 2, "test": 2}


def shared_data() -> Path:
    root = Path(os.environ.get("MOFRR_DATA", ""))
    if not root.is_dir() or not any(root.glob("faces-*.tar")):
        pytest.skip(f"shared face data not found at MOFRR_DATA={root!s} (needs faces-*.tar shards)")
    return root


@pytest.fixture(scope="session")
def face_records():
    """8 real records from the first shared shard: 4 train, 2 val, 2 test."""
    shard = sorted(shared_data().glob("faces-*.tar"))[0]
    picked, counts = [], dict.fromkeys(WANTED, 0)
    for record in iter_shard(shard):
        split = split_of(record.key)
        if counts[split] < WANTED[split]:
            picked.append(record)
            counts[split] += 1
        if counts == WANTED:
            break
    assert counts == WANTED, counts
    return picked


@pytest.fixture(scope="session")
def shard_root(face_records, tmp_path_factory) -> Path:
    """A folder holding one temporary shard ``faces-00000.tar`` of the 8 records."""
    root = tmp_path_factory.mktemp("shards")
    write_shard(root / "faces-00000.tar", face_records)
    return root
