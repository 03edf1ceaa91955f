"""Image-fidelity and identity metrics on uint8 RGB images (data range 255), as the paper reports."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MAX_PSNR = 100.0  # reported for identical images instead of infinity


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (data range 255)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return MAX_PSNR if mse == 0 else min(MAX_PSNR, 10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM over RGB (Gaussian window, sigma 1.5, as Wang et al.; data range 255)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


class IdentityUnavailable(RuntimeError):
    """The identity embedding model is not installed."""


@lru_cache(maxsize=1)
def _dlib_models():
    try:
        import dlib
        import face_recognition_models as frm
    except ImportError as error:
        raise IdentityUnavailable(
            f"identity similarity needs dlib and face-recognition-models (pip install 'mofrr[eval]'): {error}"
        ) from None
    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


def identity_embedding(image: np.ndarray) -> np.ndarray | None:
    """dlib's 128-D face embedding of the largest face (whole image if none is detected)."""
    detector, predictor, encoder = _dlib_models()
    import dlib

    faces = detector(image, 1)
    h, w = image.shape[:2]
    box = max(faces, key=lambda r: r.width() * r.height()) if faces else dlib.rectangle(0, 0, w - 1, h - 1)
    return np.asarray(encoder.compute_face_descriptor(image, predictor(image, box)), dtype=np.float64)


def identity_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity between the identity embeddings of two face images."""
    ea, eb = identity_embedding(a), identity_embedding(b)
    return float(ea @ eb / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-12))
