"""MoFRR shared expert (SharedExpert): removes traces common to all retouching types."""

from mofrr_core import ExpertSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_experts(register):
    register(ExpertSpec.from_package(
        __name__, name="shared", retouch_type=None, kind="shared", model_type="SharedExpert", version=__version__,
        description="removes traces common to all retouching types (multi-operation images)",
    ))
