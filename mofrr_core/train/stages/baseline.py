"""``baseline``: the plain-UNet regression baseline of the evaluation (not part of the pipeline)."""

from __future__ import annotations

from diffusers import ModelMixin
from torch.utils.data import Dataset

from mofrr_core.train.config import TrainConfig
from mofrr_core.train.stages.base import RestorationStage, build_network, builtin_types


class BaselineStage(RestorationStage):
    """The plain-UNet regression baseline (``UNetBaseline``, L1 + SSIM) on 0-4-op images of every type.

    The evaluation's "same data, same CPU budget as one expert" comparison: train it with the expert's
    preset, batch and steps, then ``mofrr eval --baseline <its weights folder>``.
    """

    name = "baseline"
    export_folder = "baseline"

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.types = builtin_types(self.model_preset)

    def build_model(self) -> ModelMixin:
        return build_network("UNetBaseline", self.model_preset, **self.config.model_overrides)

    def train_dataset(self) -> Dataset:
        return self.dataset("train", types=self.types, ops=None, num_ops=(0, len(self.types)),
                            p_clean=self.config.p_clean)

    def val_dataset(self) -> Dataset:  # retouched images only (an untouched image's PSNR is unbounded)
        return self._val(types=self.types, ops=None, num_ops=(1, len(self.types)))

    def loss(self, net, batch, generator):
        return net.compute_loss(batch["retouched"], batch["original"], psnr_weight=self.config.psnr_loss)
