"""MoFRR specialised expert 'smooth' (WaveFRR): removes skin smoothing."""

from mofrr_core import ExpertSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_experts(register):
    register(ExpertSpec.from_package(
        __name__, name="smooth", retouch_type="smooth", kind="specialised", model_type="WaveFRR", version=__version__,
        description="removes skin smoothing",
    ))
