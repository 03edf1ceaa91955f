"""Ablation switches (paper Table 4) and baselines as pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mofrr_core.eval import ABLATIONS, SingleModelPipeline, ablation, load_baseline
from mofrr_core.models import WaveFRR
from mofrr_core.models.presets import build_model
from mofrr_core.pipeline import Pipeline

from ..conftest import make_tiny_pipeline, perturb

EXPERTS = ["white", "eye"]


@pytest.fixture(scope="module")
def pipeline():
    return make_tiny_pipeline(experts=EXPERTS)


def restore(method_or_pipeline, image, **kwargs):
    return method_or_pipeline(image, num_inference_steps=2, seed=0, output_type="np", **kwargs)


@pytest.mark.parametrize("name", [a for a in ABLATIONS if a != "no-warp"])  # no-warp: its own test below
def test_every_ablation_runs(name, pipeline, astronaut_face):
    method = ablation(pipeline, name)
    out = restore(method.restore, [astronaut_face, astronaut_face[::-1].copy()])
    assert len(out.images) == 2 and out.images[0].shape == astronaut_face.shape and out.images[0].dtype == np.uint8
    full = restore(pipeline, [astronaut_face, astronaut_face[::-1].copy()])
    if name == "none":
        assert method.name == "MoFRR" and out.experts_run == full.experts_run
        assert np.array_equal(out.images[0], full.images[0])
    elif name == "no-router":
        assert all(run == [*EXPERTS, "shared"] for run in out.experts_run)  # every expert on every image
    elif name == "no-shared":
        assert all("shared" not in run for run in out.experts_run)
        assert [[e for e in run if e != "shared"] for run in full.experts_run] == out.experts_run
    elif name == "single-expert":
        assert out.experts_run == [["white"], ["white"]] and out.probabilities == [{}, {}]
        assert set(out.degrees[0]) == {"white"}  # a WaveFRR: its degree is reported
        alone = restore(load_baseline("white", pipeline).restore, [astronaut_face, astronaut_face[::-1].copy()])
        assert all(np.array_equal(a, b) for a, b in zip(out.images, alone.images))
        assert not np.array_equal(out.images[0], full.images[0])


@pytest.mark.parametrize("name", ["no-idem", "no-degree", "no-hfcam"])
def test_wavefrr_switches_change_the_experts_and_are_undone(name, pipeline, astronaut_face):
    method = ablation(pipeline, name)
    before = restore(pipeline, astronaut_face, active="all").images[0]
    ablated = restore(method.restore, astronaut_face, active="all")
    assert ablated.experts_run[0] == [*EXPERTS, "shared"]  # call options pass through
    assert np.abs(ablated.images[0].astype(int) - before.astype(int)).max() > 0
    after = restore(pipeline, astronaut_face, active="all").images[0]
    assert np.array_equal(after, before)  # the ablation switched off copies: the pipeline's experts are untouched
    if name == "no-degree":
        assert set(ablated.degrees[0].values()) == {3.0}


def test_no_refine_switches_off_the_combine_refinement_of_a_copy(pipeline, astronaut_face):
    refine = pipeline.combine.refine
    before = restore(pipeline, astronaut_face)
    ablated = restore(ablation(pipeline, "no-refine").restore, astronaut_face)
    assert ablated.experts_run == before.experts_run  # same routing, only the fusion differs
    assert np.abs(ablated.images[0].astype(int) - before.images[0].astype(int)).max() > 0
    assert pipeline.combine.refine is refine and pipeline.combine.config.use_refinement  # the pipeline's own
    assert np.array_equal(restore(pipeline, astronaut_face).images[0], before.images[0])
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    plain = pipeline.combine.with_config(use_refinement=False)  # the output is then exactly the gated fusion
    fused = plain(x, x.flip(-1), None)
    weights = pipeline.combine.weights(x, torch.stack([x, x.flip(-1)], 1), torch.tensor([0, 1]),
                                       torch.ones(1, 2, dtype=torch.bool))
    mix = (weights * torch.stack([x, x.flip(-1)], 1)).sum(1)
    assert torch.allclose(fused, x + pipeline.combine.gate * (mix - x), atol=1e-6)
    assert not torch.allclose(pipeline.combine(x, x.flip(-1), None), fused, atol=1e-6)
    bare = Pipeline(pipeline.router, pipeline.experts, pipeline.shared,
                    build_model("combine", "tiny", refine_channels=0))
    with pytest.raises(ValueError, match="no refinement net"):
        ablation(bare, "no-refine")


@pytest.mark.parametrize("switch", ["use_idem", "use_degree", "use_hfcam"])
def test_wavefrr_ablation_switches_are_config_flags(switch, tmp_path):
    model = perturb(build_model("wavefrr", "tiny"), seed=5, scale=0.05).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference = model.restore(x, 2, torch.Generator().manual_seed(0))
    off = model.with_config(**{switch: False})
    changed = off.restore(x, 2, torch.Generator().manual_seed(0))
    assert (changed.image - reference.image).abs().max() > 1e-5
    assert getattr(model.config, switch) and torch.equal(model.restore(x, 2, torch.Generator().manual_seed(0)).image,
                                                         reference.image)  # the original is untouched
    if switch == "use_degree":
        assert changed.degree.tolist() == [WaveFRR.CONSTANT_DEGREE]
    off.save_pretrained(tmp_path / "off")  # the switch is part of the saved config
    again = WaveFRR.from_pretrained(tmp_path / "off").restore(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(again.image, changed.image)
    loss, _ = off.train().compute_loss(x, x.flip(-1), torch.Generator().manual_seed(1))
    loss.backward()  # trained with the switch off, the switched-off part learns nothing
    part = {"use_idem": off.idem, "use_degree": off.degree_estimator, "use_hfcam": off.hfcams}[switch]
    assert all(p.grad is None or not p.grad.any() for p in part.parameters())
    assert any(p.grad is not None and p.grad.any() for p in off.unet.parameters())
    with pytest.raises(ValueError, match="no config key use_everything"):
        model.with_config(use_everything=False)


def test_a_config_without_the_switches_loads_with_them_on(tmp_path):
    import json

    model = build_model("wavefrr", "tiny")
    model.save_pretrained(tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({k: v for k, v in config.items() if not k.startswith("use_")}))
    loaded = WaveFRR.from_pretrained(tmp_path / "old")
    assert all(loaded.config[k] is True for k in ("use_idem", "use_degree", "use_hfcam", "use_warp"))


def test_unknown_ablation_is_an_error(pipeline):
    with pytest.raises(ValueError, match="unknown ablation 'no-combine'"):
        ablation(pipeline, "no-combine")


def test_baselines_by_name_and_folder(pipeline, astronaut_face, tmp_path):
    shared = load_baseline("shared", pipeline)
    out = restore(shared.restore, astronaut_face)
    assert out.experts_run == [["shared"]] and out.degrees == [{}]
    assert np.abs(out.images[0].astype(int) - astronaut_face.astype(int)).max() > 0  # perturbed: not the identity
    unet = perturb(build_model("baseline", "tiny"), seed=7, scale=0.05)
    unet.save_pretrained(tmp_path / "unet")
    method = load_baseline(str(tmp_path / "unet"), pipeline)
    assert method.name == "UNetBaseline (unet)" and len(next(iter(method.weights.values()))) == 64  # sha256
    unet.save_pretrained(tmp_path / "run" / "final")  # mofrr-train's run/final: named after the run
    assert load_baseline(str(tmp_path / "run" / "final"), pipeline).name == "UNetBaseline (run/final)"
    restored = restore(method.restore, astronaut_face).images[0]
    assert np.abs(restored.astype(int) - astronaut_face.astype(int)).max() > 0
    shipped = load_baseline("unet", pipeline)  # mofrr_core/weights/baseline, trained by mofrr-train --stage baseline
    assert shipped.name == "UNet baseline (trained, same budget)" and len(shipped.weights["baseline"]) == 64
    assert np.abs(restore(shipped.restore, astronaut_face).images[0].astype(int) - astronaut_face.astype(int)).max() > 0
    with pytest.warns(UserWarning, match="untrained UNetBaseline"):
        identity = load_baseline("unet-untrained", pipeline)
    assert np.array_equal(restore(identity.restore, astronaut_face).images[0], astronaut_face)
    pipeline.save_pretrained(tmp_path / "pipe")
    other = load_baseline(str(tmp_path / "pipe"), pipeline)
    assert np.array_equal(restore(other.restore, astronaut_face).images[0], restore(pipeline, astronaut_face).images[0])
    with pytest.raises(ValueError, match="unknown baseline 'nope'"):
        load_baseline("nope", pipeline)


def test_single_model_pipeline_keeps_input_size_and_is_seeded(astronaut_face):
    model = perturb(build_model("shared_expert", "tiny"), seed=2)
    wrapped = SingleModelPipeline(model, "shared", resolution=32, num_inference_steps=2)
    a = wrapped([astronaut_face], seed=1, output_type="np").images[0]
    b = wrapped([astronaut_face], seed=1, output_type="np").images[0]
    c = wrapped([astronaut_face], seed=2, output_type="np").images[0]
    assert a.shape == astronaut_face.shape and np.array_equal(a, b) and not np.array_equal(a, c)


def test_no_warp_skips_the_field_of_the_experts_that_have_one(pipeline, astronaut_face):
    with pytest.raises(ValueError, match="FlowWarp"):
        ablation(pipeline, "no-warp")  # the tiny pipeline's experts have none
    model = perturb(build_model("wavefrr", "tiny", warp=True), seed=5, scale=0.05).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference = model.restore(x, 2, torch.Generator().manual_seed(0))
    plain = model.with_config(use_warp=False).restore(x, 2, torch.Generator().manual_seed(0))
    z = model.estimate_degree(x)
    with torch.no_grad():
        assert model.flow_warp.field(x, z).abs().max() > 1e-3  # the field is not zero: the switch matters
    assert (plain.image - reference.image).abs().max() > 1e-5
    assert torch.equal(model.restore(x, 2, torch.Generator().manual_seed(0)).image, reference.image)
