"""Networks: shapes, identity at init, gradients, DDIM determinism, save/load, one optimisation step."""

from __future__ import annotations

import pytest
import torch

from mofrr_core.metrics import psnr_per_image
from mofrr_core.models import HFCAM, IDEM, MCA, MODEL_TYPES, CombineModule, GateHead, Router, WaveFRR
from mofrr_core.models.presets import PRESETS, build_model, load_preset

torch.set_num_threads(min(2, torch.get_num_threads()))


def images(batch: int = 3, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return x, y


def jitter(module: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return module


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- presets ----------------------------------------------------------------------------------------
def test_presets_build_every_component():
    for name in PRESETS:
        preset = load_preset(name)
        assert {"router", "degree", "wavefrr", "shared_expert", "combine"} <= set(preset)
    for component in ("router", "degree", "wavefrr", "shared_expert", "combine"):
        assert isinstance(build_model(component, "tiny"), tuple(MODEL_TYPES.values()))
    assert build_model("wavefrr", "tiny", levels=1).config.levels == 1
    with pytest.raises(ValueError):
        build_model("nope", "tiny")


def test_preset_tolerates_unknown_top_level_keys(tmp_path):
    path = tmp_path / "custom.yaml"
    path.write_text("train: {lr: 1.0e-4}\ncombine: {hidden_channels: 4, refine_channels: 0}\n")
    assert load_preset(path)["train"]["lr"] == 1e-4
    assert build_model("combine", path).config.hidden_channels == 4


# -- shapes and identity ------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_wavefrr_shapes_and_identity(levels, batch):
    model = build_model("wavefrr", "tiny", levels=levels).eval()
    x, _ = images(batch)
    out = model.restore(x, generator=gen())
    assert out.image.shape == x.shape and out.degree.shape == (batch,)
    assert ((out.degree >= 1) & (out.degree <= 5)).all()
    assert psnr_per_image(out.image, x).min() > 40


@pytest.mark.parametrize("batch", [1, 3])
def test_shared_expert_shapes_and_identity(batch):
    model = build_model("shared_expert", "tiny").eval()
    x, _ = images(batch)
    out = model.restore(x, num_inference_steps=2, generator=gen())
    assert out.image.shape == x.shape and out.degree is None
    assert psnr_per_image(out.image, x).min() > 40


@pytest.mark.parametrize("refine_unet", [None, (8, 16)])
def test_combine_identity_any_k_and_permutation_invariance(refine_unet):
    model = build_model("combine", "tiny", refine_unet=refine_unet).eval()
    x, y = images(3)
    experts = torch.stack([y, -y, y * 0.5], dim=1)
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    out = model(x, y, experts, mask)
    assert out.shape == x.shape and psnr_per_image(out, x).min() > 40
    assert psnr_per_image(model(x, y, experts[:, :0], mask[:, :0]), x).min() > 40
    jitter(model)
    with torch.no_grad():
        model.gate.fill_(1.0)
    perm = torch.tensor([2, 0, 1])
    a, b = model(x, y, experts, mask), model(x, y, experts[:, perm], mask[:, perm])
    assert torch.allclose(a, b, atol=1e-5)
    # masked-out experts do not matter
    changed = experts.clone()
    changed[~mask] = 0.7
    assert torch.allclose(model(x, y, changed, mask), a, atol=1e-5)
    assert model(x, y, experts[:, :0], mask[:, :0]).shape == x.shape


@pytest.mark.parametrize("batch", [1, 3])
def test_router_and_degree_shapes(batch):
    x, _ = images(batch)
    router = build_model("router", "tiny")
    assert router(x).shape == (batch, 4)
    degree = build_model("degree", "tiny")
    assert degree(x).shape == (batch, 5)
    z = degree.expected_degree(x)
    assert z.shape == (batch,) and ((z >= 1) & (z <= 5)).all()


# -- router plug-in gates -----------------------------------------------------------------------------
def test_router_add_gate_trains_only_the_new_head(tmp_path):
    router = build_model("router", "tiny")
    x, _ = images(4)
    before = router(x).detach()
    head = router.new_gate()
    router.requires_grad_(False)
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    feats = router.features(x)
    loss0, _ = head.compute_loss(feats, labels)
    loss0.backward()
    optimiser.step()
    assert head.compute_loss(feats, labels)[0].item() < loss0.item()
    head.save_pretrained(tmp_path / "gate")
    router.add_gate("lips", GateHead.from_pretrained(tmp_path / "gate"))
    assert router.types == ["white", "smooth", "face", "eye", "lips"]
    after = router(x)
    assert after.shape == (4, 5) and torch.equal(after[:, :4], before)
    router.save_pretrained(tmp_path / "router")
    loaded = Router.from_pretrained(tmp_path / "router")
    assert loaded.types == router.types and torch.equal(loaded(x), after)
    with pytest.raises(ValueError):
        router.add_gate("lips", router.new_gate())
    with pytest.raises(ValueError):
        router.add_gate("other", GateHead(in_features=3))


def test_a_gate_on_another_router_backbone_warns(tmp_path, recwarn):
    import warnings

    router = build_model("router", "tiny")
    router.new_gate().save_pretrained(tmp_path / "gate")
    gate = GateHead.from_pretrained(tmp_path / "gate")
    assert gate.config.backbone == router.backbone_fingerprint()
    router.add_gate("lips", gate)  # its own backbone: silent
    assert not [w for w in recwarn.list if "backbone" in str(w.message)]
    retrained = build_model("router", "tiny")
    with torch.no_grad():
        next(retrained.backbone.parameters()).add_(0.01)  # the same architecture, other weights
    with pytest.warns(UserWarning, match="trained on another router backbone.*--stage gate --expert lips"):
        retrained.add_gate("lips", GateHead.from_pretrained(tmp_path / "gate"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_model("router", "tiny").add_gate("old", GateHead(in_features=router.feature_dim))  # no fingerprint

# -- IDEM / HFCAM ----------------------------------------------------------------------------------------
def test_idem_shapes_and_gradients_reach_every_parameter():
    idem = IDEM(channels=3, hidden_channels=8)
    x_ll, y_t = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    cond, r = idem(x_ll, y_t, torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 50, 199]))
    assert cond.shape == (3, 6, 8, 8) and r.shape == (3, 3, 8, 8)
    assert torch.equal(cond[:, :3], x_ll) and torch.equal(cond[:, 3:], r)
    (r**2).mean().backward()
    for name, p in idem.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_mca_range():
    a = MCA(3, 4)(torch.randn(2, 3, 5, 5))
    assert a.shape == (2, 3, 5, 5) and ((a > 0) & (a < 1)).all()


@pytest.mark.parametrize("size", [8, 6])
def test_hfcam_identity_then_gradients(size):
    hfcam = HFCAM(channels=3, dim=16, num_heads=8, patch_size=4)
    low, highs = torch.randn(2, 3, size // 2, size // 2), torch.randn(2, 3, 3, size, size)
    assert torch.equal(hfcam(low, highs), highs)  # zero-init output conv
    out = hfcam(low, highs)
    out.pow(2).mean().backward()
    assert hfcam.out.weight.grad.abs().sum() > 0
    for name, p in hfcam.named_parameters():
        assert p.grad is not None, name
    hfcam.zero_grad()
    jitter(hfcam, scale=0.1)
    hfcam(low, highs).pow(2).mean().backward()
    for name, p in hfcam.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# -- DDIM sampling -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("component", ["wavefrr", "shared_expert"])
def test_ddim_sampling_deterministic_per_seed(component):
    model = jitter(build_model(component, "tiny")).eval()
    x, _ = images(2)
    a = model.restore(x, num_inference_steps=3, generator=gen(1)).image
    b = model.restore(x, num_inference_steps=3, generator=gen(1)).image
    c = model.restore(x, num_inference_steps=3, generator=gen(2)).image
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-4


# -- save / load ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("component", ["router", "degree", "wavefrr", "shared_expert", "combine"])
def test_save_load_roundtrip_bit_identical(component, tmp_path):
    model = jitter(build_model(component, "tiny"))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = type(model).from_pretrained(tmp_path)
    public = lambda cfg: {k: v for k, v in dict(cfg).items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.config) == public(model.config)
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2), k1
    x, y = images(2)
    if component in ("wavefrr", "shared_expert"):
        assert torch.equal(model.restore(x, generator=gen()).image, loaded.restore(x, generator=gen()).image)
    elif component == "combine":
        e, m = y[:, None], torch.ones(2, 1, dtype=torch.bool)
        assert torch.equal(model(x, y, e, m), loaded(x, y, e, m))
    else:
        assert torch.equal(model(x), loaded(x))


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        (IDEM, {"channels": 3, "hidden_channels": 4}),
        (MCA, {"channels": 3}),
        (HFCAM, {"dim": 8}),
        (GateHead, {"in_features": 8}),
    ],
)
def test_submodules_roundtrip(cls, kwargs, tmp_path):
    model = jitter(cls(**kwargs))
    model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path)
    for v1, v2 in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(v1, v2)


