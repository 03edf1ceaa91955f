"""Pipeline wiring: router -> activated experts + shared -> combine; save/load; input types."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mofrr_core.models import Router
from mofrr_core.pipeline import Pipeline


def count_calls(pipeline: Pipeline) -> dict[str, list[int]]:
    """Wrap every expert's restore to record the batch size it was called with."""
    calls: dict[str, list[int]] = {}
    for slot in pipeline.experts + ([] if pipeline.shared is None else [None]):
        model = pipeline.shared if slot is None else slot.model
        name = "shared" if slot is None else slot.name
        original = model.restore
        calls[name] = []

        def restore(x, *args, _original=original, _name=name, **kwargs):
            calls[_name].append(x.shape[0])
            return _original(x, *args, **kwargs)

        model.restore = restore
    return calls


def force_router(pipeline: Pipeline, probabilities: list[list[float]]) -> None:
    pipeline.route = lambda x: torch.tensor(probabilities, dtype=x.dtype)


def test_only_activated_experts_run(tiny_pipeline, astronaut_face):
    calls = count_calls(tiny_pipeline)
    # types: white, smooth, face, eye; experts: white, eye
    force_router(tiny_pipeline, [[0.9, 0.1, 0.1, 0.2], [0.2, 0.7, 0.1, 0.6], [0.1, 0.1, 0.1, 0.1]])
    out = tiny_pipeline([astronaut_face] * 3, output_type="np")
    assert calls == {"white": [1], "eye": [1], "shared": [3]}
    assert out.experts_run == [["white", "shared"], ["eye", "shared"], ["shared"]]
    assert set(out.degrees[0]) == {"white"} and set(out.degrees[1]) == {"eye"} and out.degrees[2] == {}
    assert 1 <= out.degrees[0]["white"] <= 5


def test_ablation_switches(tiny_pipeline, astronaut_face):
    calls = count_calls(tiny_pipeline)
    force_router(tiny_pipeline, [[0.0, 0.0, 0.0, 0.0]])
    tiny_pipeline([astronaut_face], active="all", use_shared=False)
    assert calls == {"white": [1], "eye": [1], "shared": []}
    with pytest.raises(ValueError, match="nose"):
        tiny_pipeline([astronaut_face], active=["nose"])


def test_router_probabilities_are_reported(tiny_pipeline, astronaut_face):
    out = tiny_pipeline([astronaut_face])
    probabilities = out.probabilities[0]
    assert list(probabilities) == ["white", "smooth", "face", "eye"]
    assert all(0 <= p <= 1 for p in probabilities.values())
    expected = [name for name in ("white", "eye") if probabilities[name] > 0.5] + ["shared"]
    assert out.experts_run[0] == expected


def test_gate_offsets_move_the_threshold_not_the_reported_probability(tiny_pipeline, astronaut_face):
    faces = [astronaut_face, np.ascontiguousarray(astronaut_face[:, ::-1])]
    plain = tiny_pipeline(faces)
    assert tiny_pipeline.gate_thresholds == {t: 0.5 for t in ["white", "smooth", "face", "eye"]}
    highest = max(plain.probabilities[i]["white"] for i in range(2)) + 1e-3
    offset = -float(torch.logit(torch.tensor(highest, dtype=torch.float64)))  # white now fires on neither face
    tiny_pipeline.router.register_to_config(gate_offsets={"white": offset})
    gated = tiny_pipeline(faces)
    assert gated.probabilities == plain.probabilities  # printed probabilities keep their meaning
    assert gated.thresholds["white"] == pytest.approx(highest, abs=1e-6)
    assert gated.thresholds["eye"] == 0.5 and tiny_pipeline.thresholds_for(["eye", "nose"]) == [0.5, 0.5]
    assert all("white" not in run for run in gated.experts_run)
    assert ("eye" in gated.experts_run[0]) == (plain.probabilities[0]["eye"] > 0.5)


