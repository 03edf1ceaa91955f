"""MoFRR plugin: lip plumping (a retouching type the core does not know) and its WaveFRR expert."""

from mofrr_core import ExpertSpec, RetouchOpSpec, hookimpl
from mofrr_expert_lips.op import plump_lips

__version__ = "0.1.0"


@hookimpl
def register_retouch_ops(register):
    register(RetouchOpSpec(name="lips", fn=plump_lips, description="lip plumping (local vertical magnification)"))


@hookimpl
def register_experts(register):
    register(ExpertSpec.from_package(__name__, name="lips", retouch_type="lips", version=__version__,
                                     description="removes lip plumping"))
