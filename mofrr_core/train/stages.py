"""The training stages of MoFRR (paper, "Training schedule"), one class each.

``router``  : Router backbone + every gate, multi-label BCE on 0-4-op images.
``degree``  : the DegreeEstimator of one specialised expert, CE on single-op images of its type.
``expert``  : one WaveFRR on single-op images of its type (L_freq + L_space, + L_class if its DE trains).
``shared``  : the shared expert on multi-op images (2-4 ops).
``combine`` : the Combine Module on 0-4-op images, router and experts frozen; their outputs are
              computed once for a fixed set of samples (a cache) and the module trains on it.
``gate``    : a new plugin expert's GateHead on the frozen router backbone.
``baseline``: the plain-UNet regression baseline of the evaluation (not part of the pipeline).

A stage builds the trainable network, the datasets and any frozen helper networks, and defines
``loss`` (training) and ``evaluate``/``summarize`` (validation metrics, gathered across processes).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import torch
from diffusers import ModelMixin
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from mofrr_core.metrics import psnr_per_image
from mofrr_core.models import losses
from mofrr_core.models.presets import COMPONENTS, load_preset
from mofrr_core.plugins import get_expert, get_experts, resolve_model_type
from mofrr_core.spec import ExpertSpec
from mofrr_core.train.config import TrainConfig
from mofrr_core.train.synthetic import DEFAULT_TYPES, SyntheticPairs

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


def has_weights(path: str | Path | None) -> bool:
    return path is not None and (Path(path) / "config.json").is_file()


def build_dataset(config: TrainConfig, split: str, *, types: list[str], ops: list[str] | None,
                  num_ops: tuple[int, int], p_clean: float = 0.0, length: int | None = None,
                  seed: int | None = None, cache: int | None = None) -> Dataset:
    """The dataset of ``config.data`` (``type: RetouchPairs`` or ``SyntheticPairs``) for one stage.

    ``cache`` overrides ``data.cache`` (the number of training pairs retouched once).
    """
    options = dict(config.data)
    type_name = options.pop("type", "RetouchPairs")
    seed = config.seed if seed is None else seed
    if type_name == "SyntheticPairs":
        length = length or int(options.pop("length", 64))
        options.pop("length", None)
        return SyntheticPairs(types=types, ops=ops, num_ops=num_ops, resolution=config.resolution, length=length,
                              seed=seed, p_clean=p_clean, split=split, **options)
    if type_name != "RetouchPairs":
        raise ValueError(f"data.type: unknown dataset type {type_name!r} (known: RetouchPairs, SyntheticPairs)")
    from mofrr_core.data import RetouchPairs  # the data engine (landmark-driven retouching ops)

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
    pairs = RetouchPairs(root=config.data_root, split=split, resolution=config.resolution, ops=ops,
                         num_ops=num_ops, types=types, seed=seed, length=length, p_clean=p_clean,
                         p_single=config.p_single, **options)
    if cache and split == "train":
        from mofrr_core.data.cache import CachedPairs

        return CachedPairs(pairs, int(cache), num_workers=config.num_workers, desc=f"retouching {split} pairs")
    return pairs


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

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.spec: ExpertSpec | None = None

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

    def _val(self, **kwargs: Any) -> Dataset:
        return build_dataset(self.config, "val", length=self.config.val_samples, seed=self.config.val_seed, **kwargs)


# --routed validation: foreign images drawn per one wanted; the router sends an expert ~5-15 % of them, so
# fewer than wanted may be kept (the face gate: 24 of 36 in the ninth session)
ROUTED_VAL_POOL = 8


class RestorationStage(Stage):
    """Shared validation of the diffusion experts: restore the val subset, PSNR/SSIM vs the input's."""

    def evaluate(self, net: nn.Module, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        x, y = batch["retouched"], batch["original"]
        out = net.restore(x, num_inference_steps=self.config.val_inference_steps, generator=generator).image
        return restoration_metrics(out, x, y)


# -- stages ------------------------------------------------------------------------------------------
class RouterStage(Stage):
    """Router backbone and all its gates (multi-label BCE) on 0-4-op images."""

    name = "router"
    best_metric = "f1"
    export_folder = "router"

    def build_model(self) -> ModelMixin:
        net = build_network("Router", self.model_preset, **self.config.model_overrides)
        self.types = list(net.types)
        return net

    def train_dataset(self) -> Dataset:
        return build_dataset(self.config, "train", types=self.types, ops=None, num_ops=(0, 4),
                             p_clean=self.config.p_clean)

    def val_dataset(self) -> Dataset:
        return self._val(types=self.types, ops=None, num_ops=(0, 4), p_clean=self.config.p_clean)

    def loss(self, net, batch, generator):
        return net.compute_loss(batch["retouched"], batch["labels"])

    def evaluate(self, net, batch, generator):
        return {"pred": (net(batch["retouched"]) > 0).float(), "label": (batch["labels"] > 0.5).float()}

    def summarize(self, values):
        pred, label = values["pred"].bool(), values["label"].bool()
        f1 = [binary_f1(pred[:, i], label[:, i]) for i in range(pred.shape[1])]
        out = {"accuracy": float((pred == label).float().mean()),
               "exact_match": float((pred == label).all(1).float().mean()), "f1": float(sum(f1) / len(f1))}
        out.update({f"f1_{t}": v for t, v in zip(self.types, f1)})
        return out


class DegreeStage(Stage):
    """The DegreeEstimator of one specialised expert (5-class CE) on single-op images of its type."""

    name = "degree"
    best_metric = "f1"
    export_folder = "degree"

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.spec = specialised_spec(config.expert)
        self.types = [self.spec.retouch_type]

    def build_model(self) -> ModelMixin:
        wavefrr = component_kwargs("wavefrr", self.model_preset, **self.spec.config)
        kwargs = {**(wavefrr.get("degree_config") or {}), **self.config.model_overrides}
        return resolve_model_type("DegreeEstimator")(**kwargs)

    def train_dataset(self) -> Dataset:
        return build_dataset(self.config, "train", types=self.types, ops=self.types, num_ops=(1, 1))

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

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.spec = specialised_spec(config.expert)
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
        overrides = {**self.spec.config, **self.config.model_overrides, "train_degree": self.train_degree}
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
        foreign = build_dataset(self.config, split, types=self.others, ops=None, num_ops=(1, 1),
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
        own = build_dataset(self.config, "train", types=self.types, ops=self.types[:1], num_ops=(1, 1))
        return self._mixture(self._routed_own(own, "train"), "train", seed=self.config.seed + 1)

    def val_dataset(self) -> Dataset:
        own = self._val(types=self.types, ops=self.types[:1], num_ops=(1, 1))
        return self._mixture(self._routed_own(own, "val"), "val", seed=self.config.val_seed + 1)

    def loss(self, net, batch, generator):
        x, y = batch["retouched"], batch["original"]
        if self.others:  # foreign retouching is not this expert's job: its target is the input
            y = torch.where(batch["labels"][:, :1, None, None] > 0.5, y, x)
        degree = batch["degrees"][:, 0].clamp(min=1) if self.train_degree else None
        return net.compute_loss(x, y, generator=generator, degree=degree)

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
        return build_dataset(self.config, "train", types=self.types, ops=None, num_ops=(0, len(self.types)),
                             p_clean=self.config.p_clean)

    def val_dataset(self) -> Dataset:  # retouched images only (an untouched image's PSNR is unbounded)
        return self._val(types=self.types, ops=None, num_ops=(1, len(self.types)))

    def loss(self, net, batch, generator):
        return net.compute_loss(batch["retouched"], batch["original"], psnr_weight=self.config.psnr_loss)


class SharedStage(RestorationStage):
    """The shared expert on multi-operation images (2-4 ops over the built-in types; ``num_ops`` overrides)."""

    name = "shared"

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.spec = shared_spec(config.expert)
        self.types = builtin_types(self.model_preset)

    def build_model(self) -> ModelMixin:
        return build_network(self.spec.model_type, self.model_preset,
                             **{**self.spec.config, **self.config.model_overrides})

    @property
    def num_ops(self) -> tuple[int, int]:
        lo, hi = self.config.num_ops or (2, 4)
        return lo, min(hi, len(self.types))

    def train_dataset(self) -> Dataset:
        p_clean = self.config.p_clean if self.num_ops[0] == 0 else 0.0
        return build_dataset(self.config, "train", types=self.types, ops=None, num_ops=self.num_ops, p_clean=p_clean)

    def val_dataset(self) -> Dataset:  # retouched images only (an untouched image's PSNR is unbounded)
        return self._val(types=self.types, ops=None, num_ops=(max(1, self.num_ops[0]), self.num_ops[1]))

    def loss(self, net, batch, generator):
        return net.compute_loss(batch["retouched"], batch["original"], generator=generator)


class GateStage(Stage):
    """A new expert's router GateHead on the frozen router backbone (no other weight changes)."""

    name = "gate"
    best_metric = "f1"
    export_folder = "gate"

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.spec = specialised_spec(config.expert)
        self.router: nn.Module | None = None

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
        return build_dataset(self.config, "train", types=self.types, ops=None,
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
              "val_samples", "val_seed", "val_inference_steps", "resolution", "p_clean", "p_single", "data",
              "data_root")


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
                        threshold=reg.threshold, num_inference_steps=self.config.val_inference_steps
                        or reg.num_inference_steps, seed=self.config.seed)

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
                source = build_dataset(self.config, split, types=self.types, ops=None,
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
                                confidence=batch.get("confidence"))

    def evaluate(self, net, batch, generator):
        x = batch["retouched"]
        out = net(x, batch["shared"], batch["experts"], batch["mask"], batch.get("confidence"))
        return restoration_metrics(out, x, batch["original"])


STAGE_CLASSES: dict[str, type[Stage]] = {
    "router": RouterStage,
    "degree": DegreeStage,
    "expert": ExpertStage,
    "shared": SharedStage,
    "combine": CombineStage,
    "gate": GateStage,
    "baseline": BaselineStage,
}


def make_stage(config: TrainConfig) -> Stage:
    """The :class:`Stage` of ``config.stage`` (``all`` is run by :func:`mofrr_core.train.cli` as a plan)."""
    if config.stage not in STAGE_CLASSES:
        raise ValueError(f"stage {config.stage!r} is not a single stage (known: {', '.join(STAGE_CLASSES)})")
    return STAGE_CLASSES[config.stage](config)


def nan_guard(loss: torch.Tensor, step: int) -> None:
    if not math.isfinite(float(loss)):
        raise FloatingPointError(f"loss is {float(loss)} at step {step}; lower --lr or check the data")
