"""``combine``: the Combine Module on 0-4-op images; router and experts frozen, their outputs cached once."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from diffusers import ModelMixin
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from mofrr_core.train.config import TrainConfig
from mofrr_core.train.stages.base import (
    Stage,
    build_network,
    has_weights,
    load_network,
    restoration_metrics,
    validation_steps,
)


class CachedCombinePairs(Dataset):
    """Frozen router/expert outputs for a fixed set of samples (what the Combine Module trains on).

    With ``mirror`` index ``i >= n`` is sample ``i - n`` flipped left-right (every image of it alike).
    """

    def __init__(self, tensors: dict[str, torch.Tensor], mirror: bool = False) -> None:
        self.tensors = tensors
        self.size = int(tensors["retouched"].shape[0])
        self.mirror = mirror

    def __len__(self) -> int:
        return self.size * (2 if self.mirror else 1)

    def __getitem__(self, index: int) -> dict:
        flip = index >= self.size
        item = {key: value[index % self.size] for key, value in self.tensors.items()}
        item["experts"] = item["experts"].float()
        item["shared"] = item["shared"].float()
        if flip:
            item = {key: value if value.ndim < 3 else value.flip(-1) for key, value in item.items()}
        return item


# The combine's training pairs must not be the pairs the router and experts trained on (sample ``i``
# of a dataset is a function of its seed): on those the router is near-perfect (white precision 0.98
# against 0.76 on other pairs of the same faces), so the module would learn to trust every activated
# expert and amplify the router's test-time false positives.
COMBINE_SEED_OFFSET = 7919
# what decides the content of a combine cache: another run may lend its cache only if these match
CACHE_KEYS = ("registry", "router_weights", "expert_weights", "shared_weights", "combine_cache_samples", "seed",
              "val_samples", "val_seed", "val_apis", "val_inference_steps", "resolution", "p_clean", "p_single",
              "data", "data_root")


def combine_cache_files(run: Path) -> dict[str, Path]:
    """Where a combine run in folder ``run`` keeps its frozen-output cache, per split."""
    return {split: run / "cache" / f"combine-{split}.pt" for split in ("train", "val")}


def borrowed_cache(config: TrainConfig) -> dict[str, Path]:
    """The cache files of ``config.combine_cache_from``, after checking that run cached the same thing."""
    run = Path(config.combine_cache_from)
    files = combine_cache_files(run)
    missing = [str(f) for f in files.values() if not f.is_file()]
    run_file = run / "run.json"
    if missing or not run_file.is_file():
        raise FileNotFoundError(f"--combine-cache-from {run}: not a combine run with a cache "
                                f"(missing: {', '.join(missing) or run_file})")
    theirs = json.loads(run_file.read_text()).get("config", {})
    ours = config.to_dict()
    differ = [f"{key}: {theirs.get(key)!r} there, {ours.get(key)!r} here" for key in CACHE_KEYS
              if json.dumps(theirs.get(key), sort_keys=True) != json.dumps(ours.get(key), sort_keys=True)]
    if theirs.get("stage") != "combine" or differ:
        raise ValueError(f"--combine-cache-from {run}: its cache was made with other settings; "
                         + "; ".join(differ or [f"stage {theirs.get('stage')!r}"]))
    return files


class CombineStage(Stage):
    """Combine Module on 0-4-op images; router, specialised and shared experts frozen (outputs cached)."""

    name = "combine"
    export_folder = "combine"

    def build_model(self) -> ModelMixin:
        from mofrr_core.registry import load_registry

        self.registry = load_registry(self.config.registry)
        preset = self.config.model_preset or self.registry.combine.preset
        return build_network("CombineModule", preset, **{**self.registry.combine.config,
                                                         **self.config.model_overrides})

    def _frozen(self, key: str, type_name: str, weights: str | Path | None, preset: str,
                config: dict[str, Any]) -> nn.Module:
        if has_weights(weights):
            return load_network(weights, type_name)
        warnings.warn(f"combine: {key} has no trained weights, using an untrained (identity) {type_name}",
                      stacklevel=3)
        return build_network(type_name, self.config.model_preset or preset, **config)

    def _pipeline(self):
        from mofrr_core.pipeline import ExpertSlot, Pipeline

        reg = self.registry
        router_path = self.config.router_weights or reg.router.weights
        router = self._frozen("router", "Router", router_path, reg.router.preset, reg.router.config)
        slots = []
        for entry in reg.specialised:
            path = self.config.expert_weights.get(entry.name) or entry.component.weights
            net = self._frozen(f"experts.{entry.name}", entry.component.type, path, entry.component.preset,
                               entry.component.config)
            slots.append(ExpertSlot(entry.name, entry.spec.retouch_type, net))
            if has_weights(entry.spec.gate) and entry.spec.retouch_type not in router.types:
                router.add_gate(entry.spec.retouch_type, load_network(entry.spec.gate, "GateHead"))
        shared = None
        if reg.shared is not None:
            path = self.config.shared_weights or reg.shared.component.weights
            shared = self._frozen("shared", reg.shared.component.type, path, reg.shared.component.preset,
                                  reg.shared.component.config)
        self.types = list(router.types)
        self.expert_names = [s.name for s in slots]
        return Pipeline(router, slots, shared, self.model_stub, resolution=self.config.resolution,
                        threshold=reg.threshold, num_inference_steps=validation_steps(self.config),
                        seed=self.config.seed)

    def setup(self, accelerator, output_dir):
        self.model_stub = nn.Identity()
        files = borrowed_cache(self.config) if self.config.combine_cache_from else combine_cache_files(output_dir)
        if accelerator.is_main_process and not all(f.is_file() for f in files.values()):
            pipeline = self._pipeline().to(accelerator.device)
            files["train"].parent.mkdir(parents=True, exist_ok=True)
            sizes = {"train": self.config.combine_cache_samples, "val": self.config.val_samples}
            for split, file in files.items():
                seed = self.config.seed + COMBINE_SEED_OFFSET if split == "train" else self.config.val_seed
                # train on 0-4 ops; validate on retouched images only: an untouched image's PSNR is
                # unbounded (capped at 100 dB) and a few of them would dominate the mean
                train = split == "train"
                source = self.dataset(split, types=self.types, ops=None,
                                      num_ops=(0 if train else 1, min(4, len(self.types))),
                                      p_clean=self.config.p_clean if train else 0.0,
                                      length=sizes[split], seed=seed)
                tensors = self.compute_cache(pipeline, source, sizes[split], seed, accelerator.device)
                torch.save(tensors, file.with_suffix(".tmp"))
                file.with_suffix(".tmp").replace(file)
        accelerator.wait_for_everyone()
        self.cache = {split: torch.load(file, weights_only=True) for split, file in files.items()}

    @torch.no_grad()
    def compute_cache(self, pipeline: Any, source: Dataset, size: int, seed: int,
                      device: torch.device) -> dict[str, torch.Tensor]:
        """Run the frozen router, the activated experts and the shared expert once per sample."""
        size = min(size, len(source))
        generator = torch.Generator(device).manual_seed(seed)
        chunks: dict[str, list[torch.Tensor]] = {k: [] for k in ("retouched", "original", "shared", "experts",
                                                                  "mask", "confidence")}
        step = max(1, self.config.batch_size)
        for start in tqdm(range(0, size, step), desc=f"combine cache ({size} samples)", leave=False):
            items = [source[i] for i in range(start, min(size, start + step))]
            x = torch.stack([it["retouched"] for it in items]).to(device)
            y = torch.stack([it["original"] for it in items]).to(device)
            probabilities = pipeline.route(x)
            mask = pipeline.activation_mask(probabilities, "router")
            run = pipeline.run_experts(x, mask, pipeline.num_inference_steps, generator)
            for key, value in (("retouched", x), ("original", y), ("shared", run.shared.half()),
                               ("experts", run.images.half()), ("mask", mask),
                               ("confidence", pipeline.expert_confidence(probabilities))):
                chunks[key].append(value.cpu())
        return {key: torch.cat(value) for key, value in chunks.items()}

    def train_dataset(self) -> Dataset:
        return CachedCombinePairs(self.cache["train"], mirror=True)

    def val_dataset(self) -> Dataset:
        return CachedCombinePairs(self.cache["val"])

    def loss(self, net, batch, generator):
        return net.compute_loss(batch["retouched"], batch["shared"], batch["experts"], batch["mask"],
                                batch["original"], psnr_weight=self.config.psnr_loss,
                                confidence=batch.get("confidence"), harm_weight=self.config.harm_loss)

    def evaluate(self, net, batch, generator):
        x = batch["retouched"]
        out = net(x, batch["shared"], batch["experts"], batch["mask"], batch.get("confidence"))
        return restoration_metrics(out, x, batch["original"])
