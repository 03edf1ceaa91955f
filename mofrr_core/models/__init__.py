"""The networks of MoFRR (diffusers ``ModelMixin, ConfigMixin``; safetensors weights)."""

from .baseline import UNetBaseline
from .combine import CombineModule
from .degree import DegreeEstimator
from .hfcam import HFCAM
from .idem import IDEM, MCA
from .outputs import ExpertOutput
from .router import GateHead, Router
from .shared_expert import SharedExpert
from .wavefrr import WaveFRR

MODEL_TYPES: dict[str, type] = {
    "Router": Router,
    "DegreeEstimator": DegreeEstimator,
    "GateHead": GateHead,
    "WaveFRR": WaveFRR,
    "SharedExpert": SharedExpert,
    "CombineModule": CombineModule,
    "UNetBaseline": UNetBaseline,
}

__all__ = [
    "MODEL_TYPES",
    "HFCAM",
    "IDEM",
    "MCA",
    "CombineModule",
    "DegreeEstimator",
    "ExpertOutput",
    "GateHead",
    "Router",
    "SharedExpert",
    "UNetBaseline",
    "WaveFRR",
]
