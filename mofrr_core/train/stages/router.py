"""``router``: the Router backbone and all its gates (multi-label BCE) on 0-4-op images.

``--gates-only``: the backbone of ``--init-weights`` stays frozen and every gate head starts afresh (a new
label mix, e.g. ``data.p_type``, for the heads without touching the features they read).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import ModelMixin
from torch.utils.data import Dataset

from mofrr_core.eval.detection import detection_report
from mofrr_core.train.stages.base import Stage, binary_f1, build_network


class RouterStage(Stage):
    """Router backbone and all its gates (multi-label BCE) on 0-4-op images."""

    name = "router"
    best_metric = "auc"  # mean per-type ROC AUC: ranking, not one threshold, decides the exported step
    export_folder = "router"

    def build_model(self) -> ModelMixin:
        net = build_network("Router", self.model_preset, **self.config.model_overrides)
        self.types = list(net.types)
        if self.config.gates_only:
            if not (self.config.init_weights or self.config.resume):
                raise ValueError("--gates-only needs --init-weights: the trained router whose backbone the gates read")
            net.requires_grad_(False)  # a resumed run freezes the same parameters
            net.gates.requires_grad_(True)
        return net

    def after_init(self, net: ModelMixin) -> None:
        """``--gates-only``: fresh gate heads on the loaded backbone."""
        if self.config.gates_only:
            for name in self.types:
                net.gates[name] = net.new_gate()

    def train_dataset(self) -> Dataset:
        return self.dataset("train", types=self.types, ops=None, num_ops=(0, 4),
                            p_clean=self.config.p_clean)

    def val_dataset(self) -> Dataset:
        return self._val(types=self.types, ops=None, num_ops=(0, 4), p_clean=self.config.p_clean)

    def loss(self, net, batch, generator):
        return net.compute_loss(batch["retouched"], batch["labels"])

    def evaluate(self, net, batch, generator):
        return {"logits": net(batch["retouched"]).float(), "label": (batch["labels"] > 0.5).float()}

    def summarize(self, values):
        logits, label = values["logits"], values["label"].bool()
        pred = logits > 0
        f1 = [binary_f1(pred[:, i], label[:, i]) for i in range(pred.shape[1])]
        out = {"accuracy": float((pred == label).float().mean()),
               "exact_match": float((pred == label).all(1).float().mean()), "f1": float(sum(f1) / len(f1))}
        out.update({f"f1_{t}": v for t, v in zip(self.types, f1)})
        report = detection_report(torch.sigmoid(logits).numpy(), label.numpy(), self.types)
        aucs = [report[t]["auc"] for t in self.types]
        out["auc"] = float(np.nanmean(aucs)) if not np.isnan(aucs).all() else float("nan")
        out.update({f"auc_{t}": v for t, v in zip(self.types, aucs)})
        out["auc_any"] = report["any"]["auc"]
        out["false_calls_any"] = report["any"]["false_calls"]
        return out
