"""YAML presets (``tiny``, ``cpu``, ``paper``) and a builder for every network component.

A preset file has one top-level key per component (``router``, ``degree``, ``wavefrr``, ``baseline``,
``shared_expert``, ``combine``) holding its constructor kwargs; other top-level keys (e.g.
``train:``) are kept and ignored here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from diffusers import ModelMixin

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
PRESETS = tuple(sorted(path.stem for path in CONFIG_DIR.glob("*.yaml")))  # tiny, cpu, paper: the folder is the list
COMPONENTS = {
    "router": "Router",
    "degree": "DegreeEstimator",
    "wavefrr": "WaveFRR",
    "shared_expert": "SharedExpert",
    "combine": "CombineModule",
    "baseline": "UNetBaseline",
}


def load_preset(name: str | Path = "cpu") -> dict[str, Any]:
    """The preset ``name`` (``tiny``/``cpu``/``paper``) or a YAML file path, as a dict."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = CONFIG_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    with path.open() as f:
        data = yaml.safe_load(f) or {}
    return {key: (dict(value) if isinstance(value, dict) else value) for key, value in data.items()}


def build_model(component: str, preset: str | Path = "cpu", **overrides: Any) -> ModelMixin:
    """Build ``component`` (router, degree, wavefrr, shared_expert, combine, baseline) from a preset + overrides."""
    from . import MODEL_TYPES

    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r} (known: {', '.join(COMPONENTS)})")
    kwargs = dict(load_preset(preset).get(component) or {})
    kwargs.update(overrides)
    return MODEL_TYPES[COMPONENTS[component]](**kwargs)