def test_router_views_judge_each_face_with_its_views_offsets(tiny_pipeline, astronaut_face):
    """A router calibrated per view (``view_gate_offsets``): the same face read ``resized`` gets that view's
    thresholds (reported per face), read ``native`` the router's own; the printed probabilities do not move."""
    faces = [astronaut_face, astronaut_face]
    plain = tiny_pipeline(faces)
    assert 0.4 < plain.probabilities[0]["white"] < 0.6 and 0.6 < plain.probabilities[0]["eye"] < 0.9
    tiny_pipeline.router.register_to_config(gate_offsets={"white": 3.0},  # white fires on every face...
                                            view_gate_offsets={"resized": {"white": -3.0, "eye": -3.0}})
    judged = tiny_pipeline(faces, router_views=["native", "resized"])
    assert judged.probabilities == plain.probabilities
    assert judged.face_thresholds[0] == judged.thresholds == tiny_pipeline.gate_thresholds
    assert judged.face_thresholds[1] == tiny_pipeline.view_gate_thresholds("resized")
    assert judged.face_thresholds[1]["white"] > 0.95 and judged.face_thresholds[1]["smooth"] == 0.5
    assert "white" in judged.experts_run[0] and not {"white", "eye"} & set(judged.experts_run[1])  # ...read natively
    assert tiny_pipeline.thresholds_for(["eye"], "resized")[0] > 0.95 and tiny_pipeline.thresholds_for(["eye"]) == [0.5]
    with pytest.raises(ValueError, match="router_views: expected 2 views"):
        tiny_pipeline(faces, router_views=["native"])


def test_view_calibration_rescales_printed_probabilities_not_decisions(tiny_pipeline, astronaut_face):
    """A view's own Platt scaling (``view_calibration``): a face read in that view prints ``sigmoid(scale * logit +
    bias)`` for the gate named, its threshold moved with it, so the printed probability is above its threshold exactly
    where the gate fired; the same face read in another view, and the other gates, print as before."""
    faces, views = [astronaut_face, astronaut_face], ["native", "native-grid"]
    tiny_pipeline.router.register_to_config(view_gate_offsets={"native-grid": {"eye": -0.5}})
    plain = tiny_pipeline(faces, router_views=views)
    tiny_pipeline.router.register_to_config(view_calibration={"native-grid": {"eye": [2.0, -2.0]}})
    rescaled = tiny_pipeline(faces, router_views=views)
    assert rescaled.experts_run == plain.experts_run and rescaled.probabilities[0] == plain.probabilities[0]
    logit = float(torch.logit(torch.tensor(plain.probabilities[1]["eye"], dtype=torch.float64)))
    assert rescaled.probabilities[1]["eye"] == pytest.approx(1 / (1 + np.exp(2.0 - 2.0 * logit)), abs=1e-3)
    assert {t: p for t, p in rescaled.probabilities[1].items() if t != "eye"} == {
        t: p for t, p in plain.probabilities[1].items() if t != "eye"}
    assert plain.face_thresholds[1]["eye"] == pytest.approx(1 / (1 + np.exp(-0.5)))
    assert rescaled.face_thresholds[1]["eye"] == pytest.approx(1 / (1 + np.exp(1.0)))  # 2 * 0.5 - 2
    assert rescaled.face_thresholds[1] == tiny_pipeline.view_gate_thresholds("native-grid")
    assert rescaled.face_thresholds[0] == plain.face_thresholds[0] == tiny_pipeline.gate_thresholds
    fired = [rescaled.probabilities[i]["eye"] > rescaled.face_thresholds[i]["eye"] for i in range(2)]
    assert fired == ["eye" in run for run in rescaled.experts_run]
    assert torch.equal(tiny_pipeline.router.logit_calibration("native"), torch.tensor([[1.0] * 4, [0.0] * 4],
                                                                                      dtype=torch.float64))


def test_save_load_round_trip_is_bit_identical(tiny_pipeline, astronaut_face, tmp_path):
    before = tiny_pipeline([astronaut_face], seed=3, active="all", output_type="pt").images[0]
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    loaded = Pipeline.from_pretrained(tmp_path / "pipe")
    after = loaded([astronaut_face], seed=3, active="all", output_type="pt").images[0]
    assert torch.equal(before, after)
    assert [s.name for s in loaded.experts] == ["white", "eye"]
    other_seed = loaded([astronaut_face], seed=4, active="all", output_type="pt").images[0]
    assert not torch.equal(before, other_seed)  # the diffusion noise matters


