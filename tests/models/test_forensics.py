"""The SRM residual view and the router that reads it."""

import torch
import torch.nn.functional as F

from mofrr_core.models import Router
from mofrr_core.models.forensics import SRMResidual, srm_weight


def test_srm_kernels_are_high_pass():
    weight = srm_weight(3)
    assert weight.shape == (9, 1, 5, 5)
    assert torch.allclose(weight.sum(dim=(1, 2, 3)), torch.zeros(9), atol=1e-6)  # a flat image gives 0


def test_srm_residual_ignores_ramps_and_sees_texture():
    srm = SRMResidual()
    ramp = torch.linspace(-0.8, 0.8, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert srm(ramp)[..., 4:-4, 4:-4].abs().max() < 1e-4  # second-order kernels: linear shading is not texture
    torch.manual_seed(0)
    texture = (ramp + 0.02 * torch.randn(1, 3, 64, 64)).clamp(-1, 1)
    smoothed = F.avg_pool2d(F.pad(texture, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    energy = [srm(t).abs().mean().item() for t in (texture, smoothed)]
    assert energy[0] > 3 * energy[1]  # smoothing removes most of the residual
    assert srm(texture).abs().max() <= 1.0


def test_router_residual_view_shapes_fingerprint_and_save(tmp_path):
    plain = Router(base_channels=8, stage_blocks=(1, 1), input_size=32)
    both = Router(base_channels=8, stage_blocks=(1, 1), input_size=32, residual_view=True, residual_size=64)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert plain.face_size is None and both.face_size == 64
    assert both.feature_dim == 2 * plain.feature_dim
    assert both(x).shape == (2, 4)
    before = both.backbone_fingerprint()
    with torch.no_grad():
        next(both.residual.parameters()).add_(1.0)
    assert both.backbone_fingerprint() != before  # the residual view is part of what a gate reads
    both.save_pretrained(tmp_path / "router")
    loaded = Router.from_pretrained(tmp_path / "router")
    assert torch.equal(loaded(x), both(x))
