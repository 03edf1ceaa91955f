"""Training configuration: YAML presets (``configs/train/*.yaml``) + CLI overrides.

A training preset is BasicSR-style: every place where a component is chosen has a ``type:``
(``optimizer: {type: Adam, lr: 1e-4}``, ``data: {type: RetouchPairs}``). The network sizes come
from a *model* preset (``mofrr_core/configs/<name>.yaml``): the one the expert's spec names,
unless ``model_preset`` is set (``--model-preset``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TRAIN_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "train"
TRAIN_PRESETS = tuple(sorted(path.stem for path in TRAIN_CONFIG_DIR.glob("*.yaml")))  # the folder is the list
STAGES = ("router", "degree", "expert", "shared", "combine", "gate", "baseline", "all")


@dataclass
class TrainConfig:
    """Everything one training run needs (one stage, optionally one expert).

    ``optimizer`` / ``data`` / ``ema`` are BasicSR-style mappings with a ``type:`` key; the other
    fields are plain values. ``model_preset=None`` means: the preset the expert spec names (``cpu``
    for the router and combine module).
    """

    stage: str = "expert"
    expert: str | None = None
    preset: str = "cpu"
    model_preset: str | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)
    resolution: int = 256
    batch_size: int = 4
    max_steps: int = 1000
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"
    grad_clip: float = 1.0
    optimizer: dict[str, Any] = field(default_factory=lambda: {"type": "Adam", "lr": 1e-4})
    ema: dict[str, Any] = field(default_factory=lambda: {"decay": 0.999, "warmup": True})
    data: dict[str, Any] = field(default_factory=lambda: {"type": "RetouchPairs"})
    data_root: str | None = None
    num_workers: int = 2
    seed: int = 0
    log_every: int = 10
    val_every: int = 200
    val_samples: int = 32
    val_seed: int = 1234
    val_inference_steps: int | None = None
    val_apis: str = "heldout"  # validation (and so best-step selection) on held-out retouching implementations
    checkpoint_every: int = 500
    checkpoints_keep: int = 3
    combine_cache_samples: int = 256
    combine_cache_from: str | None = None
    p_clean: float = 0.1
    p_single: float | None = None
    foreign: float = 0.0
    hard_negatives: str | None = None
    routed: str | None = None
    psnr_loss: float = 0.0
    harm_loss: float = 0.0
    num_ops: tuple[int, int] | None = None
    init_weights: str | None = None
    gates_only: bool = False
    train_degree: bool | None = None
    output_dir: str = "runs/mofrr"
    resume: str | None = None
    overwrite: bool = False
    threads: int | None = None
    channels_last: bool = False
    router_weights: str | None = None
    degree_weights: str | None = None
    shared_weights: str | None = None
    expert_weights: dict[str, str] = field(default_factory=dict)
    registry: str | None = None

    @property
    def lr(self) -> float:
        return float(self.optimizer.get("lr", 1e-4))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def load_train_preset(name: str | Path = "cpu") -> dict[str, Any]:
    """The training preset ``name`` (one of :data:`TRAIN_PRESETS`) or a YAML path, as a flat mapping.

    A preset with ``base: OTHER`` starts from preset ``OTHER``; its own keys replace the base's, and
    mapping values (``model_overrides``, ``optimizer``, ``data``...) are merged key by key.
    """
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = TRAIN_CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown training preset {str(name)!r} (known: {', '.join(TRAIN_PRESETS)}, "
                         "or a path to a .yaml file)")
    with path.open() as handle:
        raw = yaml.safe_load(handle) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if Path(str(base)).stem == path.stem:
        raise ValueError(f"{path}: a preset cannot be its own base")
    parent = load_train_preset(base)
    return {**parent, **{key: {**parent[key], **value} if isinstance(value, dict) and isinstance(parent.get(key), dict)
                         else value for key, value in raw.items()}}


def make_config(preset: str | Path = "cpu", **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a preset, then ``overrides`` (``None`` values are ignored).

    ``lr`` is accepted as a shortcut for ``optimizer.lr``.
    """
    raw = dict(load_train_preset(preset))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"training preset {str(preset)!r}: unknown key(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {**raw, "preset": str(preset)}
    lr = overrides.pop("lr", None)
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"unknown training option {key!r}")
        if value is not None:
            values[key] = value
    config = TrainConfig(**values)
    if lr is not None:
        config.optimizer = {**config.optimizer, "lr": float(lr)}
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Raise ``ValueError`` naming the offending option."""
    if config.stage not in STAGES:
        raise ValueError(f"--stage: unknown stage {config.stage!r} (known: {', '.join(STAGES)})")
    if config.resolution <= 0 or config.resolution % 8:
        raise ValueError(f"--resolution must be a positive multiple of 8, got {config.resolution}")
    for name in ("batch_size", "max_steps", "gradient_accumulation_steps", "val_samples"):
        if getattr(config, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(config, name)}")
    if config.mixed_precision not in ("no", "fp16", "bf16"):
        raise ValueError(f"--mixed-precision must be no, fp16 or bf16, got {config.mixed_precision!r}")
    for name in ("psnr_loss", "harm_loss"):
        if getattr(config, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(config, name)}")
    if config.hard_negatives and not config.foreign:
        raise ValueError("--hard-negatives picks among the foreign images: give --foreign too")
    if config.routed and config.hard_negatives:
        raise ValueError("--routed already keeps only the foreign images the router sends: drop --hard-negatives")
    if config.routed and config.stage != "expert":
        raise ValueError(f"--routed is an option of the expert stage, not of --stage {config.stage}")
    if config.harm_loss and config.stage not in ("combine", "expert"):
        raise ValueError(f"--harm-loss is an option of the combine and expert stages, not of --stage {config.stage}")
    if config.gates_only and config.stage != "router":
        raise ValueError(f"--gates-only is an option of the router stage, not of --stage {config.stage}")
    if not 0.0 <= config.foreign < 1.0:
        raise ValueError(f"--foreign must be in [0, 1), got {config.foreign}")
    if config.p_single is not None and not 0.0 <= config.p_single <= 1.0:
        raise ValueError(f"--p-single must be in [0, 1], got {config.p_single}")
    if config.num_ops is not None:
        lo, hi = config.num_ops
        if not 0 <= lo <= hi:
            raise ValueError(f"--num-ops must be LO-HI with 0 <= LO <= HI, got {lo}-{hi}")
    if "type" not in config.optimizer:
        raise ValueError("optimizer: needs a 'type:' (e.g. Adam)")