def test_router_context_types_and_native_range_survive_save_and_load(tiny_pipeline, tmp_path):
    from mofrr_core.router_view import NATIVE_SCALE_RANGE

    assert tiny_pipeline.router_native_range == NATIVE_SCALE_RANGE
    tiny_pipeline.router_context_types, tiny_pipeline.router_native_range = ("white",), (0.6, 1.3)
    try:
        tiny_pipeline.save_pretrained(tmp_path / "pipe")
    finally:
        tiny_pipeline.router_context_types, tiny_pipeline.router_native_range = (), NATIVE_SCALE_RANGE
    loaded = Pipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.router_context_types == ("white",) and loaded.router_native_range == (0.6, 1.3)


def test_expert_strength_keeps_a_share_of_the_change(tiny_pipeline, astronaut_face, tmp_path):
    x = torch.tensor(astronaut_face).permute(2, 0, 1)[None].float() / 127.5 - 1
    mask = torch.ones(1, 2, dtype=torch.bool)
    full = tiny_pipeline.run_experts(x, mask, 2, torch.Generator().manual_seed(0)).images
    tiny_pipeline.experts[0].strength, tiny_pipeline.experts[1].strength = 0.0, 0.5
    scaled = tiny_pipeline.run_experts(x, mask, 2, torch.Generator().manual_seed(0)).images
    assert (full[0, 0] - x[0]).abs().max() > 1e-3  # the white expert changes the face
    assert torch.equal(scaled[0, 0], x[0])  # strength 0: no change
    torch.testing.assert_close(scaled[0, 1] - x[0], 0.5 * (full[0, 1] - x[0]))
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    assert [s.strength for s in Pipeline.from_pretrained(tmp_path / "pipe").experts] == [0.0, 0.5]


def test_posterior_gate_blend_keeps_each_change_in_proportion_to_its_gate(tiny_pipeline, astronaut_face, tmp_path):
    x = torch.tensor(astronaut_face).permute(2, 0, 1)[None].float() / 127.5 - 1
    mask = torch.ones(1, 2, dtype=torch.bool)
    full = tiny_pipeline.run_experts(x, mask, 2, torch.Generator().manual_seed(0)).images
    reported = torch.tensor([[0.8, 0.3, 0.6, 0.9]])  # white, smooth, face, eye
    assert torch.equal(tiny_pipeline.expert_blend(reported, "router"), torch.ones(1, 2))  # hard: all of it
    tiny_pipeline.gate_blend = "posterior"
    blend = tiny_pipeline.expert_blend(reported, "router")
    types = [s.retouch_type for s in tiny_pipeline.experts]
    assert blend.tolist() == [[reported[0, ["white", "smooth", "face", "eye"].index(t)].item() for t in types]]
    assert torch.equal(tiny_pipeline.expert_blend(reported, "all"), torch.ones(1, 2))  # forced experts: all of it
    blended = tiny_pipeline.run_experts(x, mask, 2, torch.Generator().manual_seed(0), blend=blend).images
    for k in range(2):
        torch.testing.assert_close(blended[0, k] - x[0], blend[0, k] * (full[0, k] - x[0]))
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    assert Pipeline.from_pretrained(tmp_path / "pipe").gate_blend == "posterior"


def test_inputs_of_every_kind_and_size(tiny_pipeline, astronaut_face):
    pil = Image.fromarray(astronaut_face).resize((48, 40))
    tensor = torch.from_numpy(astronaut_face).permute(2, 0, 1).float() / 127.5 - 1
    out = tiny_pipeline([pil, astronaut_face, tensor], output_type="np")
    assert [o.shape for o in out.images] == [(40, 48, 3), (64, 64, 3), (64, 64, 3)]
    assert all(o.dtype == np.uint8 for o in out.images)
    assert np.array_equal(out.images[1], out.images[2])  # same image as array or tensor
    batch = tiny_pipeline(tensor[None].repeat(2, 1, 1, 1), output_type="pt")
    assert len(batch.images) == 2 and torch.equal(batch.images[0], batch.images[1])


def test_untrained_pipeline_returns_its_input(astronaut_face):
    """Every restorer starts at the identity, so an untrained pipeline does no harm."""
    from mofrr_core.metrics import psnr
    from mofrr_core.models.presets import build_model
    from mofrr_core.pipeline import ExpertSlot

    pipeline = Pipeline(build_model("router", "tiny", types=["white", "smooth", "face", "eye"]),
                        [ExpertSlot("eye", "eye", build_model("wavefrr", "tiny"))],
                        build_model("shared_expert", "tiny"), build_model("combine", "tiny"), resolution=64,
                        num_inference_steps=2)
    out = pipeline([astronaut_face], active="all", output_type="np").images[0]
    assert psnr(out, astronaut_face) > 40


