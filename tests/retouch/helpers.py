"""Helpers shared by the retouching tests."""

from __future__ import annotations

import numpy as np

BUILTIN_APIS = [("white", "curve"), ("white", "lab"), ("smooth", "bilateral"), ("smooth", "guided"),
                ("face", "liquify"), ("face", "rbf"), ("eye", "bulge")]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when identical)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
