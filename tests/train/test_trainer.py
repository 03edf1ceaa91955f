"""Training loop: every stage trains 2 tiny steps into a loadable checkpoint; resume is bit-identical."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mofrr_core.train.config import make_config
from mofrr_core.train.ema import EMA
from mofrr_core.train.run_folder import OutputDirError
from mofrr_core.train.stages import make_stage
from mofrr_core.train.synthetic import SyntheticPairs
from mofrr_core.train.trainer import EpochSampler, Trainer

EXPECTED_CLASS = {"router": "Router", "degree": "DegreeEstimator", "expert": "WaveFRR", "shared": "SharedExpert",
                  "gate": "GateHead", "combine": "CombineModule", "baseline": "UNetBaseline"}


def tiny(output_dir: Path, **overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_config("tiny", output_dir=str(output_dir), **overrides)


def train(config, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Trainer(config, **{"command": "pytest", **kwargs}).train()


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(next(folder.glob("*.safetensors")))


@pytest.mark.parametrize("stage,expert", [("router", None), ("degree", "eye"), ("expert", "eye"),
                                          ("shared", None), ("gate", "eye"), ("combine", None),
                                          ("baseline", None)])
def test_two_steps_per_stage_write_loadable_weights(tmp_path, stage, expert):
    from mofrr_core.plugins import resolve_model_type

    result = train(tiny(tmp_path / stage, stage=stage, expert=expert))
    assert result.step == 2
    config = json.loads((result.final_dir / "config.json").read_text())
    assert config["_class_name"] == EXPECTED_CLASS[stage]
    model = resolve_model_type(config["_class_name"]).from_pretrained(result.final_dir)
    loaded = model.state_dict()
    saved = weights(result.final_dir)
    assert set(saved) == set(loaded) and all(torch.equal(saved[k], loaded[k]) for k in saved)

    records = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train_records] == [1, 2]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in train_records)
    val = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in val] == [1, 2]
    if stage in ("expert", "shared", "combine", "baseline"):
        assert {"val_psnr", "val_ssim", "val_psnr_input", "val_ssim_input"} <= set(val[-1])
        assert 0 < val[-1]["val_ssim"] <= 1
    else:
        assert 0 <= val[-1]["val_accuracy"] <= 1 and 0 <= val[-1]["val_f1"] <= 1
    for name in ("metrics.csv", "curves.png", "run.json", "training.json"):
        assert (result.output_dir / name).stat().st_size > 0
    assert (result.output_dir / "best" / "config.json").is_file()
    assert [p.name for p in sorted((result.output_dir / "checkpoints").iterdir())] == ["checkpoint-1",
                                                                                     "checkpoint-2"]


def test_training_changes_weights_and_ema_lags(tmp_path):
    result = train(tiny(tmp_path / "run", stage="shared", max_steps=3, val_every=10))
    init = make_stage(tiny(tmp_path / "x", stage="shared"))
    ema = weights(result.final_dir)
    raw = weights(result.output_dir / "checkpoints" / "checkpoint-3")  # the accelerate-saved (raw) model
    raw = {k.removeprefix("net."): v for k, v in raw.items()}
    out_conv = "unet.conv_out.weight"
    assert init.build_model().state_dict()[out_conv].abs().max() == 0  # zero-initialised: identity at init
    assert raw[out_conv].abs().max() > 0 and ema[out_conv].abs().max() > 0
    assert not torch.equal(raw[out_conv], ema[out_conv])  # EMA weights are not the raw weights


def test_resume_after_step_one_is_bit_identical(tmp_path):
    common = {"stage": "expert", "expert": "eye", "max_steps": 3, "val_every": 100,
              "data": {"type": "SyntheticPairs", "length": 4}}  # 2 batches/epoch: resume crosses an epoch
    straight = train(tiny(tmp_path / "a", **common))
    train(tiny(tmp_path / "b", **{**common, "max_steps": 1}))
    resumed = train(tiny(tmp_path / "b", **common, resume="latest"))
    assert resumed.step == straight.step == 3
    a, b = weights(straight.final_dir), weights(resumed.final_dir)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    raw_a = weights(straight.output_dir / "checkpoints" / "checkpoint-3")
    raw_b = weights(resumed.output_dir / "checkpoints" / "checkpoint-3")
    assert all(torch.equal(raw_a[k], raw_b[k]) for k in raw_a)
    losses = [[r["loss"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
               if r["kind"] == "train"] for d in (straight.output_dir, resumed.output_dir)]
    assert losses[0] == losses[1] and len(losses[0]) == 3
    record = json.loads((resumed.output_dir / "run.json").read_text())  # how the run was continued
    assert [(r["step"], r["max_steps"]) for r in record["resumed"]] == [(1, 3)]
    assert json.loads((resumed.output_dir / "training.json").read_text())["resumed"] == record["resumed"]


def test_resume_from_another_runs_checkpoint_keeps_its_record(tmp_path):
    common = {"stage": "expert", "expert": "eye", "max_steps": 1, "val_every": 100,
              "data": {"type": "SyntheticPairs", "length": 4}}
    first = train(tiny(tmp_path / "a", **common), command="mofrr-train --first")
    checkpoint = first.output_dir / "checkpoints" / "checkpoint-1"
    longer = train(tiny(tmp_path / "b", **{**common, "max_steps": 2}, resume=str(checkpoint)),
                   command="mofrr-train --longer")
    assert longer.step == 2
    record = json.loads((longer.output_dir / "run.json").read_text())
    assert record["command"] == "mofrr-train --first"  # the chain starts with the run the checkpoint came from
    assert [(r["command"], r["step"], r["checkpoint"]) for r in record["resumed"]] == [
        ("mofrr-train --longer", 1, str(checkpoint))]
    assert json.loads((longer.output_dir / "training.json").read_text())["resumed"] == record["resumed"]


def test_refuses_a_non_empty_output_dir(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("someone else's")
    with pytest.raises(OutputDirError, match="not empty"):
        train(tiny(out, stage="degree", expert="eye"))
    result = train(tiny(out, stage="degree", expert="eye", max_steps=1, overwrite=True))
    assert result.step == 1 and (out / "notes.txt").is_file()  # only run outputs are replaced
    with pytest.raises(OutputDirError, match="cannot resume it as stage"):
        train(tiny(out, stage="router", resume="latest"))


def test_astronaut_pairs_and_gradient_accumulation(tmp_path, astronaut_face):
    data = SyntheticPairs(types=["white"], num_ops=(1, 1), resolution=32, length=4, images=[astronaut_face])
    sample = data[0]
    assert sample["retouched"].shape == (3, 32, 32) and sample["labels"].tolist() == [1.0]
    assert 1 <= int(sample["degrees"][0]) <= 5
    assert (sample["retouched"] - sample["original"]).abs().mean() > 0.01  # whitening changed the face
    result = train(tiny(tmp_path / "acc", stage="expert", expert="white", gradient_accumulation_steps=2,
                        max_steps=1), train_dataset=data, val_dataset=data)
    records = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    assert result.step == 1 and [r["step"] for r in records if r["kind"] == "train"] == [1]
    assert json.loads((result.output_dir / "training.json").read_text())["train_data"]["faces"] == 1


def test_ema_and_sampler():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.5, warmup=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    ema.update(model)
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 0.75))
    warm = EMA(model, decay=0.999)
    assert warm.current_decay() == pytest.approx(0.1)
    sampler = EpochSampler(10, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(10)) and list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_config_overrides_and_errors():
    config = make_config("tiny", lr=3e-4, batch_size=5, stage="router")
    assert config.lr == 3e-4 and config.batch_size == 5 and config.optimizer["type"] == "Adam"
    with pytest.raises(ValueError, match="--resolution"):
        make_config("tiny", resolution=30)
    with pytest.raises(ValueError, match="unknown training preset"):
        make_config("huge")
    with pytest.raises(ValueError, match="mixed-precision"):
        make_config("tiny", mixed_precision="fp8")


def test_a_preset_can_start_from_a_base_preset(tmp_path):
    from mofrr_core.train.config import load_train_preset

    child = tmp_path / "child.yaml"
    child.write_text("base: combine128\nmax_steps: 7\nmodel_overrides: {fusion: sum}\noptimizer: {lr: 1.0e-5}\n")
    base, ours = load_train_preset("combine128"), load_train_preset(child)
    assert ours["max_steps"] == 7 and base["max_steps"] != 7
    assert ours["model_overrides"] == {**base["model_overrides"], "fusion": "sum"}  # mappings merge key by key
    assert ours["optimizer"] == {**base["optimizer"], "lr": 1e-5} and "base" not in ours
    assert {k: v for k, v in ours.items() if k not in ("max_steps", "model_overrides", "optimizer")} == {
        k: v for k, v in base.items() if k not in ("max_steps", "model_overrides", "optimizer")}
    experiment = Path(__file__).resolve().parents[2] / "examples" / "experiments" / "combine128-sum-confidence.yaml"
    shipped = load_train_preset(experiment)  # a file outside the package whose base has a base itself
    assert shipped["model_overrides"] == {**base["model_overrides"], "fusion": "sum", "confidence_input": True}
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ValueError, match="cannot be its own base"):
        load_train_preset(loop)


def test_real_face_shards_train_the_eye_expert(shards, tmp_path):
    root = shards
    config = tiny(tmp_path / "real", stage="expert", expert="eye", data={"type": "RetouchPairs", "length": 4},
                  data_root=str(root), resolution=64, max_steps=1, val_samples=2, train_degree=True)
    data = make_stage(config).train_dataset()
    sample = data[0]
    assert type(data).__name__ == "RetouchPairs" and list(data.types) == ["eye"]
    assert sample["labels"].tolist() == [1.0] and 1 <= int(sample["degrees"][0]) <= 5
    assert (sample["retouched"] - sample["original"]).abs().max() > 0.05  # eyes were enlarged
    result = train(config)
    summary = json.loads((result.output_dir / "training.json").read_text())
    assert summary["data_root"] == str(root.resolve()) and summary["val_data"]["faces"] > 100
    assert 15 < result.val_metrics["psnr_input"] < 100 and math.isfinite(result.val_metrics["psnr"])


def test_gate_stage_leaves_the_router_untouched(tmp_path):
    from mofrr_core.models import GateHead, Router

    router_run = train(tiny(tmp_path / "router", stage="router"))
    before = weights(router_run.final_dir)
    gate_run = train(tiny(tmp_path / "gate", stage="gate", expert="eye", router_weights=str(router_run.final_dir)))
    assert all(torch.equal(before[k], v) for k, v in weights(router_run.final_dir).items())
    router = Router.from_pretrained(router_run.final_dir)
    old_logits = router(torch.zeros(1, 3, 32, 32))
    router.gates.pop("eye")  # a router without this type, as when a plugin expert joins
    router.add_gate("eye", GateHead.from_pretrained(gate_run.final_dir))
    new_logits = router(torch.zeros(1, 3, 32, 32))
    assert torch.equal(new_logits[:, :3], old_logits[:, :3])  # the other gates did not move


def test_gates_only_keeps_the_backbone_and_starts_the_gates_afresh(tmp_path):
    from mofrr_core.models import Router

    router_run = train(tiny(tmp_path / "router", stage="router"))
    with pytest.raises(ValueError, match="--gates-only needs --init-weights"):
        train(tiny(tmp_path / "none", stage="router", gates_only=True))
    heads = train(tiny(tmp_path / "heads", stage="router", gates_only=True, init_weights=str(router_run.final_dir)))
    before, after = Router.from_pretrained(router_run.final_dir), Router.from_pretrained(heads.final_dir)
    assert before.backbone_fingerprint() == after.backbone_fingerprint()
    trained = after.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in before.state_dict().items() if not k.startswith("gates"))
    assert not any(torch.equal(before.gates[t].net.weight, after.gates[t].net.weight) for t in before.types)


def test_stage_datasets_follow_the_paper():
    shared = make_stage(tiny("unused", stage="shared")).train_dataset()
    assert shared.ops is None and all(2 <= int(shared[i]["labels"].sum()) <= 4 for i in range(6))
    router = make_stage(tiny("unused", stage="router"))
    router.build_model()
    data = router.train_dataset()
    assert data.ops is None and data.num_ops == (0, 4) and data.types == ["white", "smooth", "face", "eye"]
    degree = make_stage(tiny("unused", stage="degree", expert="face")).train_dataset()
    assert degree.ops == ["face"] and all(int(degree[i]["degrees"][0]) >= 1 for i in range(4))


def test_foreign_images_teach_the_expert_to_leave_them_alone():
    stage = make_stage(tiny("unused", stage="expert", expert="eye", foreign=0.5, init_weights="unused",
                            harm_loss=0.2))
    assert stage.types[0] == "eye" and set(stage.types[1:]) == {"white", "smooth", "face"}
    data = stage.train_dataset()
    own = [bool(data[i]["labels"][0] > 0.5) for i in range(len(data))]
    assert 0.4 <= sum(own) / len(own) <= 0.6  # half own-type, half foreign or untouched
    assert all(int(data[i]["labels"].sum()) <= 1 for i in range(len(data)))
    batch = {k: torch.stack([data[i][k] for i in (own.index(True), own.index(False))])
             for k in ("retouched", "original", "labels", "degrees")}
    targets, harm = [], []

    class Spy(torch.nn.Module):
        def compute_loss(self, x, y, generator=None, degree=None, harm_weight=0.0, harm_only=None):
            targets.append(y)
            harm.append((harm_weight, harm_only))
            return y.sum(), {}

    stage.loss(Spy(), batch, torch.Generator())
    assert torch.equal(targets[0][0], batch["original"][0])  # own type: restore to the original
    assert torch.equal(targets[0][1], batch["retouched"][1])  # foreign: keep the input
    assert harm[0][0] == 0.2 and harm[0][1].tolist() == [True, False]  # the harm hinge on its own type only

    class Plain(torch.nn.Module):  # a plug-in network whose compute_loss has no harm arguments
        def compute_loss(self, x, y, generator=None, degree=None):
            return y.sum(), {}

    stage.config.harm_loss = 0.0  # not asked for: such a network still trains
    assert stage.loss(Plain(), batch, torch.Generator())[0] == targets[0].sum()
    values = {"psnr": torch.tensor([30.0, 40.0]), "psnr_input": torch.tensor([28.0, 41.0]),
              "ssim": torch.ones(2), "ssim_input": torch.ones(2), "own": torch.tensor([1.0, 0.0])}
    summary = stage.summarize(values)
    assert summary["psnr_gain_own"] == pytest.approx(2.0) and summary["psnr_gain_foreign"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="degree"):  # foreign images carry no degree label for L_class
        make_stage(tiny("unused", stage="expert", expert="eye", foreign=0.5, train_degree=True))


def test_num_ops_gives_foreign_images_several_operations_of_the_other_types():
    stage = make_stage(tiny("unused", stage="expert", expert="eye", foreign=0.5, init_weights="unused",
                            num_ops=(1, 3), p_clean=0.0))
    data = stage.train_dataset()
    counts = [int(data[i]["labels"].sum()) for i in range(len(data)) if data[i]["labels"][0] < 0.5]
    assert counts and max(counts) >= 2 and min(counts) >= 1  # several other ops, never the expert's own
    assert all(int(data[i]["labels"].sum()) == 1 for i in range(len(data)) if data[i]["labels"][0] > 0.5)


BRIGHT, DARK = torch.full((3, 32, 32), 0.8), torch.full((3, 32, 32), -0.8)


def bright_eye_router(folder: Path):
    """A tiny router saved to ``folder`` whose "eye" gate fires on ``BRIGHT`` images only; returns it."""
    from mofrr_core.train.stages import build_network

    router = build_network("Router", "tiny").eval()
    with torch.no_grad():
        f_bright, f_dark = router.features(torch.stack([BRIGHT, DARK]))
        gate = router.get_gate("eye").net
        gate.weight.copy_((f_bright - f_dark)[None])
        gate.bias.fill_(-float((f_bright - f_dark) @ (f_bright + f_dark)) / 2)
    router.save_pretrained(folder)
    return router


def test_hard_negatives_keep_the_foreign_images_the_router_sends_to_the_expert(tmp_path):
    stage = make_stage(tiny("unused", stage="expert", expert="eye", foreign=0.5, init_weights="unused"))
    data = [{"retouched": image, "key": key} for key, image in enumerate([BRIGHT, DARK, DARK, BRIGHT, DARK])]
    router = bright_eye_router(tmp_path / "router")
    gate = router.get_gate("eye").net
    hard = stage._router_positives(data, str(tmp_path / "router"))
    assert [item["key"] for item in hard] == [0, 3, 0, 3, 0]  # the bright ones, cycled to the same length
    with torch.no_grad():
        gate.bias.fill_(-1e6)
    router.save_pretrained(tmp_path / "none")
    with pytest.raises(ValueError, match="sends none of the 5"):
        stage._router_positives(data, str(tmp_path / "none"))
    with pytest.raises(ValueError, match="--hard-negatives picks among the foreign images"):
        tiny("unused", stage="expert", expert="eye", hard_negatives=str(tmp_path / "router"))


def test_routed_keeps_what_the_router_sends_the_expert_own_and_foreign(tmp_path, monkeypatch):
    from mofrr_core.train.stages import base as stage_base

    bright_eye_router(tmp_path / "router")

    def fake_dataset(config, split, types, ops=None, length=None, cache=None, seed=0, **kwargs):
        own = ops is not None  # own-type data names its op; foreign data draws among the other types
        n = length or (2 * cache if cache else 24)
        labels = torch.tensor([1.0, 0, 0, 0]) if own else torch.zeros(4)
        return [{"retouched": BRIGHT if i % 3 == 0 else DARK, "original": DARK, "labels": labels,
                 "degrees": labels * 3, "key": f"{'own' if own else 'foreign'}-{i}"} for i in range(n)]

    monkeypatch.setattr(stage_base, "build_dataset", fake_dataset)
    stage = make_stage(tiny("unused", stage="expert", expert="eye", foreign=0.5, init_weights="unused",
                            routed=str(tmp_path / "router"), val_samples=12))
    val = stage.val_dataset()
    keys = [val[i]["key"] for i in range(len(val))]
    # validation: each routed image once; own: the 4 bright of 12; foreign: as many, from a pool of 8x
    assert keys == ["own-0", "own-3", "own-6", "own-9", "foreign-0", "foreign-3", "foreign-6", "foreign-9"]
    train_keys = [item["key"] for item in stage.train_dataset()]
    assert set(train_keys) <= {f"{kind}-{i}" for kind in ("own", "foreign") for i in range(0, 10_000, 3)}
    with pytest.raises(ValueError, match="drop --hard-negatives"):
        tiny("unused", stage="expert", expert="eye", foreign=0.5, routed="r", hard_negatives="r")
    with pytest.raises(ValueError, match="--routed is an option of the expert stage"):
        tiny("unused", stage="shared", routed="r")


def test_init_weights_fine_tunes_from_a_trained_network(tmp_path):
    first = train(tiny(tmp_path / "a", stage="shared", max_steps=2))
    second = train(tiny(tmp_path / "b", stage="shared", max_steps=1, init_weights=str(first.final_dir),
                        optimizer={"type": "SGD", "lr": 0.0}))  # lr 0: the weights stay those loaded
    a, b = weights(first.final_dir), weights(second.final_dir)
    assert all(torch.allclose(a[k], b[k]) for k in a)
    router = train(tiny(tmp_path / "r", stage="router", max_steps=1))
    with pytest.raises(ValueError, match="init-weights"):
        train(tiny(tmp_path / "c", stage="shared", max_steps=1, init_weights=str(router.final_dir)))


def test_degree_weights_win_over_the_estimator_of_init_weights(tmp_path):
    degree = train(tiny(tmp_path / "d", stage="degree", expert="eye", max_steps=1))
    expert = train(tiny(tmp_path / "e", stage="expert", expert="eye", max_steps=1))
    tuned = train(tiny(tmp_path / "f", stage="expert", expert="eye", max_steps=1, init_weights=str(expert.final_dir),
                       degree_weights=str(degree.final_dir), optimizer={"type": "SGD", "lr": 0.0}))
    d, e, f = weights(degree.final_dir), weights(expert.final_dir), weights(tuned.final_dir)
    ours = {k.removeprefix("degree_estimator."): v for k, v in f.items() if k.startswith("degree_estimator.")}
    assert set(ours) == set(d) and all(torch.equal(ours[k], d[k]) for k in d)  # the estimator asked for
    assert any(not torch.equal(ours[k], e["degree_estimator." + k]) for k in d)  # not the one init came with
    rest = [k for k in f if not k.startswith("degree_estimator.")]
    assert rest and all(torch.allclose(f[k], e[k]) for k in rest)  # everything else from --init-weights


def test_an_expert_fine_tuned_with_warp_keeps_its_weights_and_gains_a_zero_field(tmp_path):
    expert = train(tiny(tmp_path / "e", stage="expert", expert="eye", max_steps=1))
    tuned = train(tiny(tmp_path / "w", stage="expert", expert="eye", max_steps=1, init_weights=str(expert.final_dir),
                       model_overrides={"warp": True, "warp_channels": [8, 8]},
                       optimizer={"type": "SGD", "lr": 0.0}))
    e, w = weights(expert.final_dir), weights(tuned.final_dir)
    field = [k for k in w if k.startswith("flow_warp.")]
    assert field and set(w) - set(field) == set(e)
    assert all(torch.allclose(w[k], e[k]) for k in e)
    assert all(not w[k].any() for k in field if k.startswith("flow_warp.net.conv_out."))  # zero field at init
    with pytest.raises(ValueError, match="trained with warp"):  # and no way back without the field
        train(tiny(tmp_path / "x", stage="expert", expert="eye", max_steps=1, init_weights=str(tuned.final_dir)))


def test_combine_cache_serves_mirrored_samples():
    from mofrr_core.train.stages import CachedCombinePairs

    g = torch.Generator().manual_seed(0)
    tensors = {"retouched": torch.randn(3, 3, 8, 8, generator=g), "original": torch.randn(3, 3, 8, 8, generator=g),
               "shared": torch.randn(3, 3, 8, 8, generator=g).half(),
               "experts": torch.randn(3, 2, 3, 8, 8, generator=g).half(), "mask": torch.tensor([[1, 0]] * 3).bool(),
               "confidence": torch.tensor([[0.9, 0.2]] * 3)}
    data = CachedCombinePairs(tensors, mirror=True)
    assert len(data) == 6 and len(CachedCombinePairs(tensors)) == 3
    a, b = data[1], data[4]
    for key in ("retouched", "original", "shared", "experts"):
        assert torch.equal(b[key], a[key].flip(-1))
    assert torch.equal(a["mask"], b["mask"]) and torch.equal(b["confidence"], a["confidence"])
    assert b["experts"].dtype == torch.float32


def test_a_combine_fine_tuned_to_read_the_confidence_starts_from_the_trained_one(tmp_path):
    plain = train(tiny(tmp_path / "p", stage="combine", max_steps=1))
    cache = torch.load(plain.output_dir / "cache" / "combine-train.pt", weights_only=True)
    assert cache["confidence"].shape == cache["mask"].shape  # the router probability of every expert's gate
    assert torch.equal(cache["mask"], cache["confidence"] > 0.5) and cache["confidence"].unique().numel() > 2
    wide = train(tiny(tmp_path / "w", stage="combine", max_steps=1, init_weights=str(plain.final_dir),
                      model_overrides={"confidence_input": True}, optimizer={"type": "SGD", "lr": 0.0},
                      combine_cache_from=str(plain.output_dir)))
    a, b = weights(plain.final_dir), weights(wide.final_dir)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a if k != "encoder.0.weight")
    assert torch.equal(b["encoder.0.weight"][:, :-1], a["encoder.0.weight"])
    assert not b["encoder.0.weight"][:, -1].any()  # the confidence channel starts at zero
    summed = train(tiny(tmp_path / "s", stage="combine", max_steps=1, init_weights=str(wide.final_dir),
                        model_overrides={"confidence_input": True, "fusion": "sum"},
                        optimizer={"type": "SGD", "lr": 0.0}, combine_cache_from=str(plain.output_dir)))
    c = weights(summed.final_dir)
    assert all(torch.equal(b[k], c[k]) for k in b)  # the fusion changes no weight
    with pytest.raises(ValueError, match="cannot drop the confidence input"):
        train(tiny(tmp_path / "n", stage="combine", max_steps=1, init_weights=str(wide.final_dir),
                   combine_cache_from=str(plain.output_dir)))
    with pytest.raises(ValueError, match="differs from the network being trained in hidden_channels"):
        train(tiny(tmp_path / "h", stage="combine", max_steps=1, init_weights=str(plain.final_dir),
                   model_overrides={"hidden_channels": 3}, combine_cache_from=str(plain.output_dir)))


def test_combine_cache_is_not_the_router_training_data_and_can_be_borrowed(tmp_path):
    result = train(tiny(tmp_path / "c", stage="combine", max_steps=1))
    borrowed = train(tiny(tmp_path / "b", stage="combine", max_steps=1, psnr_loss=0.1, harm_loss=0.3,
                          combine_cache_from=str(result.output_dir)))
    assert borrowed.step == 1 and not (borrowed.output_dir / "cache").exists()
    with pytest.raises(ValueError, match="seed: 0 there, 5 here"):
        train(tiny(tmp_path / "s", stage="combine", max_steps=1, seed=5, combine_cache_from=str(result.output_dir)))
    with pytest.raises(FileNotFoundError, match="not a combine run with a cache"):
        train(tiny(tmp_path / "n", stage="combine", max_steps=1, combine_cache_from=str(tmp_path / "b")))
    cached = torch.load(result.output_dir / "cache" / "combine-train.pt", weights_only=True)["retouched"].float()
    router = make_stage(tiny(tmp_path / "r", stage="router"))
    router.build_model()
    data = router.train_dataset()
    seen = torch.stack([data[i]["retouched"] for i in range(len(data))])
    distance = (cached[:, None] - seen[None]).abs().flatten(2).amax(-1)  # every cached pair vs every router pair
    assert distance.min() > 1e-2  # the combine trains on pairs the router never saw


def test_every_packaged_preset_loads_and_the_shipped_weights_trace_to_one():
    from mofrr_core.train.config import TRAIN_CONFIG_DIR, TRAIN_PRESETS, make_config

    assert set(TRAIN_PRESETS) == {p.stem for p in TRAIN_CONFIG_DIR.glob("*.yaml")} >= {"tiny", "cpu", "paper"}
    for name in TRAIN_PRESETS:
        assert make_config(name).preset == name
    root = Path(__file__).resolve().parents[2]
    for path in (root / "examples" / "experiments").glob("*.yaml"):
        assert make_config(path).preset == str(path)

    def presets(record):  # every "preset" a run record names, in the run and the runs it started from
        if isinstance(record, dict):
            yield from ([record["preset"]] if isinstance(record.get("preset"), str) else [])
            for value in record.values():
                yield from presets(value)
        elif isinstance(record, list):
            for value in record:
                yield from presets(value)

    records = [*(root / "mofrr_core" / "weights").glob("*/training.json"),
               *(root / "experts").glob("*/mofrr_expert_*/weights/training.json")]
    assert len(records) >= 8
    named = {Path(p).stem for r in records for p in presets(json.loads(r.read_text()))}
    assert named and named <= set(TRAIN_PRESETS), named - set(TRAIN_PRESETS)


def test_the_registry_is_the_one_source_of_the_ddim_steps(tmp_path):
    from mofrr_core.registry import load_registry
    from mofrr_core.train.stages.base import registry_steps, validation_steps

    root = Path(__file__).resolve().parents[2]
    steps = load_registry(root / "registry.yaml", experts=[]).num_inference_steps
    assert steps == load_registry(None, experts=[]).num_inference_steps  # the packaged copy agrees
    shipped = [*(root / "experts").glob("*/mofrr_expert_*/weights/config.json"),
               *(root / "plugins").glob("*/mofrr_expert_*/weights/config.json")]
    assert len(shipped) >= 6
    for config_file in shipped:  # every diffusion expert's own default is the pipeline's
        assert json.loads(config_file.read_text())["num_inference_steps"] == steps, config_file
    registry = tmp_path / "registry.yaml"
    registry.write_text((root / "registry.yaml").read_text().replace(f"num_inference_steps: {steps} ",
                                                                    f"num_inference_steps: {steps + 3} "))
    config = tiny(tmp_path / "run", stage="expert", expert="eye", registry=str(registry)).replace(
        val_inference_steps=None)
    assert registry_steps(config) == validation_steps(config) == steps + 3
    assert validation_steps(config.replace(val_inference_steps=1)) == 1
    stage = make_stage(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no --degree-weights
        net = stage.build_model()
    assert net.config.num_inference_steps == steps + 3  # what it trains, it is saved with
    called = []
    original = net.restore
    net.restore = lambda x, num_inference_steps=None, generator=None: (called.append(num_inference_steps)
                                                                       or original(x, num_inference_steps, generator))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    stage.evaluate(net, {"retouched": x, "original": x, "labels": torch.ones(1, 1)}, torch.Generator().manual_seed(0))
    assert called == [steps + 3]  # validation runs the pipeline's steps