def test_passthrough_untouched_returns_the_input_exactly(tiny_pipeline, astronaut_face, tmp_path):
    calls = count_calls(tiny_pipeline)
    tiny_pipeline.passthrough_untouched = True
    force_router(tiny_pipeline, [[0.1, 0.2, 0.1, 0.3], [0.9, 0.1, 0.1, 0.1]])
    out = tiny_pipeline([astronaut_face, astronaut_face], output_type="np")
    assert np.array_equal(out.images[0], astronaut_face)  # no gate fired: untouched, bit for bit
    assert out.experts_run == [[], ["white", "shared"]] and out.degrees[0] == {}
    assert calls == {"white": [1], "eye": [], "shared": [1]}  # only the flagged face was restored
    assert not np.array_equal(out.images[1], astronaut_face)
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    assert Pipeline.from_pretrained(tmp_path / "pipe").passthrough_untouched
    # the paper's behaviour without the flag: the shared expert still runs on a face no gate flags
    tiny_pipeline.passthrough_untouched = False
    force_router(tiny_pipeline, [[0.1, 0.2, 0.1, 0.3]])
    assert tiny_pipeline([astronaut_face], output_type="np").experts_run == [["shared"]]


def test_router_reads_faces_at_its_own_size(tiny_pipeline, astronaut_face):
    seen = []
    router = Router(base_channels=8, stage_blocks=(1, 1), input_size=32, residual_view=True, residual_size=96)
    original_forward = router.forward
    router.forward = lambda x: seen.append(tuple(x.shape[-2:])) or original_forward(x)
    tiny_pipeline.router = router.eval()
    out = tiny_pipeline([astronaut_face], output_type="np")
    assert seen == [(96, 96)] and list(out.probabilities[0]) == ["white", "smooth", "face", "eye"]


def test_confounded_gates_explain_a_call_away(tiny_pipeline, astronaut_face, tmp_path):
    """``confounded_gates``: where the gate of the first type fires, the second's expert runs only above the
    confidence given; elsewhere at the usual threshold; saved with the pipeline; unknown types are refused."""
    # types: white, smooth, face, eye; experts: white, eye
    rows = [[0.9, 0.1, 0.1, 0.7], [0.9, 0.1, 0.1, 0.95], [0.1, 0.1, 0.1, 0.7]]
    force_router(tiny_pipeline, rows)
    assert tiny_pipeline([astronaut_face] * 3, output_type="np").experts_run == [
        ["white", "eye", "shared"], ["white", "eye", "shared"], ["eye", "shared"]]
    tiny_pipeline.confounded_gates = {"white": {"eye": 0.85}}
    assert tiny_pipeline([astronaut_face] * 3, output_type="np").experts_run == [
        ["white", "shared"], ["white", "eye", "shared"], ["eye", "shared"]]  # 0.7 is not enough beside white
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    assert Pipeline.from_pretrained(tmp_path / "pipe").confounded_gates == {"white": {"eye": 0.85}}
    with pytest.raises(ValueError, match="confounded_gates: the router has no gate for nose"):
        Pipeline(tiny_pipeline.router, tiny_pipeline.experts, None, tiny_pipeline.combine,
                 confounded_gates={"smooth": {"nose": 0.9}})


def test_grid_gates_ask_for_more_where_the_view_kept_its_jpeg_grid(tiny_pipeline, astronaut_face, tmp_path):
    """``grid_gates``: where the router's view kept the photo's JPEG grid (``router_grids``), the listed gate's expert
    runs only above the confidence given; elsewhere, or with no grids known, at the usual threshold; saved with the
    pipeline; unknown types are refused."""
    force_router(tiny_pipeline, [[0.1, 0.1, 0.1, 0.7], [0.1, 0.1, 0.1, 0.95], [0.1, 0.1, 0.1, 0.7]])
    tiny_pipeline.grid_gates = {"eye": 0.77}
    faces = [astronaut_face] * 3
    assert tiny_pipeline(faces, output_type="np", router_grids=[True, True, False]).experts_run == [
        ["shared"], ["eye", "shared"], ["eye", "shared"]]  # 0.7 is not enough where the grid says a warp would show
    assert tiny_pipeline(faces, output_type="np").experts_run == [["eye", "shared"]] * 3
    with pytest.raises(ValueError, match=r"router_grids: expected 3 entries \(one per face\), got 2"):
        tiny_pipeline(faces, output_type="np", router_grids=[True, False])
    tiny_pipeline.save_pretrained(tmp_path / "pipe")
    assert Pipeline.from_pretrained(tmp_path / "pipe").grid_gates == {"eye": 0.77}
    with pytest.raises(ValueError, match="grid_gates: the router has no gate for nose"):
        Pipeline(tiny_pipeline.router, tiny_pipeline.experts, None, tiny_pipeline.combine, grid_gates={"nose": 0.9})