# -- one optimisation step decreases each loss -----------------------------------------------------------
def _step_decreases(model: torch.nn.Module, loss_fn, lr: float = 1e-3) -> tuple[float, float]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=lr)
    loss, logs = loss_fn()
    assert isinstance(logs, dict) and all(isinstance(v, float) for v in logs.values())
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    after, _ = loss_fn()
    return loss.item(), after.item()


def test_wavefrr_loss_step_and_training_outputs():
    torch.manual_seed(0)
    model = build_model("wavefrr", "tiny")
    x, y = images(2)
    out = model.training_outputs(x, y, gen(3))
    assert out["eps_pred"].shape == out["eps"].shape == (2, 3, 8, 8)
    assert out["distortion"].shape == (2, 3, 8, 8) and out["image"].shape == x.shape
    assert [h.shape for h in out["highs_hat"]] == [(2, 3, 3, 16, 16), (2, 3, 3, 8, 8)]
    before, after = _step_decreases(model, lambda: model.compute_loss(x, y, gen(3)))
    assert after < before
    assert all(p.grad is None for p in model.degree_estimator.parameters())  # DE frozen by default


def test_wavefrr_spatial_loss_reaches_idem_unet_hfcam():
    model = jitter(build_model("wavefrr", "tiny"), scale=0.02)
    x, y = images(2)
    out = model.training_outputs(x, y, gen(0))
    from mofrr_core.models.losses import hybrid_loss

    hybrid_loss(out["image"], y).backward()
    for part in (model.idem, model.unet, *model.hfcams):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_wavefrr_harm_weight_adds_the_hinge_on_its_image():
    """With ``harm_weight`` the loss grows by that times :func:`losses.harm_loss` of the image it trains on; an
    expert at its identity start returns the input (nothing made worse), a jittered one on an untouched face
    (input = target) pays for every change."""
    from mofrr_core.models import losses

    x, _ = images(2)
    assert build_model("wavefrr", "tiny").compute_loss(x, x, gen(5), harm_weight=0.5)[1]["loss_harm"] == 0
    model = jitter(build_model("wavefrr", "tiny"), scale=0.02)
    plain, _ = model.compute_loss(x, x, gen(5))
    loss, logs = model.compute_loss(x, x, gen(5), harm_weight=0.5)
    harm = losses.harm_loss(model.training_outputs(x, x, gen(5))["image"], x, x).item()
    assert harm > 0.1 and logs["loss_harm"] == pytest.approx(harm, rel=1e-5)
    assert loss.item() == pytest.approx(plain.item() + 0.5 * harm, rel=1e-5) and logs["loss"] == loss.item()
    assert "loss_harm" not in model.compute_loss(x, x, gen(5))[1]


