"""``mofrr eval``: methods (baselines, ablations), test samples, the evaluation run, tables, figures and report."""

from .methods import (
    ABLATIONS,
    AblatedPipeline,
    Method,
    SingleModelPipeline,
    ablation,
    load_baseline,
    switched_off,
)

__all__ = ["ABLATIONS", "AblatedPipeline", "Method", "SingleModelPipeline", "ablation", "load_baseline",
           "switched_off"]
