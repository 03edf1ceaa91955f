"""Ablation switches (paper Table 4) and baselines as pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mofrr_core.eval import (
    ABLATIONS,
    SingleModelPipeline,
    ablation,
    load_baseline,
    wavefrr_ablation,
    without_refinement,
)
from mofrr_core.models.presets import build_model

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
    assert np.array_equal(after, before)  # the patch is gone after the call
    if name == "no-degree":
        assert set(ablated.degrees[0].values()) == {3.0}


def test_no_refine_skips_the_combine_refinement_and_puts_it_back(pipeline, astronaut_face):
    refine = pipeline.combine.refine
    before = restore(pipeline, astronaut_face)
    ablated = restore(ablation(pipeline, "no-refine").restore, astronaut_face)
    assert ablated.experts_run == before.experts_run  # same routing, only the fusion differs
    assert np.abs(ablated.images[0].astype(int) - before.images[0].astype(int)).max() > 0
    assert pipeline.combine.refine is refine  # put back after the call
    assert np.array_equal(restore(pipeline, astronaut_face).images[0], before.images[0])
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with without_refinement(pipeline.combine):  # the output is then exactly the gated fusion
        fused = pipeline.combine(x, x.flip(-1), None)
    weights = pipeline.combine.weights(x, torch.stack([x, x.flip(-1)], 1), torch.tensor([0, 1]),
                                       torch.ones(1, 2, dtype=torch.bool))
    mix = (weights * torch.stack([x, x.flip(-1)], 1)).sum(1)
    assert torch.allclose(fused, x + pipeline.combine.gate * (mix - x), atol=1e-6)
    bare = build_model("combine", "tiny", refine_channels=0)
    with pytest.raises(ValueError, match="no refinement net"):
        with without_refinement(bare):
            pass


def test_wavefrr_ablation_context_manager():
    model = perturb(build_model("wavefrr", "tiny"), seed=5, scale=0.05).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference = model.restore(x, 2, torch.Generator().manual_seed(0))
    for name in ("no-idem", "no-degree", "no-hfcam"):
        with wavefrr_ablation(model, name):
            changed = model.restore(x, 2, torch.Generator().manual_seed(0))
        assert (changed.image - reference.image).abs().max() > 1e-5, name
        again = model.restore(x, 2, torch.Generator().manual_seed(0))
        assert torch.equal(again.image, reference.image), name
    with pytest.raises(ValueError, match="not a WaveFRR ablation"):
        with wavefrr_ablation(model, "no-router"):
            pass


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


def test_no_warp_skips_the_field_of_the_experts_that_have_one_and_puts_it_back(pipeline, astronaut_face):
    with pytest.raises(ValueError, match="FlowWarp"):
        ablation(pipeline, "no-warp")  # the tiny pipeline's experts have none
    model = perturb(build_model("wavefrr", "tiny", warp=True), seed=5, scale=0.05).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    reference = model.restore(x, 2, torch.Generator().manual_seed(0))
    with wavefrr_ablation(model, "no-warp"):
        plain = model.restore(x, 2, torch.Generator().manual_seed(0))
    z = model.estimate_degree(x)
    with torch.no_grad():
        assert model.flow_warp.field(x, z).abs().max() > 1e-3  # the field is not zero: the switch matters
    assert (plain.image - reference.image).abs().max() > 1e-5
    assert torch.equal(model.restore(x, 2, torch.Generator().manual_seed(0)).image, reference.image)
