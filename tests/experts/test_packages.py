"""The shipped expert packages: installed, discovered, weights matching registry.yaml, and they restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mofrr_core import plugins
from mofrr_core.metrics import psnr
from mofrr_core.registry import load_registry, sha256_of, verify_weights, weight_file, weights_status

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"white": "mofrr-expert-white", "smooth": "mofrr-expert-smooth", "face": "mofrr-expert-face",
            "eye": "mofrr-expert-eye", "shared": "mofrr-expert-shared"}
# The default pipeline must beat the input on the bundled example (white + face + eye at strength 0.8) by at
# least this much (dB). Measured with the shipped weights: 23.271 -> 23.948 dB (+0.68; the router finds the
# face lift, p = 0.71, so the face expert, the shared expert and the Combine Module act; docs/results.md). The
# margin is half of that, far above CPU/BLAS rounding differences (~1e-4 dB), so a pipeline that does nothing
# (an untouched face is passed through as it came) or harms fails.
MIN_GAIN_DB = 0.34


def test_expert_packages_are_installed_and_discovered():
    experts = plugins.get_experts()
    for name, distribution in PACKAGES.items():
        assert name in experts, f"{distribution} is not installed or not discovered"
        assert experts[name].distribution == distribution
    assert experts["shared"].kind == "shared"
    assert {experts[n].retouch_type for n in ("white", "smooth", "face", "eye")} == {"white", "smooth", "face", "eye"}


def test_registry_weights_are_present_and_match_their_sha256():
    config = load_registry()
    components = [config.router, config.combine] + [entry.component for entry in config.experts]
    assert {entry.name for entry in config.experts} == set(PACKAGES)
    for component in components:
        assert component.sha256, f"{component.key}: registry.yaml has no sha256"
        assert weights_status(component) == "present", component.key
        folder = verify_weights(component)
        assert sha256_of(weight_file(folder)) == component.sha256
        size = weight_file(folder).stat().st_size
        assert size < 40 * 2**20, f"{component.key}: {size} bytes, packages must stay small"


def test_default_pipeline_restores_the_bundled_example():
    from mofrr_core.pipeline import Pipeline

    original = np.asarray(Image.open(REPO / "examples" / "original.png").convert("RGB"))
    retouched = np.asarray(Image.open(REPO / "examples" / "retouched.png").convert("RGB"))
    pipe = Pipeline.from_registry(device="cpu")
    out = pipe([retouched], seed=0, output_type="np")
    before, after = psnr(retouched, original), psnr(out.images[0], original)
    assert after > before + MIN_GAIN_DB, f"PSNR {before:.2f} -> {after:.2f} dB"
    assert "shared" in out.experts_run[0] and "face" in out.experts_run[0]  # the face expert's real weights act
    assert set(out.probabilities[0]) == {"white", "smooth", "face", "eye"}


def test_third_party_plugin_is_discovered_and_runs(astronaut_face):
    import torch
    from skimage import data

    from mofrr_core.models import WaveFRR
    from mofrr_core.retouch import FaceLandmarks

    spec = plugins.get_expert("lips")
    assert spec.distribution == "mofrr-expert-lips" and spec.retouch_type == "lips"
    op = plugins.get_retouch_ops()["lips"]["default"]
    points = np.load(REPO / "mofrr_core" / "assets" / "astronaut_landmarks.npy")
    image = data.astronaut()
    result = op.fn(image, FaceLandmarks(points), 0.8, np.random.default_rng(0))
    changed = np.abs(result.image.astype(int) - image).max(axis=2) > 0
    mouth = points[[61, 291, 0, 17]]
    ys, xs = np.nonzero(changed)
    assert changed.any() and xs.min() > mouth[:, 0].min() - 60 and xs.max() < mouth[:, 0].max() + 60
    if spec.weights is None or not (spec.weights / "config.json").is_file():
        pytest.skip("mofrr-expert-lips ships no weights yet")
    model = WaveFRR.from_pretrained(spec.weights)
    x = torch.from_numpy(astronaut_face).permute(2, 0, 1)[None].float() / 127.5 - 1
    restored = model.restore(x, num_inference_steps=2, generator=torch.Generator().manual_seed(0)).image
    assert restored.shape == x.shape and torch.isfinite(restored).all()


def test_plugin_gate_was_trained_on_the_shipped_router():
    from mofrr_core.models import GateHead, Router

    spec = plugins.get_expert("lips")
    router = Router.from_pretrained(weight_file(load_registry().router.weights).parent)
    gate = GateHead.from_pretrained(spec.gate)
    # a new router release must come with its plug-in gates retrained on its backbone (docs/networks.md)
    assert gate.config.backbone == router.backbone_fingerprint()
