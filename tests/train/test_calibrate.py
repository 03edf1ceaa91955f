"""Router temperature: logits divided by it; `mofrr-train calibrate` fits it without touching the weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mofrr_core.models import Router
from mofrr_core.registry import sha256_of
from mofrr_core.train.calibrate import (
    any_call_offsets,
    calibrate_router,
    calibrate_view,
    false_call_offsets,
    update_config,
)
from mofrr_core.train.cli import main


def saved_router(folder: Path, change_gate) -> Path:
    """A tiny router whose every gate went through ``change_gate`` (in place, no grad), saved to ``folder``."""
    torch.manual_seed(0)
    router = Router(base_channels=8, stage_blocks=(1, 1), input_size=32)
    with torch.no_grad():
        for gate in router.gates.values():
            change_gate(gate.net)
    router.save_pretrained(folder)
    return folder


def test_temperature_scales_logits_but_not_decisions():
    torch.manual_seed(0)
    router = Router(base_channels=8, stage_blocks=(1, 1), input_size=32).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    plain = router(x)
    router.register_to_config(temperature=2.5)
    assert torch.allclose(router(x), plain / 2.5)
    assert torch.equal(router(x) > 0, plain > 0)


def test_calibrate_writes_the_temperature_and_keeps_the_weights(shards, tmp_path, capsys):
    root = shards
    saved_router(tmp_path / "router", lambda net: net.weight.mul_(50.0))  # over-confident: large logits
    weights = sha256_of(tmp_path / "router" / "diffusion_pytorch_model.safetensors")
    assert main(["calibrate", str(tmp_path / "router"), "--data", str(root), "-n", "24"]) == 0
    out = capsys.readouterr().out
    temperature = json.loads((tmp_path / "router" / "config.json").read_text())["temperature"]
    assert temperature > 1.0 and f"temperature {temperature:.3f}" in out
    before, after = (float(v) for v in out.split("ECE ")[1].split(";")[0].split(" -> "))
    assert after <= before
    assert sha256_of(tmp_path / "router" / "diffusion_pytorch_model.safetensors") == weights
    assert Router.from_pretrained(tmp_path / "router").config.temperature == temperature


def test_calibrate_postprocess_fits_on_post_processed_faces(shards, tmp_path, capsys, monkeypatch):
    """``--postprocess``: the calibration faces go through that preset of the data engine (and the fit differs)."""
    import mofrr_core.data as data

    seen = []

    class Recording(data.RetouchPairs):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs.get("postprocess"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(data, "RetouchPairs", Recording)
    temperatures = []
    for extra in ([], ["--postprocess", "app-camera"]):
        saved_router(tmp_path / "router", lambda net: net.weight.mul_(3.0))
        assert main(["calibrate", str(tmp_path / "router"), "--data", str(shards), "-n", "24", *extra]) == 0
        temperatures.append(json.loads((tmp_path / "router" / "config.json").read_text())["temperature"])
    assert seen == [None, "app-camera"] and temperatures[0] != temperatures[1]
    capsys.readouterr()


def test_gate_offsets_move_one_gates_threshold():
    torch.manual_seed(0)
    router = Router(base_channels=8, stage_blocks=(1, 1), input_size=32).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    plain = router(x)
    router.register_to_config(temperature=2.0, gate_offsets={"face": -1.5})
    expected = plain / 2.0
    expected[:, router.types.index("face")] -= 1.5
    assert torch.allclose(router(x), expected)


def test_false_call_offsets_leave_exactly_the_allowed_share_flagged():
    rng = np.random.default_rng(0)
    labels = np.zeros((400, 2), dtype=bool)
    labels[:100, 0] = True  # 100 retouched with type a, 300 untouched
    logits = np.stack([rng.normal(-1.0, 1.0, 400), rng.normal(-4.0, 1.0, 400)], axis=1)  # gate a: ~16 % false
    offsets = false_call_offsets(logits, labels, ["a", "b"], 0.05)
    assert set(offsets) == {"a"} and offsets["a"] < 0  # gate b already flags < 5 %: never made more sensitive
    untouched = logits[100:, 0] + offsets["a"]
    assert (untouched > 0).sum() == 15  # floor(0.05 * 300)
    with pytest.raises(ValueError, match="--max-false-calls"):
        false_call_offsets(logits, labels, ["a", "b"], 1.5)


def test_false_call_budget_without_type_counts_faces_retouched_with_other_types():
    rng = np.random.default_rng(2)
    labels = np.zeros((400, 2), dtype=bool)
    labels[:100, 0] = True  # 100 of type a, 100 of type b only, 200 untouched
    labels[100:200, 1] = True
    logits = np.stack([np.concatenate([rng.normal(2.0, 1.0, 100), rng.normal(0.5, 1.0, 100),  # b trips gate a
                                       rng.normal(-4.0, 1.0, 200)]), rng.normal(-4.0, 1.0, 400)], axis=1)
    assert false_call_offsets(logits, labels, ["a", "b"], 0.05) == {}  # untouched faces alone: nothing to fix
    offsets = false_call_offsets(logits, labels, ["a", "b"], 0.05, on="without-type")
    assert set(offsets) == {"a"}
    assert (logits[100:, 0] + offsets["a"] > 0).sum() == 15  # floor(0.05 * 300 faces without type a)
    with pytest.raises(ValueError, match="--false-calls-on"):
        false_call_offsets(logits, labels, ["a", "b"], 0.05, on="others")


def test_any_call_budget_spends_the_false_calls_where_they_buy_detection():
    rng = np.random.default_rng(3)
    labels = np.zeros((600, 2), dtype=bool)
    labels[:100, 0] = True  # 100 of type a (easy to find), 100 of type b (hard), 400 untouched
    labels[100:200, 1] = True
    logits = np.stack([np.concatenate([rng.normal(3.0, 1.0, 100), rng.normal(-3.0, 1.0, 500)]),
                       np.concatenate([rng.normal(-3.0, 1.0, 100), rng.normal(-0.2, 1.0, 100),
                                       rng.normal(-1.2, 1.0, 400)])], axis=1)
    untouched = ~labels.any(axis=1)

    def union(offsets):
        return int((logits[untouched] + [offsets.get("a", 0.0), offsets.get("b", 0.0)] > 0).any(axis=1).sum())

    def recall(offsets):
        return sum(float((logits[labels[:, k], k] + offsets.get(t, 0.0) > 0).mean()) for k, t in enumerate("ab"))

    assert union({}) > 40  # gate b flags ~12 % of the untouched faces
    offsets = any_call_offsets(logits, labels, ["a", "b"], 0.05)
    assert union(offsets) <= 20 and all(v < 0 for v in offsets.values())  # floor(0.05 * 400), only stricter
    uniform = next(o for r in np.arange(0.05, 0, -0.0025) if union(o := false_call_offsets(logits, labels,
                                                                                          ["a", "b"], r)) <= 20)
    assert recall(offsets) >= recall(uniform)  # the same budget spent per gate alike finds no more
    assert any_call_offsets(logits, labels, ["a", "b"], 0.5) == {}  # already within budget: nothing moves
    with pytest.raises(ValueError, match="--max-any-calls"):
        any_call_offsets(logits, labels, ["a", "b"], 1.0)


def test_calibrate_with_a_false_call_budget_writes_offsets(shards, tmp_path, capsys):
    root = shards
    saved_router(tmp_path / "router", lambda net: net.bias.fill_(5.0))  # trigger-happy: every gate fires
    assert main(["calibrate", str(tmp_path / "router"), "--data", str(root), "-n", "40", "--max-false-calls",
                 "0.1", "--realign", "photo"]) == 0
    out = capsys.readouterr().out
    config = json.loads((tmp_path / "router" / "config.json").read_text())
    types = Router.from_pretrained(tmp_path / "router").types
    assert set(config["gate_offsets"]) == set(types) and "false calls on" in out
    untouched_calls = [float(v.split(" ")[1].rstrip("%"))
                       for v in out.split("untouched: ")[1].split(";")[0].split(", ")]
    assert max(untouched_calls) <= 10.0


def test_calibrate_with_an_any_call_budget(shards, tmp_path, capsys):
    saved_router(tmp_path / "router", lambda net: net.bias.fill_(5.0))  # trigger-happy: every gate fires
    assert main(["calibrate", str(tmp_path / "router"), "--data", str(shards), "-n", "40", "--max-any-calls",
                 "0.1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert float(out.split("(any call ")[1].split("%")[0]) <= 10.0
    assert json.loads((tmp_path / "router" / "config.json").read_text()).get("gate_offsets") is None  # dry run


def test_false_call_budget_holds_in_every_group():
    rng = np.random.default_rng(1)
    labels = np.zeros((400, 1), dtype=bool)  # all untouched: 300 of group "a", 100 of group "b"
    group = np.array(["a"] * 300 + ["b"] * 100)
    logits = np.concatenate([rng.normal(-4.0, 1.0, 300), rng.normal(-0.5, 1.0, 100)])[:, None]  # b: ~30 % flagged
    overall = false_call_offsets(logits, labels, ["t"], 0.1)
    by_group = false_call_offsets(logits, labels, ["t"], 0.1, [group])
    rate_b = lambda offsets: float((logits[group == "b", 0] + offsets.get("t", 0.0) > 0).mean())  # noqa: E731
    assert rate_b(overall) > 0.2  # the overall budget is met on the backs of group b
    assert rate_b(by_group) == 0.1 and by_group["t"] < overall.get("t", 0.0)  # floor(0.1 * 100) of b stay flagged


def test_calibrate_group_by_reports_the_worst_group(shards, tmp_path, capsys):
    root = shards
    saved_router(tmp_path / "router", lambda net: net.bias.fill_(5.0))
    assert main(["calibrate", str(tmp_path / "router"), "--data", str(root), "-n", "40", "--max-false-calls",
                 "0.1", "--group-by", "race", "gender", "--dry-run"]) == 0
    worst = capsys.readouterr().out.split("in the worst group: ")[1]
    assert [float(v.split(" ")[1].rstrip("%,\n")) for v in worst.split(", ")] == [0.0] * 4  # groups of 1-3 faces
    assert main(["calibrate", str(tmp_path / "router"), "--data", str(root), "--group-by", "race"]) == 1
    assert "--group-by and --false-calls-on go with --max-false-calls" in capsys.readouterr().err


def test_calibrate_view_writes_offsets_for_that_view_alone(shards, tmp_path, capsys):
    """``--view resized``: offsets fitted on the untouched faces the realignment resampled, written under
    ``view_gate_offsets``; the temperature, ``gate_offsets`` and the faces read natively stay as they were."""
    folder = saved_router(tmp_path / "router", lambda net: net.bias.fill_(5.0))  # trigger-happy: every gate fires
    before = json.loads((folder / "config.json").read_text())
    assert main(["calibrate", str(folder), "--data", str(shards), "-n", "96", "--realign", "photo-native",
                 "--view", "resized", "--max-false-calls", "0.1"]) == 0
    out = capsys.readouterr().out
    config = json.loads((folder / "config.json").read_text())
    assert (config["temperature"], config.get("gate_offsets")) == (before["temperature"], before.get("gate_offsets"))
    offsets = config["view_gate_offsets"]["resized"]
    router = Router.from_pretrained(folder)
    assert set(config["view_gate_offsets"]) == {"resized"} and set(offsets) == set(router.types)
    assert all(v < 0 for v in offsets.values())
    calls = out.split("false calls ")[1].split(" (any")[0].split(", ")
    assert all(float(c.split(" -> ")[0].split(" ")[1].rstrip("%")) > 10.0 for c in calls)  # every gate fired
    assert all(float(c.split(" -> ")[1].rstrip("%")) <= 10.0 for c in calls)
    assert torch.equal(router.logit_offsets(), torch.zeros(4)) and torch.equal(router.logit_offsets("native"),
                                                                                torch.zeros(4))
    assert torch.equal(router.logit_offsets("resized"), torch.tensor([offsets[t] for t in router.types]))
    # calibrating the router again replaces the offsets the view's were fitted on top of: those go too, said so
    assert main(["calibrate", str(folder), "--data", str(shards), "-n", "24"]) == 0
    assert "view offsets and rescalings fitted on top of the old ones are cleared" in capsys.readouterr().out
    assert json.loads((folder / "config.json").read_text())["view_gate_offsets"] is None


def test_calibrate_view_gates_fits_those_gates_alone(shards, tmp_path, capsys):
    """``--gates face``: only the face gate's offset is fitted; the other gates, firing as often as before, neither
    move nor count against the budget."""
    folder = saved_router(tmp_path / "router", lambda net: net.bias.fill_(5.0))  # trigger-happy: every gate fires
    assert main(["calibrate", str(folder), "--data", str(shards), "-n", "96", "--realign", "photo-native",
                 "--view", "native", "--gates", "face", "--max-false-calls", "0.1", "--max-any-calls", "0.1"]) == 0
    out = capsys.readouterr().out
    assert set(json.loads((folder / "config.json").read_text())["view_gate_offsets"]["native"]) == {"face"}
    calls = dict(c.split(" ", 1) for c in out.split("false calls ")[1].split(" (any")[0].split(", "))
    assert float(calls["face"].split(" -> ")[1].rstrip("%")) <= 10.0
    assert all(before == after for t, c in calls.items() if t != "face" for before, after in [c.split(" -> ")])
    with pytest.raises(ValueError, match="--gates: the router has no gate nose"):
        calibrate_view(folder, shards, "native", n=8, gates=["nose"], max_false_calls=0.1)


def test_calibrate_view_needs_faces_read_natively(shards, tmp_path):
    folder = saved_router(tmp_path / "router", lambda net: None)
    with pytest.raises(ValueError, match="photo-native"):
        calibrate_view(folder, shards, "resized", n=8, realign="photo-upright", max_false_calls=0.1)
    with pytest.raises(ValueError, match="native or resized"):
        calibrate_view(folder, shards, "sideways", n=8, max_false_calls=0.1)


def test_calibrate_view_native_grid_fits_smaller_faces_of_jpeg_photos(shards, tmp_path, capsys):
    """``--view native-grid``: fitted on the faces of photos reframed and saved as JPEG before the retouching that
    ``grid_native`` reads from their own pixels (``--realign photo-native-grid --reframe portrait-jpeg``), the face
    and eye gates' budgets held on every face without their type (``--false-calls-on without-type``), written
    under that view; without the JPEG no face is read so, and the calibration says which view it missed."""
    folder = saved_router(tmp_path / "router", lambda net: net.bias.fill_(5.0))  # trigger-happy: every gate fires
    assert main(["calibrate", str(folder), "--data", str(shards), "-n", "48", "--realign", "photo-native-grid",
                 "--reframe", "portrait-jpeg", "--view", "native-grid", "--gates", "face", "eye",
                 "--false-calls-on", "without-type", "--max-false-calls", "0.1", "--recalibrate", "face", "eye"]) == 0
    out = capsys.readouterr().out
    assert "view native-grid (" in out and "printed probabilities: face scale" in out
    fitted = json.loads((folder / "config.json").read_text())["view_calibration"]
    assert set(fitted) == {"native-grid"} and set(fitted["native-grid"]) == {"face", "eye"}
    assert all(0.05 <= scale <= 20.0 for scale, _ in fitted["native-grid"].values())
    ece = {t: [float(v) for v in part.split("(ECE ")[1].split(")")[0].split(" -> ")]
           for t, part in zip(("face", "eye"), out.split("printed probabilities: ")[1].split("), "))}
    assert all(after <= before + 1e-9 for before, after in ece.values())  # the fit's own faces: never worse
    with pytest.raises(ValueError, match="--false-calls-on"):
        calibrate_view(folder, shards, "native-grid", n=8, false_calls_on="everyone", max_false_calls=0.1)
    assert set(json.loads((folder / "config.json").read_text())["view_gate_offsets"]["native-grid"]) == {"face", "eye"}
    with pytest.raises(ValueError, match="--view native-grid: none of the 8 pairs is read in that view"):
        calibrate_view(folder, shards, "native-grid", n=8, realign="photo-native-grid", reframe="portrait",
                       max_false_calls=0.1)
    # the router's own calibration again (a new temperature): the view's rescaling goes with its offsets
    update_config(folder, view_calibration=fitted)
    calibrate_router(folder, shards, n=24)
    assert json.loads((folder / "config.json").read_text())["view_calibration"] is None
    update_config(folder, view_calibration=fitted)
    # fitted again without --recalibrate: the view's printed probabilities go back to the temperature alone
    calibrate_view(folder, shards, "native-grid", n=48, realign="photo-native-grid", reframe="portrait-jpeg",
                   gates=["face", "eye"], max_false_calls=0.1)
    assert json.loads((folder / "config.json").read_text())["view_calibration"] is None
    with pytest.raises(ValueError, match="--recalibrate: the router has no gate nose"):
        calibrate_view(folder, shards, "native-grid", n=8, recalibrate=["nose"], max_false_calls=0.1)
    assert main(["calibrate", str(folder), "--data", str(shards), "--recalibrate", "face"]) == 1
    assert "error: --gates, --reframe and --recalibrate go with --view" in capsys.readouterr().err
