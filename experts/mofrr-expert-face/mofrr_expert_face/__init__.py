"""MoFRR specialised expert 'face' (WaveFRR): removes face lifting."""

from mofrr_core import ExpertSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_experts(register):
    register(ExpertSpec.from_package(
        __name__, name="face", retouch_type="face", kind="specialised", model_type="WaveFRR", version=__version__,
        description="removes face lifting",
    ))