def test_the_report_says_which_calls_were_explained_away(tiny_pipeline, astronaut_face):
    from mofrr_core.restore import describe, face_info

    force_router(tiny_pipeline, [[0.9, 0.1, 0.1, 0.7], [0.9, 0.1, 0.1, 0.95]])
    tiny_pipeline.confounded_gates = {"white": {"eye": 0.85}}
    out = tiny_pipeline([astronaut_face] * 2, output_type="np")
    faces = [face_info(tiny_pipeline, out, i) for i in range(2)]
    assert [f["detected"] for f in faces] == [["white", "eye"], ["white", "eye"]]
    assert [f["explained_away"] for f in faces] == [["eye"], []]
    assert describe(faces[:1]) == ("found white (0.90), eye (0.70, not restored: its gate needs more confidence here); "
                                   "experts run: white, shared")


def test_the_report_says_where_low_frequencies_were_kept(tiny_pipeline, astronaut_face):
    """Only white ran and no other type is likely: its sigma, in the output and the face's report; another expert
    beside it, or another type at 0.5 or more: none, and the report leaves the field out."""
    from mofrr_core.restore import face_info

    force_router(tiny_pipeline, [[0.9, 0.1, 0.1, 0.1], [0.9, 0.1, 0.1, 0.7], [0.9, 0.1, 0.6, 0.1]])
    tiny_pipeline.keep_low_frequencies = {"white": 4.0}
    try:
        out = tiny_pipeline([astronaut_face] * 3, output_type="np")
    finally:
        tiny_pipeline.keep_low_frequencies = {}
    assert out.experts_run == [["white", "shared"], ["white", "eye", "shared"], ["white", "shared"]]
    assert out.low_frequency_sigmas == [4.0, 0.0, 0.0]
    faces = [face_info(tiny_pipeline, out, i) for i in range(3)]
    assert [f.get("keep_low_frequencies") for f in faces] == [4.0, None, None]


