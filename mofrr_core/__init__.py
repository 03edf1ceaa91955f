"""MoFRR: restore the original face from a retouched photo."""

from mofrr_core.hookspecs import hookimpl
from mofrr_core.spec import ExpertSpec, LandmarkProviderSpec, RetouchOpSpec, RetouchResult

__version__ = "0.1.0"

__all__ = [
    "ExpertSpec",
    "LandmarkProviderSpec",
    "Pipeline",
    "RetouchOpSpec",
    "RetouchResult",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str):
    if name == "Pipeline":  # lazy: importing torch/diffusers only when needed
        from mofrr_core.pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
