"""Helpers shared by the retouching tests."""

from __future__ import annotations

import numpy as np

from mofrr_core.plugins import get_retouch_ops

LEGACY_APIS = [("white", "curve"), ("white", "lab"), ("smooth", "bilateral"), ("smooth", "guided"),
               ("face", "liquify"), ("face", "rbf"), ("eye", "bulge")]
"""The seven apis of engine versions <= 4 (kept with the same names and outputs)."""


def builtin_apis(op: str | None = None) -> list[tuple[str, str]]:
    """Every registered built-in ``(op, api)`` (a new api is tested without touching the tests)."""
    return sorted((name, api) for name, apis in get_retouch_ops().items() for api, spec in apis.items()
                  if spec.distribution == "mofrr" and (op is None or name == op))


BUILTIN_APIS = builtin_apis()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when identical)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