def test_wavefrr_trainable_degree_estimator():
    model = build_model("wavefrr", "tiny", train_degree=True)
    x, y = images(2)
    loss, logs = model.compute_loss(x, y, gen(0), degree=torch.tensor([1, 5]))
    assert "loss_class" in logs
    loss.backward()
    assert all(p.grad is not None for p in model.degree_estimator.parameters())


def test_shared_expert_loss_step():
    model = build_model("shared_expert", "tiny")
    x, y = images(2)
    before, after = _step_decreases(model, lambda: model.compute_loss(x, y, gen(5)))
    assert after < before


def test_combine_loss_step():
    model: CombineModule = build_model("combine", "tiny")
    x, y = images(2)
    experts, mask = torch.stack([y, x], 1), torch.tensor([[True, False], [True, True]])
    before, after = _step_decreases(model, lambda: model.compute_loss(x, x, experts, mask, y))
    assert after < before


def test_router_and_degree_loss_steps():
    x, _ = images(4)
    router = build_model("router", "tiny")
    labels = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]).float()
    before, after = _step_decreases(router, lambda: router.compute_loss(x, labels))
    assert after < before
    degree = build_model("degree", "tiny")
    target = torch.tensor([1, 2, 4, 5])
    before, after = _step_decreases(degree, lambda: degree.compute_loss(x, target))
    assert after < before


