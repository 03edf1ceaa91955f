"""Helpers shared by the retouching tests."""

from __future__ import annotations

from mofrr_core.metrics import psnr

__all__ = ["BUILTIN_APIS", "psnr"]

from mofrr_core.plugins import get_retouch_ops

LEGACY_APIS = [("white", "curve"), ("white", "lab"), ("smooth", "bilateral"), ("smooth", "guided"),
               ("face", "liquify"), ("face", "rbf"), ("eye", "bulge")]
"""The seven apis of engine versions <= 4 (kept with the same names and outputs)."""


def builtin_apis(op: str | None = None) -> list[tuple[str, str]]:
    """Every registered built-in ``(op, api)`` (a new api is tested without touching the tests)."""
    return sorted((name, api) for name, apis in get_retouch_ops().items() for api, spec in apis.items()
                  if spec.distribution == "mofrr" and (op is None or name == op))


BUILTIN_APIS = builtin_apis()

