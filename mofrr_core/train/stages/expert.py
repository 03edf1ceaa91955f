"""``expert``: one WaveFRR on single-op images of its type (optionally with foreign and routed images)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from diffusers import ModelMixin
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from mofrr_core.train.config import TrainConfig
from mofrr_core.train.stages.base import (
    RestorationStage,
    build_network,
    builtin_types,
    has_weights,
    load_network,
    public_config,
    registry_steps,
    summarize_restoration,
)

# --routed validation: foreign images drawn per one wanted; the router sends an expert ~5-15 % of them, so
# fewer than wanted may be kept (the face gate: 24 of 36 in the ninth session)
ROUTED_VAL_POOL = 8


class NotOfType(Dataset):
    """Samples of other types, with a leading all-zero ``labels``/``degrees`` column for the expert's own type."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        for key in ("labels", "degrees"):
            item[key] = torch.cat([item[key].new_zeros(1), item[key]])
        return item


class ExpertStage(RestorationStage):
    """One WaveFRR expert on single-op images of its retouching type.

    With ``foreign > 0`` that share of the training (and validation) images carries one operation of
    another type, or none, and its target is the input itself: the expert learns to leave alone what
    is not its job, so a router false positive costs little. The paper trains on own-type images only.
    """

    name = "expert"
    expert_kind = "specialised"

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        own = self.spec.retouch_type
        self.others = [t for t in builtin_types(self.model_preset) if t != own] if config.foreign > 0 else []
        self.types = [own, *self.others]  # own type first: labels[:, 0] / degrees[:, 0] are its own
        self._routers: dict[str, nn.Module] = {}
        fine_tune = config.init_weights is not None
        self.train_degree = (config.train_degree if config.train_degree is not None
                             else not (has_weights(config.degree_weights) or fine_tune))
        if self.others and self.train_degree:
            raise ValueError(f"--foreign {config.foreign}: foreign images have no degree label of type {own!r}; "
                             "give a trained degree estimator (--degree-weights or --init-weights)")

    def build_model(self) -> ModelMixin:
        overrides = {"num_inference_steps": registry_steps(self.config), **self.spec.config,
                     **self.config.model_overrides, "train_degree": self.train_degree}
        net = build_network(self.spec.model_type, self.model_preset, **overrides)
        if self.config.init_weights is not None:
            pass  # the estimator comes with --init-weights, or --degree-weights replaces it after (after_init)
        elif has_weights(self.config.degree_weights):
            self._load_degree(net)
        elif not self.train_degree:
            raise ValueError(f"expert {self.spec.name!r}: no trained degree estimator (--degree-weights) and "
                             "--no-train-degree; run mofrr-train --stage degree first")
        else:
            warnings.warn(f"expert {self.spec.name!r}: no --degree-weights, its degree estimator trains jointly "
                          "(L_class); the paper trains it first: mofrr-train --stage degree", stacklevel=2)
        return net

    def _load_degree(self, net: ModelMixin) -> None:
        degree = load_network(self.config.degree_weights, "DegreeEstimator")
        theirs, ours = public_config(degree), public_config(net.degree_estimator)
        if theirs != ours:
            raise ValueError(f"--degree-weights {self.config.degree_weights}: its config {theirs} does not "
                             f"match the expert's degree_config {ours} (train it with the same --model-preset)")
        net.degree_estimator.load_state_dict(degree.state_dict())

    def after_init(self, net: ModelMixin) -> None:
        """``--degree-weights`` wins over the degree estimator that came with ``--init-weights``."""
        if has_weights(self.config.degree_weights):
            self._load_degree(net)

    def _mixture(self, own: Dataset, split: str, **kwargs: Any) -> Dataset:
        """``own`` plus a ``foreign`` share of images of the other types (or untouched), if configured."""
        if not self.others:
            return own
        ratio = self.config.foreign / (1 - self.config.foreign)  # foreign samples per own-type sample
        cache = self.config.data.get("cache") if split == "train" else None
        wanted = max(1, round(len(own) * ratio))
        if cache:  # cached pairs are mirrored: size the cache, not the length
            kwargs["cache"] = max(1, round(int(cache) * ratio))
        else:  # routed validation draws a pool: the router sends the expert only a few foreign images
            kwargs["length"] = wanted * (ROUTED_VAL_POOL if self.config.routed and split != "train" else 1)
        foreign = self.dataset(split, types=self.others, ops=None, num_ops=self.config.num_ops or (1, 1),
                               p_clean=self.config.p_clean if split == "train" else 0.0, **kwargs)
        if self.config.routed:
            foreign = self._router_positives(foreign, self.config.routed, cycle=split == "train", flag="--routed")
            if split != "train":
                foreign = torch.utils.data.Subset(foreign, range(min(wanted, len(foreign))))
        elif split == "train" and self.config.hard_negatives:
            foreign = self._router_positives(foreign, self.config.hard_negatives)
        return torch.utils.data.ConcatDataset([own, NotOfType(foreign)])

    def _router(self, path: str) -> nn.Module:
        """The router at ``path``, loaded once per stage (``--routed`` asks for it four times)."""
        if path not in self._routers:
            self._routers[path] = load_network(path, "Router").eval()
        return self._routers[path]

    @torch.no_grad()
    def _router_positives(self, data: Dataset, router_path: str, threshold: float = 0.5, cycle: bool = True,
                          flag: str = "--hard-negatives", which: str = "foreign") -> Dataset:
        """The images of ``data`` on which the router at ``router_path`` runs this expert.

        ``cycle`` repeats them to ``len(data)`` (so a mixture keeps its shares); otherwise each is kept once.
        """
        router = self._router(router_path)
        own = self.spec.retouch_type
        if own not in router.types:
            raise ValueError(f"{flag} {router_path}: the router has no gate for {own!r} "
                             f"(its types: {', '.join(router.types)})")
        column = router.types.index(own)
        keep: list[int] = []
        for start in tqdm(range(0, len(data), 64), desc=f"router positives among {which} images ({own})",
                          leave=False):
            rows = range(start, min(len(data), start + 64))
            x = torch.stack([data[i]["retouched"] for i in rows])
            hits = torch.sigmoid(router(x))[:, column] > threshold
            keep += [i for i, hit in zip(rows, hits.tolist()) if hit]
        if not keep:
            raise ValueError(f"{flag} {router_path}: the router sends none of the {len(data)} {which} "
                             f"images to the {own!r} expert; drop the flag or use more images (--cache)")
        tqdm.write(f"{flag}: the router sends {len(keep)} of {len(data)} {which} images to the {own!r} expert"
                   + ("; they are repeated to keep the mixture's shares" if cycle else ""))
        return torch.utils.data.Subset(data, [keep[i % len(keep)] for i in range(len(data))] if cycle else keep)

    def _routed_own(self, own: Dataset, split: str) -> Dataset:
        """With ``--routed``: the own-type images the router finds (its true positives), as the pipeline sends."""
        if not self.config.routed:
            return own
        return self._router_positives(own, self.config.routed, cycle=split == "train", flag="--routed",
                                      which="own-type")

    def train_dataset(self) -> Dataset:
        own = self.dataset("train", types=self.types, ops=self.types[:1], num_ops=(1, 1))
        return self._mixture(self._routed_own(own, "train"), "train", seed=self.config.seed + 1)

    def val_dataset(self) -> Dataset:
        own = self._val(types=self.types, ops=self.types[:1], num_ops=(1, 1))
        return self._mixture(self._routed_own(own, "val"), "val", seed=self.config.val_seed + 1)

    def loss(self, net, batch, generator):
        x, y = batch["retouched"], batch["original"]
        own = batch["labels"][:, 0] > 0.5
        if self.others:  # foreign retouching is not this expert's job: its target is the input
            y = torch.where(own[:, None, None, None], y, x)
        degree = batch["degrees"][:, 0].clamp(min=1) if self.train_degree else None
        # the harm hinge on its own type's images (a foreign image's target is already its input); asked for only
        # when set, so a plug-in expert's network without it trains as before
        harm = {"harm_weight": self.config.harm_loss, "harm_only": own} if self.config.harm_loss else {}
        return net.compute_loss(x, y, generator=generator, degree=degree, **harm)

    def evaluate(self, net, batch, generator):
        values = super().evaluate(net, batch, generator)
        values["own"] = (batch["labels"][:, 0] > 0.5).float()
        return values

    def summarize(self, values):
        values = dict(values)
        own = values.pop("own").bool()
        out = summarize_restoration(values)
        if self.others and (~own).any():  # the two halves: own-type gain, and harm on foreign images
            for tag, rows in (("own", own), ("foreign", ~own)):
                part = summarize_restoration({k: v[rows] for k, v in values.items()})
                out[f"psnr_gain_{tag}"] = part["psnr_gain"]
        return out
