"""MoFRR specialised expert 'eye' (WaveFRR): removes eye enlarging."""

from mofrr_core import ExpertSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_experts(register):
    register(ExpertSpec.from_package(
        __name__, name="eye", retouch_type="eye", kind="specialised", model_type="WaveFRR", version=__version__,
        description="removes eye enlarging",
    ))
