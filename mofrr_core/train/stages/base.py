"""What every training stage shares: the :class:`Stage` interface, network builders and validation metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from diffusers import ModelMixin
from torch import nn
from torch.utils.data import Dataset

from mofrr_core.metrics import psnr_per_image
from mofrr_core.models import losses
from mofrr_core.models.presets import COMPONENTS, load_preset
from mofrr_core.plugins import get_expert, get_experts, resolve_model_type
from mofrr_core.spec import ExpertSpec
from mofrr_core.train.config import TrainConfig
from mofrr_core.train.datasets import build_dataset
from mofrr_core.train.synthetic import DEFAULT_TYPES

SECTION_OF_TYPE = {cls: section for section, cls in COMPONENTS.items()}


# -- helpers ----------------------------------------------------------------------------------------
def component_kwargs(section: str, preset: str, **overrides: Any) -> dict[str, Any]:
    """Constructor kwargs of ``section`` in model preset ``preset`` with ``overrides`` applied."""
    kwargs = dict(load_preset(preset).get(section) or {})
    kwargs.update(overrides)
    return kwargs


def build_network(type_name: str, preset: str, **overrides: Any) -> ModelMixin:
    """An untrained network of registered ``type_name`` from a model preset."""
    section = SECTION_OF_TYPE.get(type_name)
    if section is None:
        raise ValueError(f"no preset section for model type {type_name!r}")
    return resolve_model_type(type_name)(**component_kwargs(section, preset, **overrides))


def load_network(path: str | Path, expected: str | None = None) -> ModelMixin:
    """``from_pretrained`` of a ``save_pretrained`` folder, its class read from ``config.json``."""
    folder = Path(path)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder}: not a weights folder (no config.json); train it first with mofrr-train")
    type_name = json.loads(config_file.read_text()).get("_class_name", expected)
    if expected is not None and type_name != expected:
        raise ValueError(f"{folder}: holds a {type_name}, expected a {expected}")
    return resolve_model_type(type_name, where=str(config_file)).from_pretrained(folder)


def public_config(model: ModelMixin) -> dict[str, Any]:
    """A model's constructor config without diffusers' bookkeeping keys, lists for tuples."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(model.config).items() if not k.startswith("_")}


def builtin_types(model_preset: str) -> list[str]:
    """The router's label axis in ``model_preset`` (the built-in retouching types)."""
    return list(component_kwargs("router", model_preset).get("types") or DEFAULT_TYPES)


def registry_steps(config: TrainConfig) -> int:
    """The DDIM steps the pipeline runs: ``sampling.num_inference_steps`` of the run's registry, the one source
    of truth. A trained diffusion expert's ``num_inference_steps`` is set to it."""
    from mofrr_core.registry import load_registry

    return load_registry(config.registry, experts=[]).num_inference_steps


def validation_steps(config: TrainConfig) -> int:
    """The DDIM steps of validation: ``val_inference_steps`` if set, else the pipeline's (:func:`registry_steps`)."""
    return config.val_inference_steps or registry_steps(config)


def has_weights(path: str | Path | None) -> bool:
    return path is not None and (Path(path) / "config.json").is_file()


