"""``degree``: the DegreeEstimator of one specialised expert (5-class CE) on single-op images of its type."""

from __future__ import annotations

from diffusers import ModelMixin
from torch.utils.data import Dataset

from mofrr_core.plugins import resolve_model_type
from mofrr_core.train.stages.base import Stage, component_kwargs, f1_scores


class DegreeStage(Stage):
    """The DegreeEstimator of one specialised expert (5-class CE) on single-op images of its type."""

    name = "degree"
    best_metric = "f1"
    export_folder = "degree"
    expert_kind = "specialised"

    @property
    def types(self) -> list[str]:
        return [self.spec.retouch_type]

    def build_model(self) -> ModelMixin:
        wavefrr = component_kwargs("wavefrr", self.model_preset, **self.spec.config)
        kwargs = {**(wavefrr.get("degree_config") or {}), **self.config.model_overrides}
        return resolve_model_type("DegreeEstimator")(**kwargs)

    def train_dataset(self) -> Dataset:
        return self.dataset("train", types=self.types, ops=self.types, num_ops=(1, 1))

    def val_dataset(self) -> Dataset:
        return self._val(types=self.types, ops=self.types, num_ops=(1, 1))

    def loss(self, net, batch, generator):
        degree = batch["degrees"][:, 0].clamp(min=1)  # single-op data: always applied (1..5)
        return net.compute_loss(batch["retouched"], degree)

    def evaluate(self, net, batch, generator):
        return {"pred": net(batch["retouched"]).argmax(-1) + 1, "label": batch["degrees"][:, 0].clamp(min=1)}

    def summarize(self, values):
        pred, label = values["pred"].long(), values["label"].long()
        return {"accuracy": float((pred == label).float().mean()), "f1": f1_scores(pred - 1, label - 1, 5),
                "mae": float((pred - label).abs().float().mean())}
