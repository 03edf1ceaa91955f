"""``gate``: a new plugin expert's GateHead on the frozen router backbone."""

from __future__ import annotations

import warnings

import torch
from diffusers import ModelMixin
from torch import nn
from torch.utils.data import Dataset

from mofrr_core.train.stages.base import Stage, binary_f1, build_network, has_weights, load_network


class GateStage(Stage):
    """A new expert's router GateHead on the frozen router backbone (no other weight changes)."""

    name = "gate"
    best_metric = "f1"
    export_folder = "gate"
    expert_kind = "specialised"
    router: nn.Module | None = None  # the frozen router whose backbone the gate reads (built with the gate)

    def _load_router(self) -> nn.Module:
        path = self.config.router_weights
        if path is None:
            from mofrr_core.registry import load_registry

            path = load_registry(self.config.registry, experts=[]).router.weights
        if has_weights(path):
            return load_network(path, "Router")
        warnings.warn("gate: no trained router (--router-weights or registry.yaml router.weights); training the "
                      "gate on an untrained router backbone", stacklevel=2)
        preset = self.config.model_preset or "cpu"
        return build_network("Router", preset)

    def build_model(self) -> ModelMixin:
        self.router = self._load_router().eval().requires_grad_(False)
        self.gate_type = self.spec.retouch_type
        self.types = list(self.router.types)
        if self.gate_type not in self.types:
            self.types.append(self.gate_type)
        return self.router.new_gate()

    def setup(self, accelerator, output_dir):
        self.router.to(accelerator.device)

    def train_dataset(self) -> Dataset:
        return self.dataset("train", types=self.types, ops=None,
                            num_ops=(0, min(4, len(self.types))), p_clean=self.config.p_clean)

    def val_dataset(self) -> Dataset:
        return self._val(types=self.types, ops=None, num_ops=(0, min(4, len(self.types))),
                         p_clean=self.config.p_clean)

    def _labels(self, batch: dict) -> torch.Tensor:
        return batch["labels"][:, self.types.index(self.gate_type)]

    def loss(self, net, batch, generator):
        with torch.no_grad():
            features = self.router.features(batch["retouched"])
        return net.compute_loss(features, self._labels(batch))

    def evaluate(self, net, batch, generator):
        return {"pred": (net(self.router.features(batch["retouched"])) > 0).float(),
                "label": (self._labels(batch) > 0.5).float()}

    def summarize(self, values):
        pred, label = values["pred"].bool(), values["label"].bool()
        return {"accuracy": float((pred == label).float().mean()), "f1": binary_f1(pred, label),
                "positives": float(label.float().mean())}
