"""The retouching engine: landmark-driven whitening, smoothing, face lifting and eye enlarging."""

from mofrr_core.retouch.engine import TYPES, NoFaceError, random_ops, retouch, sample_strength
from mofrr_core.retouch.landmarks import FaceLandmarks, load_landmarks

__all__ = ["TYPES", "FaceLandmarks", "NoFaceError", "load_landmarks", "random_ops", "retouch", "sample_strength"]
