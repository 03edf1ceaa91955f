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

from mofrr_core.train.config import TrainConfig
from mofrr_core.train.datasets import build_dataset
from mofrr_core.train.stages.base import (
    RestorationStage,
    Stage,
    build_network,
    builtin_types,
    component_kwargs,
    has_weights,
    load_network,
    nan_guard,
    public_config,
    restoration_metrics,
)
from mofrr_core.train.stages.baseline import BaselineStage
from mofrr_core.train.stages.combine import CachedCombinePairs, CombineStage
from mofrr_core.train.stages.degree import DegreeStage
from mofrr_core.train.stages.expert import ExpertStage
from mofrr_core.train.stages.gate import GateStage
from mofrr_core.train.stages.router import RouterStage
from mofrr_core.train.stages.shared import SharedStage

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


__all__ = ["STAGE_CLASSES", "BaselineStage", "CachedCombinePairs", "CombineStage", "DegreeStage", "ExpertStage",
           "GateStage", "RestorationStage", "RouterStage", "SharedStage", "Stage", "build_dataset", "build_network",
           "builtin_types", "component_kwargs", "has_weights", "load_network", "make_stage", "nan_guard",
           "public_config", "restoration_metrics"]
