"""Helpers of ``mofrr eval``: methods (baselines, ablations), tables and figures."""

from .methods import (
    ABLATIONS,
    AblatedPipeline,
    Method,
    SingleModelPipeline,
    ablation,
    load_baseline,
    wavefrr_ablation,
    without_refinement,
)

__all__ = ["ABLATIONS", "AblatedPipeline", "Method", "SingleModelPipeline", "ablation", "load_baseline",
           "wavefrr_ablation", "without_refinement"]
