"""UNetBaseline: identity at init, save/load round trip, trainable like an expert."""

from __future__ import annotations

import pytest
import torch

from mofrr_core.models import MODEL_TYPES, ExpertOutput, UNetBaseline
from mofrr_core.models.presets import build_model
from mofrr_core.plugins import resolve_model_type

from ..conftest import perturb


def images(batch: int = 2, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    return x, (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def test_registered_and_buildable_from_every_preset():
    assert MODEL_TYPES["UNetBaseline"] is UNetBaseline
    assert resolve_model_type("UNetBaseline") is UNetBaseline
    for preset in ("tiny", "cpu", "paper"):
        assert isinstance(build_model("baseline", preset), UNetBaseline)


def test_starts_at_the_identity():
    model = build_model("baseline", "tiny").eval()
    x, _ = images()
    out = model.restore(x)
    assert isinstance(out, ExpertOutput) and out.degree is None
    assert torch.equal(out.image, x)


def test_save_and_from_pretrained_round_trip(tmp_path):
    model = perturb(build_model("baseline", "tiny"), seed=3, scale=0.05).eval()
    x, _ = images()
    before = model.restore(x).image
    assert (before - x).abs().max() > 1e-3  # perturbed: no longer the identity
    model.save_pretrained(tmp_path / "unet")
    loaded = UNetBaseline.from_pretrained(tmp_path / "unet").eval()
    assert loaded.config.block_out_channels == model.config.block_out_channels
    assert torch.allclose(loaded.restore(x).image, before, atol=1e-6)


def test_compute_loss_trains_towards_the_target():
    torch.manual_seed(0)
    model = build_model("baseline", "tiny")
    x, y = images(seed=1)
    loss0, logs = model.compute_loss(x, y)
    assert set(logs) == {"loss", "loss_l1", "ssim"} and logs["loss"] == pytest.approx(loss0.item())
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(15):
        optimiser.zero_grad()
        loss, _ = model.compute_loss(x, y)
        loss.backward()
        optimiser.step()
    assert model.compute_loss(x, y)[0].item() < 0.9 * loss0.item()


def test_size_must_fit_the_downsampling():
    model = build_model("baseline", "tiny")
    with pytest.raises(ValueError, match="multiple of 8"):
        model(torch.zeros(1, 3, 36, 36))
