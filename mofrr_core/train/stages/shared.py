"""``shared``: the shared expert on multi-operation images (2-4 ops)."""

from __future__ import annotations

from diffusers import ModelMixin
from torch.utils.data import Dataset

from mofrr_core.train.config import TrainConfig
from mofrr_core.train.stages.base import RestorationStage, build_network, builtin_types, registry_steps


class SharedStage(RestorationStage):
    """The shared expert on multi-operation images (2-4 ops over the built-in types; ``num_ops`` overrides)."""

    name = "shared"
    expert_kind = "shared"

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.types = builtin_types(self.model_preset)

    def build_model(self) -> ModelMixin:
        return build_network(self.spec.model_type, self.model_preset, num_inference_steps=registry_steps(self.config),
                             **{**self.spec.config, **self.config.model_overrides})

    @property
    def num_ops(self) -> tuple[int, int]:
        lo, hi = self.config.num_ops or (2, 4)
        return lo, min(hi, len(self.types))

    def train_dataset(self) -> Dataset:
        p_clean = self.config.p_clean if self.num_ops[0] == 0 else 0.0
        return self.dataset("train", types=self.types, ops=None, num_ops=self.num_ops, p_clean=p_clean)

    def val_dataset(self) -> Dataset:  # retouched images only (an untouched image's PSNR is unbounded)
        return self._val(types=self.types, ops=None, num_ops=(max(1, self.num_ops[0]), self.num_ops[1]))

    def loss(self, net, batch, generator):
        return net.compute_loss(batch["retouched"], batch["original"], generator=generator)
