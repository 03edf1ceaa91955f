"""Shared fixtures: tiny networks (diffusers ``get_dummy_components`` style) and a tiny pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("MOFRR_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"))
torch.set_num_threads(1)  # tiny networks: one thread is fastest, and 2 threads on a loaded CPU are ~100x slower

TYPES = ["white", "smooth", "face", "eye"]


@pytest.fixture(scope="session")
def shards() -> Path:
    """The real face shards (``MOFRR_DATA``); the test is skipped where there are none."""
    root = Path(os.environ["MOFRR_DATA"])
    if not root.is_dir() or not any(root.glob("*.tar")):
        pytest.skip(f"no face shards in MOFRR_DATA={root} (see ../shared/data/faces/README.md)")
    return root


def perturb(module: torch.nn.Module, seed: int, scale: float = 0.02) -> torch.nn.Module:
    """Move every weight off its initial value so outputs depend on all of them (and on noise)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
    return module


def make_tiny_pipeline(experts=("white", "eye"), seed: int = 0, resolution: int = 32):
    """A pipeline of tiny random networks: real wiring, seconds on a CPU."""
    from mofrr_core.models.presets import build_model
    from mofrr_core.pipeline import ExpertSlot, Pipeline

    torch.manual_seed(seed)
    slots = [ExpertSlot(name, name, perturb(build_model("wavefrr", "tiny"), seed + i + 1))
             for i, name in enumerate(experts)]
    return Pipeline(
        router=perturb(build_model("router", "tiny", types=TYPES), seed + 10, 0.5),
        experts=slots,
        shared=perturb(build_model("shared_expert", "tiny"), seed + 20),
        combine=perturb(build_model("combine", "tiny"), seed + 30),
        resolution=resolution,
        num_inference_steps=2,
    )


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test starts on one torch thread, and a test that changes it (e.g. ``--threads``) can't leak it."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture
def tiny_pipeline():
    return make_tiny_pipeline()


@pytest.fixture
def tiny_combine():
    from mofrr_core.models.presets import build_model

    return build_model("combine", "tiny")


@pytest.fixture(scope="session")
def pipeline_dir(tmp_path_factory):
    """The tiny pipeline saved once per test run (read-only: copy it before changing anything)."""
    directory = tmp_path_factory.mktemp("tiny-pipeline")
    make_tiny_pipeline().save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def astronaut_face() -> np.ndarray:
    """The one real face shipped in a package (scikit-image), cropped like our training data."""
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.astronaut()).crop((140, 20, 340, 220)).resize((64, 64), Image.LANCZOS)
    return np.asarray(image)