def restoration_metrics(output: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image PSNR/SSIM of the restored output and of the input, both against the original."""
    output = output.float().clamp(-1, 1)
    return {
        "psnr": psnr_per_image(output, y),
        "ssim": losses.ssim(output, y.float(), reduction="none"),
        "psnr_input": psnr_per_image(x, y),
        "ssim_input": losses.ssim(x.float(), y.float(), reduction="none"),
    }


def summarize_restoration(values: dict[str, torch.Tensor]) -> dict[str, float]:
    out = {key: float(value.float().mean()) for key, value in values.items()}
    out["psnr_gain"] = out["psnr"] - out["psnr_input"]
    return out


def f1_scores(pred: torch.Tensor, label: torch.Tensor, num_classes: int) -> float:
    """Macro F1 over ``num_classes`` classes present in ``label`` or ``pred``."""
    scores = []
    for c in range(num_classes):
        tp = ((pred == c) & (label == c)).sum().item()
        fp = ((pred == c) & (label != c)).sum().item()
        fn = ((pred != c) & (label == c)).sum().item()
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(sum(scores) / len(scores)) if scores else 0.0


def binary_f1(pred: torch.Tensor, label: torch.Tensor) -> float:
    """F1 of the positive class of boolean tensors (1.0 when there are no positives at all)."""
    tp = (pred & label).sum().item()
    fp = (pred & ~label).sum().item()
    fn = (~pred & label).sum().item()
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def specialised_spec(name: str | None) -> ExpertSpec:
    if not name:
        names = sorted(n for n, s in get_experts().items() if s.kind == "specialised")
        raise ValueError(f"this stage needs --expert NAME (specialised experts: {', '.join(names) or 'none'})")
    spec = get_expert(name)
    if spec.kind != "specialised":
        raise ValueError(f"expert {name!r} is the shared expert; use --stage shared (or just --expert {name})")
    return spec


def shared_spec(name: str | None) -> ExpertSpec:
    if name:
        spec = get_expert(name)
        if spec.kind != "shared":
            raise ValueError(f"expert {name!r} is a specialised expert, not a shared one")
        return spec
    shared = [s for s in get_experts().values() if s.kind == "shared"]
    if not shared:
        raise ValueError("no shared expert is installed (pip install mofrr-expert-shared)")
    return shared[0]


# -- base class -------------------------------------------------------------------------------------
class Stage:
    """One training stage: trainable network, datasets, frozen helpers, loss and validation metrics."""

    name = "stage"
    best_metric = "psnr"  # validation key deciding ``best/`` (higher is better)
    export_folder = "weights"  # where ``--export package`` puts the weights inside an expert package

    expert_kind: str | None = None  # "specialised" / "shared": the stage trains (a part of) the --expert it names

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.spec: ExpertSpec | None = None
        if self.expert_kind is not None:
            self.spec = (specialised_spec if self.expert_kind == "specialised" else shared_spec)(config.expert)

    # construction
    def build_model(self) -> ModelMixin:
        raise NotImplementedError

    def setup(self, accelerator: Any, output_dir: Path) -> None:
        """Build frozen helpers (moved to ``accelerator.device``); called before the datasets."""

    def after_init(self, net: ModelMixin) -> None:
        """Called after ``--init-weights`` was loaded into ``net``: re-apply the parts other options name."""

    def train_dataset(self) -> Dataset:
        raise NotImplementedError

    def val_dataset(self) -> Dataset:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name if self.spec is None else f"{self.name} ({self.spec.name})"

    @property
    def model_preset(self) -> str:
        return self.config.model_preset or (self.spec.preset if self.spec is not None else "cpu")

    # training / validation
    def loss(self, net: nn.Module, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def evaluate(self, net: nn.Module, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def summarize(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        return summarize_restoration(values)

    def dataset(self, split: str, **kwargs: Any) -> Dataset:
        """The run's data (``config.data``) for ``split``, as :func:`~mofrr_core.train.datasets.build_dataset`."""
        return build_dataset(self.config, split, **kwargs)

    def _val(self, **kwargs: Any) -> Dataset:
        return self.dataset("val", length=self.config.val_samples, seed=self.config.val_seed, **kwargs)


class RestorationStage(Stage):
    """Shared validation of the diffusion experts: restore the val subset, PSNR/SSIM vs the input's."""

    val_steps: int | None = None  # DDIM steps of validation (:func:`validation_steps`, looked up once)

    def evaluate(self, net: nn.Module, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        x, y = batch["retouched"], batch["original"]
        if self.val_steps is None:
            self.val_steps = validation_steps(self.config)
        out = net.restore(x, num_inference_steps=self.val_steps, generator=generator).image
        return restoration_metrics(out, x, y)


def nan_guard(loss: torch.Tensor, step: int) -> None:
    if not math.isfinite(float(loss)):
        raise FloatingPointError(f"loss is {float(loss)} at step {step}; lower --lr or check the data")
