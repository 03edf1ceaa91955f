"""Datasets: face shards, on-the-fly retouched pairs, paired folders, splits, degree labels, ``mofrr synth``.

Every dataset yields the sample dict of ``docs/architecture.md``::

    {"retouched": Tensor[3, H, W] in [-1, 1], "original": Tensor[3, H, W] in [-1, 1],
     "labels": Tensor[N] float (multi-hot over types), "degrees": Tensor[N] long (0 = not applied, 1..5),
     "key": str}
"""

from mofrr_core.data.degrees import (
    DEGREE_SHARES,
    DegreeThresholds,
    degree_from_psnr,
    degree_from_strength,
    fit_degree_thresholds,
)
from mofrr_core.data.folders import LayoutError, PairedFolder, detect_layout, open_dataset, parse_type_folder
from mofrr_core.data.pairs import DEFAULT_TYPES, PairSample, RetouchPairs, resize_uint8
from mofrr_core.data.shards import (
    DataRootError,
    FaceRecord,
    default_data_root,
    iter_shard,
    list_shards,
    read_shards,
    resolve_data_root,
    write_shard,
)
from mofrr_core.data.splits import SPLITS, filter_split, split_counts, split_of

__all__ = [
    "DEFAULT_TYPES",
    "DEGREE_SHARES",
    "SPLITS",
    "DataRootError",
    "DegreeThresholds",
    "FaceRecord",
    "LayoutError",
    "PairSample",
    "PairedFolder",
    "RetouchPairs",
    "default_data_root",
    "degree_from_psnr",
    "degree_from_strength",
    "detect_layout",
    "filter_split",
    "fit_degree_thresholds",
    "iter_shard",
    "list_shards",
    "open_dataset",
    "parse_type_folder",
    "read_shards",
    "resize_uint8",
    "resolve_data_root",
    "split_counts",
    "split_of",
    "write_shard",
]
