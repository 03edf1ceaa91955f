"""Image-fidelity and identity metrics, as the paper reports them.

The one PSNR of the project: :func:`psnr` on uint8 RGB arrays (data range 255, what ``mofrr eval``
reports) and :func:`psnr_per_image` on ``[B, C, H, W]`` tensors in ``[-1, 1]`` (data range 2, what
training validation reports); both cap at :data:`MAX_PSNR` (identical images).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

MAX_PSNR = 100.0  # reported for identical images instead of infinity
MIN_MSE = 1e-10  # below this the PSNR is MAX_PSNR anyway (for data ranges up to 255)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (data range 255), at most :data:`MAX_PSNR`."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return min(MAX_PSNR, 10 * np.log10(255.0**2 / max(mse, MIN_MSE)))


def psnr_per_image(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """PSNR in dB of each image of ``[B, ...]`` tensors (default data range 2: ``[-1, 1]``) -> ``[B]``,
    at most :data:`MAX_PSNR`."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(data_range**2 / mse.clamp(min=MIN_MSE))).clamp(max=MAX_PSNR)


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


IDENTITY_MODEL = "dlib 128-D face-recognition ResNet (dlib_face_recognition_resnet_model_v1, face-recognition-models)"


def identity_unavailable_reason() -> str | None:
    """``None`` when the identity model loads, else the reason (what to install)."""
    try:
        _dlib_models()
    except IdentityUnavailable as error:
        return str(error)
    return None


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embedding vectors."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _safe_ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def per_type_thresholds(threshold: float | Sequence[float] | np.ndarray, types: Sequence[str]) -> np.ndarray:
    """``[N]``: one threshold for every type, from one number or one per type (``Pipeline.gate_thresholds``);
    or ``[M, N]`` as given, one row per face (faces judged with their own thresholds, ``Pipeline.thresholds_for``
    of each face's router view). Index a type's column as ``t[..., i]``."""
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim == 2 and t.shape[1] == len(types):
        return t
    if t.ndim > 1 or (t.ndim == 1 and len(t) != len(types)):
        raise ValueError(f"expected one threshold, {len(types)} (one per type) or one row of {len(types)} per "
                         f"face, got shape {t.shape}")
    return np.broadcast_to(t, (len(types),))


def classification_report(probabilities: np.ndarray, labels: np.ndarray, types: list[str],
                          threshold: float | Sequence[float] = 0.5) -> dict[str, dict[str, float]]:
    """Per-type precision / recall / F1 / accuracy of multi-label predictions ``p > threshold`` (one
    threshold, or one per type).

    ``probabilities`` and ``labels`` are ``[M, N]`` (labels multi-hot). Undefined ratios (no
    predicted or no actual positive) are ``nan``. The ``"all"`` entry is micro-averaged over types
    and adds ``exact``: the fraction of images whose whole label set is predicted right.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels) > 0.5
    if probabilities.shape != labels.shape or probabilities.ndim != 2 or probabilities.shape[1] != len(types):
        raise ValueError(f"expected [M, {len(types)}] probabilities and labels, got {probabilities.shape} and "
                         f"{labels.shape}")
    predicted = probabilities > per_type_thresholds(threshold, types)

    def scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
        tp, fp, fn = float((pred & true).sum()), float((pred & ~true).sum()), float((~pred & true).sum())
        precision, recall = _safe_ratio(tp, tp + fp), _safe_ratio(tp, tp + fn)
        f1 = _safe_ratio(2 * tp, 2 * tp + fp + fn)
        accuracy = float((pred == true).mean()) if pred.size else float("nan")
        return {"precision": precision, "recall": recall, "f1": f1, "accuracy": accuracy,
                "support": float(true.sum()), "n": float(true.size)}

    report = {t: scores(predicted[:, i], labels[:, i]) for i, t in enumerate(types)}
    report["all"] = scores(predicted.ravel(), labels.ravel())
    report["all"]["exact"] = float((predicted == labels).all(axis=1).mean()) if len(labels) else float("nan")
    return report


def degree_report(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Degree-estimator accuracy: ``predicted`` expected degrees (float, 1..5) vs integer labels 1..5.

    Returns ``n``, ``accuracy`` (rounded prediction equals the label), ``within_one`` and ``mae``.
    """
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64).ravel()
    if predicted.shape != target.shape:
        raise ValueError(f"shape mismatch: {predicted.shape} vs {target.shape}")
    if predicted.size == 0:
        return {"n": 0.0, "accuracy": float("nan"), "within_one": float("nan"), "mae": float("nan")}
    rounded = np.clip(np.rint(predicted), 1, None)
    return {"n": float(predicted.size), "accuracy": float((rounded == target).mean()),
            "within_one": float((np.abs(rounded - target) <= 1).mean()),
            "mae": float(np.abs(predicted - target).mean())}