def test_wavefrr_config_options():
    with pytest.raises(ValueError):
        WaveFRR(levels=3)
    model = build_model(
        "wavefrr", "tiny", hfcam_condition="reconstruct", embed_timestep=False, min_snr_gamma=5.0
    )
    x, y = images(1)
    assert psnr_per_image(model.restore(x).image, x).min() > 40
    loss, _ = model.compute_loss(x, y, gen(0))
    assert torch.isfinite(loss)


def test_residual_ddim_noises_the_residual_and_weighs_by_min_snr():
    from mofrr_core.models.diffusion import ResidualDDIM, make_scheduler

    ddim = ResidualDDIM(make_scheduler(200))
    r0 = torch.rand(6, 3, 8, 8) - 0.5
    t, noise, r_t = ddim.noise_residual(r0, gen(3))
    again = ddim.noise_residual(r0, gen(3))
    assert all(torch.equal(a, b) for a, b in zip((t, noise, r_t), again))  # a pure function of the generator
    abar = make_scheduler(200).alphas_cumprod[t].view(-1, 1, 1, 1)
    assert torch.allclose(r_t, abar.sqrt() * r0 + (1 - abar).sqrt() * noise, atol=1e-6)
    assert ddim.min_snr_weights(t, None, r0) is None
    weights = ddim.min_snr_weights(t, 5.0, r0)
    snr = abar.flatten() / (1 - abar.flatten())
    assert torch.allclose(weights, torch.where(snr > 5.0, 5.0 / snr, torch.ones_like(snr)), atol=1e-5)
    assert (weights <= 1 + 1e-6).all() and (weights < 1).any() and (weights == 1).any()


@pytest.mark.parametrize("component", ["wavefrr", "shared_expert"])
def test_restore_is_batch_invariant(component):
    model = jitter(build_model(component, "tiny")).eval()
    x, _ = images(2)
    both = model.restore(torch.cat([x[:1], x[:1]]), num_inference_steps=2, generator=gen(4)).image
    alone = model.restore(x[:1], num_inference_steps=2, generator=gen(4)).image
    assert torch.allclose(both[0], both[1], atol=1e-5) and torch.allclose(both[:1], alone, atol=1e-5)


def test_packed_unet_any_size_zero_at_init():
    from mofrr_core.models.pix2pix import PackedUNet

    net = PackedUNet(6, 3, downscale=4, block_out_channels=(8, 16))
    x = torch.randn(2, 6, 36, 40)
    assert net(x).shape == (2, 3, 36, 40) and net(x).abs().max() == 0  # zero-initialised output conv
    jitter(net)
    assert net(x).abs().max() > 0


