"""The retouching engine: landmark-driven whitening, smoothing, face lifting and eye enlarging."""

from mofrr_core.retouch.engine import TYPES, NoFaceError, random_ops, retouch, sample_strength
from mofrr_core.retouch.heldout import HeldOutLeak, heldout_apis, heldout_version, training_apis
from mofrr_core.retouch.landmarks import FaceLandmarks, load_landmarks
from mofrr_core.retouch.postprocess import POSTPROCESS_PRESETS, postprocess, resolve_postprocess

__all__ = ["POSTPROCESS_PRESETS", "TYPES", "FaceLandmarks", "HeldOutLeak", "NoFaceError", "heldout_apis",
           "heldout_version", "load_landmarks", "postprocess", "random_ops", "resolve_postprocess", "retouch",
           "sample_strength", "training_apis"]
