import os
import subprocess
import sys

from mofrr_core.data.splits import SPLITS, filter_split, split_counts, split_of


def test_split_is_about_8_1_1_over_many_keys():
    keys = [f"fairface_{i}" for i in range(20000)]
    counts = split_counts(keys)
    assert sum(counts.values()) == 20000
    assert abs(counts["train"] / 20000 - 0.8) < 0.015
    assert abs(counts["val"] / 20000 - 0.1) < 0.01
    assert abs(counts["test"] / 20000 - 0.1) < 0.01


def test_split_is_deterministic_across_processes():
    keys = [f"face_{i}" for i in range(40)]
    here = [split_of(k) for k in keys]
    assert set(here) <= set(SPLITS)
    code = "from mofrr_core.data.splits import split_of; print(','.join(split_of(f'face_{i}') for i in range(40)))"
    for hash_seed in ("7",):  # in-process the hash seed is random
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": hash_seed}, cwd=os.getcwd())
        assert out.stdout.strip().split(",") == here


def test_filter_split_partitions_the_keys():
    keys = [f"k{i}" for i in range(300)]
    parts = {s: filter_split(keys, s) for s in SPLITS}
    assert sorted(sum(parts.values(), [])) == sorted(keys)
    assert all(split_of(k) == s for s, ks in parts.items() for k in ks)
    assert filter_split([{"key": "k1"}], split_of("k1")) == [{"key": "k1"}]
