"""The held-out protocol: held-out apis never reach training data; the eval modes give what they say."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from mofrr_core.data import RetouchPairs
from mofrr_core.plugins import get_retouch_ops
from mofrr_core.retouch import HeldOutLeak, heldout_apis, heldout_version, training_apis
from mofrr_core.retouch.engine import TYPES
from mofrr_core.retouch.heldout import HELDOUT_FILE, apis_in_set, check_heldout

# (ops, num_ops, p_clean) of every RetouchPairs the training stages build (mofrr_core/train/stages.py):
# router/baseline/gate/combine mixes, shared 2-4 op images, degree/expert single-op images, expert foreign.
STAGE_CALLS = [(None, (0, 4), 0.1), (None, (2, 4), 0.0), *[([t], (1, 1), 0.0) for t in TYPES],
               (None, (1, 1), 0.1)]


def test_heldout_file_fixes_two_apis_per_type_from_unused_families():
    data = yaml.safe_load(HELDOUT_FILE.read_text())
    assert data["version"] == heldout_version() >= 1
    held, train = heldout_apis(), training_apis()
    ops = get_retouch_ops()
    for op in TYPES:
        assert len(held[op]) >= 2 and len(train[op]) >= 6, (op, held[op], train[op])
        assert set(held[op]) <= set(ops[op]) and not set(held[op]) & set(train[op])
        train_families = {ops[op][api].family for api in train[op]}
        for api in held[op]:
            assert ops[op][api].family not in train_families, f"{op}/{api}: family also used in training"
    check_heldout()  # the same rule, as the library states it


def test_check_heldout_fails_when_a_family_is_shared(monkeypatch):
    import dataclasses

    from mofrr_core import plugins
    from mofrr_core.retouch import heldout

    ops = get_retouch_ops()
    monkeypatch.setattr(heldout, "_load", lambda: (1, {"face": ("mls", "nope")}))
    with pytest.raises(ValueError, match=r"face: held-out api\(s\) \['nope'\] not registered"):
        check_heldout()
    monkeypatch.setattr(heldout, "_load", lambda: (1, {"eye": ("idw",)}))
    check_heldout()
    # a training api of the same family (an IDW variant with other parameters) breaks the protocol
    twin = dataclasses.replace(ops["eye"]["idw"], api="idw2")
    monkeypatch.setattr(plugins, "get_retouch_ops", lambda: {**ops, "eye": {**ops["eye"], "idw2": twin}})
    with pytest.raises(ValueError, match="eye/idw: family 'idw' is also used by a training api"):
        check_heldout()


def _drawn(dataset, n: int) -> set[tuple[str, str]]:
    return {(entry["op"], entry["api"]) for i in range(n) for entry in dataset.generate(i).ops}


def test_training_datasets_never_contain_heldout_apis(shard_root):
    """Every dataset the training stages build (train and val splits), many samples: no held-out api."""
    held = {(op, api) for op, apis in heldout_apis().items() for api in apis}
    seen: set[tuple[str, str]] = set()
    for split in ("train", "val"):
        for seed, (ops, num_ops, p_clean) in enumerate(STAGE_CALLS):
            dataset = RetouchPairs(shard_root, split=split, resolution=32, ops=ops, num_ops=num_ops, types=TYPES,
                                   seed=seed, length=40 if ops else 24, p_clean=p_clean)
            drawn = _drawn(dataset, len(dataset))
            assert not drawn & held, f"{split} {ops} {num_ops}: held-out apis {sorted(drawn & held)}"
            seen |= drawn
    train = {(op, api) for op, apis in training_apis().items() if op in TYPES for api in apis}
    assert seen == train  # ... while every training api is used


def test_build_dataset_of_the_trainer_excludes_heldout_apis(shard_root):
    """Through the trainer's own ``build_dataset`` (a config may not switch the guard off)."""
    from mofrr_core.train.config import TrainConfig
    from mofrr_core.train.stages import build_dataset

    held = {(op, api) for op, apis in heldout_apis().items() for api in apis}
    config = TrainConfig(data={"type": "RetouchPairs"}, data_root=str(shard_root), resolution=32)
    for ops, num_ops, p_clean in STAGE_CALLS[:3]:
        dataset = build_dataset(config, "train", types=list(TYPES), ops=ops, num_ops=num_ops, p_clean=p_clean,
                                length=16)
        assert not _drawn(dataset, 16) & held
    leaky = TrainConfig(data={"type": "RetouchPairs", "apis_set": "heldout"}, data_root=str(shard_root))
    with pytest.raises(HeldOutLeak, match="split 'train'"):
        build_dataset(leaky, "train", types=list(TYPES), ops=None, num_ops=(0, 4))


