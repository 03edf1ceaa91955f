"""Helpers shared by the retouching tests."""

from __future__ import annotations

from mofrr_core.metrics import psnr

__all__ = ["BUILTIN_APIS", "psnr"]

BUILTIN_APIS = [("white", "curve"), ("white", "lab"), ("smooth", "bilateral"), ("smooth", "guided"),
                ("face", "liquify"), ("face", "rbf"), ("eye", "bulge")]