class WreckingCombine(torch.nn.Module):
    """A Combine Module that brightens every face it gets by a quarter of the range."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # the pipeline reads its device from a parameter

    def forward(self, x: torch.Tensor, *rest) -> torch.Tensor:
        return (x + 0.5).clamp(-1, 1)


def test_skip_combine_gives_the_lone_experts_own_output(tiny_pipeline, astronaut_face, tmp_path):
    """``skip_combine``: a face the listed expert restored alone, no other type likely, does not go through the
    Combine Module (a module that wrecks every face leaves it as it was) nor lists the shared expert; with another
    type at 0.5 or more, or another expert beside it, the module decides as usual; saved; unknown types refused."""
    from mofrr_core.models.combine import only_types_ran

    # types: white, smooth, face, eye; experts: white, eye
    force_router(tiny_pipeline, [[0.1, 0.1, 0.1, 0.9], [0.1, 0.1, 0.7, 0.9], [0.9, 0.1, 0.1, 0.9]])
    tiny_pipeline.skip_combine = ("eye",)
    combine = tiny_pipeline.combine
    try:
        real = tiny_pipeline([astronaut_face] * 3, output_type="np")
        tiny_pipeline.combine = WreckingCombine()
        wrecked = tiny_pipeline([astronaut_face] * 3, output_type="np")
        tiny_pipeline.combine = combine
        tiny_pipeline.save_pretrained(tmp_path / "pipe")
    finally:
        tiny_pipeline.combine, tiny_pipeline.skip_combine = combine, ()
    assert real.experts_run == [["eye"], ["eye", "shared"], ["white", "eye", "shared"]]
    assert np.array_equal(real.images[0], wrecked.images[0])
    assert not np.array_equal(real.images[1], wrecked.images[1]) and not np.array_equal(real.images[2],
                                                                                          wrecked.images[2])
    assert not np.array_equal(real.images[0], astronaut_face)  # the eye expert did change it
    assert Pipeline.from_pretrained(tmp_path / "pipe").skip_combine == ("eye",)
    with pytest.raises(ValueError, match="skip_combine: the router has no gate for lips"):
        Pipeline(tiny_pipeline.router, tiny_pipeline.experts, None, tiny_pipeline.combine, skip_combine=["lips"])
    types = ["white", "smooth", "face", "eye"]
    probabilities = torch.tensor([[0.1, 0.1, 0.1, 0.9]] * 3)
    ran = [["eye"], ["face", "eye"], []]
    assert only_types_ran(ran, probabilities, types, ["eye", "face"], 0.5) == [True, True, False]
    assert only_types_ran(ran, probabilities, types, ["eye", "face"], 0.5, single=True) == [True, False, False]


def test_explain_away_keeps_only_confident_calls_beside_the_confounder():
    from mofrr_core.models.router import explain_away

    mask = torch.tensor([[True, True, True], [False, True, True], [True, False, True]])
    confidence = torch.tensor([[0.9, 0.8, 0.6], [0.4, 0.8, 0.6], [0.9, 0.3, 0.95]])
    types, fired = ["smooth", "face", "eye"], {"smooth": mask[:, 0]}
    kept = explain_away(mask, confidence, types, fired, {"smooth": {"face": 0.85, "eye": 0.9}})
    assert kept.tolist() == [[True, False, False], [False, True, True], [True, False, True]]
    assert torch.equal(explain_away(mask, confidence, types, fired, {}), mask)
    # the smooth gate decides, whether or not a smooth expert is installed; no gate for a type: nothing explained
    only = explain_away(mask[:, 1:], confidence[:, 1:], types[1:], fired, {"smooth": {"face": 0.85}})
    assert only.tolist() == [[False, True], [True, True], [False, True]]
    assert torch.equal(explain_away(mask, confidence, types, {}, {"smooth": {"face": 0.85}}), mask)


def test_high_pass_change_removes_the_blurred_part_of_the_change():
    """``high_pass_change``: per image, the change minus its Gaussian blur (a uniform change is all low
    frequencies and goes; a 1 px checkerboard is nearly all kept); sigma 0 leaves the image as it came."""
    from mofrr_core.models.combine import gaussian_blur, high_pass_change

    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None]) % 2 * 0.2 - 0.1
    restored = x + torch.stack([torch.full((3, 32, 32), 0.1), checker.expand(3, 32, 32), torch.full((3, 32, 32), 0.1)])
    out = high_pass_change(x, restored, torch.tensor([4.0, 4.0, 0.0]))
    torch.testing.assert_close(out[0], x[0])  # uniform: removed
    assert (out[1] - restored[1])[:, 12:20, 12:20].abs().max() < 1e-3  # checkerboard: kept (away from the edges)
    assert torch.equal(out[2], restored[2])  # sigma 0: as is
    ramp = torch.linspace(0, 1, 32).expand(1, 1, 32, 32)
    torch.testing.assert_close(gaussian_blur(ramp, 2.0)[..., 8:24], ramp[..., 8:24])  # linear: kept inside
    assert gaussian_blur(ramp, 2.0).shape == ramp.shape


def test_low_frequency_sigmas_only_where_no_other_type_is_likely():
    """A face gets the blur when every expert that ran is named in ``keep`` (the smallest sigma of theirs) and
    every other type's probability is below the threshold; otherwise 0."""
    from mofrr_core.models.combine import low_frequency_sigmas

    types = ["white", "smooth", "face", "eye"]
    probabilities = torch.tensor([[0.1, 0.99, 0.2, 0.3], [0.6, 0.99, 0.2, 0.3], [0.1, 0.99, 0.9, 0.3],
                                  [0.1, 0.2, 0.2, 0.3], [0.1, 0.99, 0.2, 0.3]])
    ran = [["smooth"], ["smooth"], ["smooth", "face"], [], ["smooth", "face"]]
    sigmas = low_frequency_sigmas(ran, probabilities, types, {"smooth": 8.0}, 0.5)
    assert sigmas.tolist() == [8.0, 0.0, 0.0, 0.0, 0.0]
    both = low_frequency_sigmas(ran[4:], probabilities[4:], types, {"smooth": 8.0, "face": 3.0}, 0.5)
    assert both.tolist() == [3.0]