def test_a_widened_combine_reads_the_router_confidence_only_once_trained_to():
    narrow = build_model("combine", "tiny", refine_unet=(8, 16)).eval()
    jitter(narrow)
    with torch.no_grad():
        narrow.gate.fill_(1.0)
    wide = build_model("combine", "tiny", refine_unet=(8, 16), confidence_input=True).eval()
    wide.load_state_dict(wide.adapt_state_dict(narrow.state_dict()))
    x, y = images(2)
    experts, mask = torch.stack([y, -y], dim=1), torch.tensor([[True, True], [True, False]])
    low, high = torch.full((2, 2), 0.1), torch.full((2, 2), 0.9)
    reference = narrow(x, y, experts, mask)
    assert torch.allclose(narrow(x, y, experts, mask, low), reference)  # a narrow module ignores the confidence
    assert torch.allclose(wide(x, y, experts, mask, low), reference, atol=1e-6)  # the new channel starts at zero
    with torch.no_grad():
        wide.encoder[0].weight[:, -1].fill_(0.5)
    a, b = wide(x, y, experts, mask, low), wide(x, y, experts, mask, high)
    assert (a - b).abs().max() > 1e-3  # once its weights are not zero, the confidence changes the fusion
    assert torch.allclose(wide(x, y, experts, mask), wide(x, y, experts, mask, torch.ones(2, 2)))  # default 1


def test_sum_fusion_adds_the_changes_of_every_active_expert():
    x, y = images(2)
    shared = x + 0.01
    experts = torch.stack([x + 0.1, x - 0.3, x + 0.05], dim=1)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    fused = {}
    for fusion in ("softmax", "sum"):
        model = build_model("combine", "tiny", refine_channels=0, fusion=fusion).eval()
        with torch.no_grad():  # every score +20: sigmoid weights 1, softmax weights equal
            last = model.encoder[-1]
            last.weight.zero_()
            last.bias.fill_(20.0)
            model.gate.fill_(1.0)
        fused[fusion] = model(x, shared, experts, mask)
    changes = torch.tensor([0.01 + 0.1 - 0.3, 0.01 + 0.1])  # shared + the active experts
    assert torch.allclose(fused["sum"], x + changes[:, None, None, None], atol=1e-5)
    means = torch.tensor([(0.01 + 0.1 - 0.3) / 4, (0.01 + 0.1) / 3])  # softmax: the mean of X, shared, experts
    assert torch.allclose(fused["softmax"], x + means[:, None, None, None], atol=1e-5)
    with pytest.raises(ValueError, match="fusion must be 'softmax' or 'sum'"):
        build_model("combine", "tiny", fusion="max")


# -- FlowWarp (the optional displacement field of the geometric experts) ------------------------------
def shift_field(shape: tuple[int, int, int], dx: float, dy: float) -> torch.Tensor:
    """A constant field ``[B, 2, H, W]`` of ``(dx, dy)`` pixels."""
    b, h, w = shape
    return torch.tensor([dx, dy]).view(1, 2, 1, 1).expand(b, 2, h, w).clone()


def test_warp_with_an_integer_shift_moves_the_image_by_that_many_pixels():
    from mofrr_core.models.warp import warp

    x, _ = images(2, size=16)
    out = warp(x, shift_field((2, 16, 16), dx=2.0, dy=-1.0))
    # out(p) = x(p + (2, -1)): away from the replicated border it is x rolled by (-2, +1)
    expected = torch.roll(x, shifts=(1, -2), dims=(-2, -1))
    assert torch.allclose(out[..., 1:, :-2], expected[..., 1:, :-2], atol=1e-5)
    assert torch.allclose(warp(x, shift_field((2, 16, 16), 0.0, 0.0)), x, atol=1e-6)


def test_wavefrr_with_warp_is_the_same_expert_at_init_and_fine_tunes_from_one_without(tmp_path):
    from mofrr_core.train.trainer import init_from

    plain = jitter(build_model("wavefrr", "tiny"), scale=0.02).eval()
    plain.save_pretrained(tmp_path / "plain")
    warped = build_model("wavefrr", "tiny", warp=True, warp_channels=(8, 8), warp_downscale=2).eval()
    init_from(warped, tmp_path / "plain")
    x, _ = images(2)
    assert torch.equal(plain.restore(x, generator=gen()).image, warped.restore(x, generator=gen()).image)
    with pytest.raises(ValueError, match="trained with warp"):
        plain.adapt_state_dict(warped.state_dict())