def test_train_split_refuses_heldout_apis(shard_root):
    for apis_set in ("heldout", "all"):
        with pytest.raises(HeldOutLeak, match=f"apis_set='{apis_set}'"):
            RetouchPairs(shard_root, split="train", apis_set=apis_set)
    with pytest.raises(HeldOutLeak, match="smooth/domain is held out"):
        RetouchPairs(shard_root, split="val", ops=["smooth"], apis={"smooth": "domain"})
    with pytest.raises(ValueError, match="apis_set must be one of"):
        RetouchPairs(shard_root, split="test", apis_set="everything")


def test_runtime_guard_catches_a_heldout_draw(shard_root, monkeypatch):
    """If the api choice ever returned a held-out api (a bug, a plugin), generation raises instead of training."""
    from mofrr_core.retouch import engine

    dataset = RetouchPairs(shard_root, split="train", resolution=32, ops=["eye"], length=2)
    monkeypatch.setattr(engine, "choose_api", lambda op, specs, rng, wanted=None, excluded=(): specs["idw"])
    with pytest.raises(HeldOutLeak, match="eye/idw is held out"):
        dataset.generate(0)


def test_heldout_and_train_sets_for_evaluation(shard_root):
    for op in TYPES:
        held = RetouchPairs(shard_root, split="test", resolution=32, ops=[op], length=12, apis_set="heldout")
        assert {api for _, api in _drawn(held, 12)} == set(heldout_apis()[op])
        assert apis_in_set(op, "all") == sorted(get_retouch_ops()[op])
    in_domain = RetouchPairs(shard_root, split="test", resolution=32, num_ops=(1, 4), length=12, apis_set="train")
    assert not {api for op, api in _drawn(in_domain, 12) if api in heldout_apis()[op]}
    with pytest.raises(ValueError, match="op 'nose' has no 'heldout' apis"):
        RetouchPairs(shard_root, split="test", ops=["nose"], apis_set="heldout")


def test_degree_thresholds_are_fitted_on_training_apis_only(shard_root, tmp_path, monkeypatch):
    from mofrr_core.data import fit_degree_thresholds

    drawn = []
    original = RetouchPairs._choose_api

    def spy(self, op, specs, rng, engine):
        spec = original(self, op, specs, rng, engine)
        drawn.append((op, spec.api, self.apis_set))
        return spec

    monkeypatch.setattr(RetouchPairs, "_choose_api", spy)
    thresholds = fit_degree_thresholds(shard_root, n=12, resolution=32, cache_dir=tmp_path, progress=False)
    assert thresholds.meta["apis_set"] == "train" and len(drawn) == 12 * len(TYPES)
    assert all(set_ == "train" and api not in heldout_apis()[op] for op, api, set_ in drawn)
    assert np.all(np.diff([thresholds.cuts[op] for op in TYPES], axis=1) >= 0)


def test_trainer_validates_on_heldout_apis(shard_root):
    """Best-step selection reads the val split: by default it is made of held-out implementations only."""
    from mofrr_core.train.config import TrainConfig
    from mofrr_core.train.datasets import build_dataset

    held = {(op, api) for op, apis in heldout_apis().items() for api in apis}
    config = TrainConfig(data={"type": "RetouchPairs"}, data_root=str(shard_root), resolution=32)
    val = build_dataset(config, "val", types=list(TYPES), ops=None, num_ops=(1, 2), length=12)
    assert _drawn(val, 12) <= held and _drawn(val, 12)
    in_domain = TrainConfig(data={"type": "RetouchPairs"}, data_root=str(shard_root), resolution=32, val_apis="train")
    in_domain_val = build_dataset(in_domain, "val", types=list(TYPES), ops=None, num_ops=(1, 2), length=12)
    assert not _drawn(in_domain_val, 12) & held
    with pytest.warns(UserWarning, match="op\\(s\\) lips have no held-out api"):
        assert build_dataset(config, "val", types=["lips"], ops=["lips"], num_ops=(1, 1), length=2).apis_set == "train"