def test_change_cap_bounds_the_combine_modules_change_by_the_experts(tiny_pipeline, astronaut_face, tmp_path):
    """``change_cap``: per image, the change is scaled down to ``cap`` times the experts' change (root of the summed
    mean squares), left alone below it; ``None`` is the identity; the pipeline applies it and saves it."""
    from mofrr_core.models.combine import cap_change

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 8, generator=generator) * 2 - 1
    experts = x[:, None].repeat(1, 2, 1, 1, 1)
    experts[0, 0] += 0.03  # image 0: one expert moved every pixel by 0.03, another by 0.04
    experts[0, 1] += 0.04
    restored = x + 0.2 * torch.randn(2, 3, 8, 8, generator=generator)
    capped = cap_change(x, restored, experts, 2.0)
    rms = (capped - x).pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms[0], torch.tensor(2.0 * 0.05))  # 2 x sqrt(0.03^2 + 0.04^2)
    assert rms[1] < 1e-6  # no expert changed image 1: nothing of the module's change is kept
    torch.testing.assert_close((capped - x)[0] / rms[0], (restored - x)[0] / (restored - x)[0].pow(2).mean().sqrt())
    assert cap_change(x, restored, experts, None) is restored
    assert torch.equal(cap_change(x, x + 0.01, experts[:1].repeat(2, 1, 1, 1, 1), 2.0), x + 0.01)  # within: as is
    face = torch.tensor(astronaut_face).permute(2, 0, 1).float() / 127.5 - 1
    free = tiny_pipeline([face], active="all", output_type="pt").images[0]
    tiny_pipeline.change_cap = 1e-6
    try:
        tight = tiny_pipeline([face], active="all", output_type="pt").images[0]
        tiny_pipeline.save_pretrained(tmp_path / "pipe")
    finally:
        tiny_pipeline.change_cap = None
    assert (tight - face).abs().max() < (free - face).abs().max()
    assert Pipeline.from_pretrained(tmp_path / "pipe").change_cap == 1e-6


def test_pipeline_keeps_low_frequencies_where_asked_and_saves_it(tiny_pipeline, tmp_path):
    """Every expert forced and named in the key: where the router puts the other types below threshold the
    pipeline's change is the free change minus its blur (a face at the working size, away from the clamp), where
    it does not the change is left alone; the key is saved; a type without a gate is refused."""
    from mofrr_core.models.combine import high_pass_change

    face = 0.5 * torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1)) - 0.25
    free = tiny_pipeline([face], active="all", output_type="pt").images[0]
    tiny_pipeline.keep_low_frequencies = {"white": 2.0, "eye": 2.0}  # the tiny pipeline's two experts
    try:
        tiny_pipeline.threshold = 0.9999  # the untrained router's smooth and face gates "below threshold"
        kept = tiny_pipeline([face], active="all", output_type="pt").images[0]
        tiny_pipeline.threshold = 1e-4  # now they are likely: nothing is blurred
        unsure = tiny_pipeline([face], active="all", output_type="pt").images[0]
        tiny_pipeline.save_pretrained(tmp_path / "pipe")
    finally:
        tiny_pipeline.keep_low_frequencies, tiny_pipeline.threshold = {}, 0.5
    assert (free - face).abs().max() > 1e-3, "the tiny experts changed nothing: the test would prove nothing"
    torch.testing.assert_close(kept, high_pass_change(face[None], free[None], torch.tensor([2.0]))[0])
    assert not torch.allclose(kept, free)
    torch.testing.assert_close(unsure, free)
    assert Pipeline.from_pretrained(tmp_path / "pipe").keep_low_frequencies == {"white": 2.0, "eye": 2.0}
    with pytest.raises(ValueError, match="keep_low_frequencies: the router has no gate for lips"):
        Pipeline(tiny_pipeline.router, tiny_pipeline.experts, tiny_pipeline.shared, tiny_pipeline.combine,
                 keep_low_frequencies={"lips": 4.0})