def smooth_pattern(batch: int, size: int = 32) -> torch.Tensor:
    """A smooth 3-channel test image ``[batch, 3, size, size]`` that a 1-px shift visibly changes."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    return torch.stack([torch.sin(3 * xx + 2 * yy), torch.cos(2 * xx - yy), xx * yy])[None].repeat(batch, 1, 1, 1)


def train_field(net, retouched: torch.Tensor, target: torch.Tensor, loss, steps: int) -> torch.Tensor:
    """``steps`` Adam steps (lr 3e-3) of ``net`` (a FlowWarp) on ``loss(warped, target)``; returns the degrees used."""
    degree = torch.full((len(retouched),), 3.0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        value = loss(net(retouched, degree)[0], target)
        opt.zero_grad()
        value.backward()
        opt.step()
    return degree


def test_flow_warp_learns_to_undo_a_shift():
    """The warp loss alone moves the field the right way: a 1-px shifted image is pulled back."""
    from mofrr_core.models.warp import FlowWarp, warp

    torch.manual_seed(0)
    size = 32
    target = smooth_pattern(2, size)
    retouched = warp(target, shift_field((2, size, size), -1.0, 0.0))  # content moved 1 px to the right
    net = FlowWarp(channels=(8, 8), downscale=2, max_shift=4.0)
    degree = torch.full((2,), 3.0)
    start = torch.nn.functional.l1_loss(net(retouched, degree)[0], target).item()
    train_field(net, retouched, target, torch.nn.functional.l1_loss, steps=60)
    with torch.no_grad():
        out, flow = net(retouched, degree)
    assert torch.nn.functional.l1_loss(out, target).item() < 0.5 * start
    assert 0.5 < flow[:, 0, 4:-4, 4:-4].mean().item() < 1.5  # the field points 1 px to the right
    assert abs(flow[:, 1, 4:-4, 4:-4].mean().item()) < 0.3


def test_wavefrr_warp_loss_trains_the_field_and_not_through_the_diffusion():
    model = build_model("wavefrr", "tiny", warp=True, warp_channels=(8, 8))
    x, y = images(2)
    loss, logs = model.compute_loss(x, y, gen(0))
    assert "loss_warp" in logs
    model.training_outputs(x, y, gen(0))["image"].sum().backward()  # the image loss alone
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.flow_warp.parameters())
    model.zero_grad()
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.flow_warp.parameters())


def test_warp_losses_under_doubt_l1_undoes_the_likelier_lift_mse_its_expected_value():
    """7 of 10 identical inputs were shifted 1 px (target: shifted back), 3 were not (target: the input).

    The hybrid loss (L1 + SSIM) learns nearly the whole shift; the squared error learns its expected
    value, 0.7 px; log-MSE (per-image PSNR) less still, since any move costs the untouched ones most.
    """
    from mofrr_core.models.warp import FlowWarp, warp
    from mofrr_core.models.wavefrr import WaveFRR

    size = 32
    original = smooth_pattern(10, size)
    retouched = warp(original, shift_field((10, size, size), -1.0, 0.0))
    target = torch.where((torch.arange(10) < 7)[:, None, None, None], original, retouched)
    shift = {}
    for kind in ("hybrid", "mse", "log_mse"):
        torch.manual_seed(0)
        net = FlowWarp(channels=(8, 8), downscale=2, max_shift=4.0)
        degree = train_field(net, retouched, target, WaveFRR.WARP_LOSSES[kind], steps=150)
        with torch.no_grad():
            shift[kind] = net.field(retouched, degree)[:, 0, 4:-4, 4:-4].mean().item()
    assert shift["hybrid"] > 0.85
    assert 0.6 < shift["mse"] < 0.8
    assert shift["log_mse"] < shift["mse"] - 0.2


def test_wavefrr_warp_loss_is_chosen_by_config_and_checked():
    from mofrr_core.models import losses

    x, y = images(2)
    expected = {"mse": lambda a, b: (a - b).pow(2).mean(), "log_mse": losses.log_mse_loss}
    for kind, loss in expected.items():
        model = build_model("wavefrr", "tiny", warp=True, warp_channels=(8, 8), warp_loss=kind)
        warped = model.training_outputs(x, y, gen(0))["warped"]
        assert torch.allclose(model.warp_loss(warped, y), loss(warped, y))
    with pytest.raises(ValueError, match="warp_loss must be one of"):
        build_model("wavefrr", "tiny", warp=True, warp_loss="l2")
