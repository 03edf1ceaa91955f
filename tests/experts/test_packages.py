"""The shipped expert packages: installed, discovered, weights matching registry.yaml, and they restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mofrr_core import plugins
from mofrr_core.metrics import psnr
from mofrr_core.registry import load_registry, sha256_of, verify_weights, weight_file, weights_status

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"white": "mofrr-expert-white", "smooth": "mofrr-expert-smooth", "face": "mofrr-expert-face",
            "eye": "mofrr-expert-eye", "shared": "mofrr-expert-shared"}
# The face expert's shipped weights must beat the input on the bundled example (white + face + eye at strength
# 0.8) by at least this much (dB) when it is asked to run: measured 23.271 -> 23.948 dB (+0.68; face expert,
# shared expert and Combine Module). The margin is half of that, far above CPU/BLAS rounding differences
# (~1e-4 dB), so weights that do nothing or harm fail. The router decides by itself whether it runs: its gates
# keep false calls on untouched faces under 5 % (docs/weights.md), and on this example none fires.
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


def test_default_pipeline_on_the_bundled_example():
    from mofrr_core.pipeline import Pipeline

    original = np.asarray(Image.open(REPO / "examples" / "original.png").convert("RGB"))
    retouched = np.asarray(Image.open(REPO / "examples" / "retouched.png").convert("RGB"))
    pipe = Pipeline.from_registry(device="cpu")
    out = pipe([retouched], seed=0, output_type="np")
    before = psnr(retouched, original)
    assert set(out.probabilities[0]) == {"white", "smooth", "face", "eye"}
    if out.experts_run[0]:  # routed: it must not harm
        assert psnr(out.images[0], original) >= before
    else:  # nothing flagged: the face comes back exactly as it came
        assert np.array_equal(out.images[0], retouched)
    forced = pipe([retouched], seed=0, output_type="np", active=["face"])
    after = psnr(forced.images[0], original)
    assert after > before + MIN_GAIN_DB, f"PSNR {before:.2f} -> {after:.2f} dB"
    assert forced.experts_run[0] == ["face", "shared"]  # the face expert's real weights act
