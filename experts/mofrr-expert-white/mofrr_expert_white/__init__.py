"""MoFRR specialised expert 'white' (WaveFRR): removes whitening."""

from mofrr_core import ExpertSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_experts(register):
    register(ExpertSpec.from_package(
        __name__, name="white", retouch_type="white", kind="specialised", model_type="WaveFRR", version=__version__,
        description="removes whitening",
    ))
