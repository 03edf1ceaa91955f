"""The training data of a stage: ``config.data`` (``type:`` resolved through the plugins' ``register_datasets``).

A builder gets the run's :class:`~mofrr_core.train.config.TrainConfig`, the split and what the stage asks for
(``types``, ``ops``, ``num_ops``, ``p_clean``, ``length``, ``seed``, ``cache``) and returns a map-style dataset
yielding the sample dict of docs/architecture.md. The built-in ones: ``RetouchPairs`` (faces retouched by the
data engine) and ``SyntheticPairs`` (tests and smoke runs, no data needed).
"""

from __future__ import annotations

import warnings
from typing import Any

from torch.utils.data import Dataset

from mofrr_core.plugins import resolve_dataset_type
from mofrr_core.train.config import TrainConfig


def build_dataset(config: TrainConfig, split: str, *, types: list[str], ops: list[str] | None,
                  num_ops: tuple[int, int], p_clean: float = 0.0, length: int | None = None,
                  seed: int | None = None, cache: int | None = None) -> Dataset:
    """The dataset of ``config.data`` for one stage and split (``seed`` default: ``config.seed``).

    ``cache`` overrides ``data.cache`` (the number of training pairs retouched once).
    """
    build = resolve_dataset_type(config.data.get("type", "RetouchPairs"))
    return build(config, split, types=types, ops=ops, num_ops=num_ops, p_clean=p_clean, length=length,
                 seed=config.seed if seed is None else seed, cache=cache)


def data_options(config: TrainConfig) -> dict[str, Any]:
    """``config.data`` without its ``type``: the builder's own options."""
    options = dict(config.data)
    options.pop("type", None)
    return options


def build_synthetic_pairs(config: TrainConfig, split: str, *, types: list[str], ops: list[str] | None,
                          num_ops: tuple[int, int], p_clean: float, length: int | None, seed: int,
                          cache: int | None = None) -> Dataset:
    """``type: SyntheticPairs``: ``length`` (else ``data.length``, default 64) deterministic pairs; never cached."""
    from mofrr_core.train.synthetic import SyntheticPairs

    options = data_options(config)
    length = length or int(options.pop("length", 64))
    options.pop("length", None)
    return SyntheticPairs(types=types, ops=ops, num_ops=num_ops, resolution=config.resolution, length=length,
                          seed=seed, p_clean=p_clean, split=split, **options)


def validation_apis(wanted: str, ops: list[str]) -> str:
    """``wanted`` (``heldout``/``train``/``all``), or ``train`` with a warning when an op has no held-out api
    (a plugin's op that heldout.yaml does not list): validation then measures in-domain for that run."""
    from mofrr_core.retouch.heldout import apis_in_set

    if wanted == "heldout":
        missing = [op for op in ops if not apis_in_set(op, "heldout")]
        if missing:
            warnings.warn(f"val_apis: heldout, but op(s) {', '.join(missing)} have no held-out api "
                          "(mofrr_core/retouch/heldout.yaml): validating on training apis", stacklevel=2)
            return "train"
    return wanted


def build_retouch_pairs(config: TrainConfig, split: str, *, types: list[str], ops: list[str] | None,
                        num_ops: tuple[int, int], p_clean: float, length: int | None, seed: int,
                        cache: int | None = None) -> Dataset:
    """``type: RetouchPairs``: face shards retouched by the data engine on the fly.

    ``data.degree_thresholds: auto`` fits the paper's PSNR degree labels once on the train split (cached);
    with a cache (``cache`` or ``data.cache``) the training split is ``cache`` pairs retouched once (+ mirrors).
    """
    from mofrr_core.data import RetouchPairs  # the data engine (landmark-driven retouching ops)

    options = data_options(config)
    if length is None:
        length = options.pop("length", None)
    options.pop("length", None)
    thresholds = options.pop("degree_thresholds", None)
    fit_n = int(options.pop("degree_fit_n", 300))
    if thresholds == "auto":  # the paper's PSNR-based degree labels, fitted once on train (cached)
        from mofrr_core.data import fit_degree_thresholds

        thresholds = fit_degree_thresholds(config.data_root, n=fit_n, resolution=config.resolution,
                                           ops=list(ops or types), exclude_apis=options.get("exclude_apis"))
    options["degree_thresholds"] = thresholds
    # train on N pairs retouched once (+ mirrors) instead of a new pair per sample
    configured = options.pop("cache", None)
    cache = configured if cache is None else cache
    if cache and split == "train" and length is None:  # more pairs than faces: each face retouched again
        length = int(cache)
    if split != "train":
        options.setdefault("apis_set", validation_apis(config.val_apis, list(ops or types)))
    pairs = RetouchPairs(root=config.data_root, split=split, resolution=config.resolution, ops=ops,
                         num_ops=num_ops, types=types, seed=seed, length=length, p_clean=p_clean,
                         p_single=config.p_single, **options)
    if cache and split == "train":
        from mofrr_core.data.cache import CachedPairs

        return CachedPairs(pairs, int(cache), num_workers=config.num_workers, desc=f"retouching {split} pairs")
    return pairs
