"""``mofrr-train`` CLI: listing, plugin experts by name, refusing a used folder, export with provenance."""

from __future__ import annotations

import json
import warnings

import pytest

from mofrr_core.plugins import get_experts
from mofrr_core.registry import sha256_of
from mofrr_core.train.cli import main, plan_all
from mofrr_core.train.config import make_config
from mofrr_core.train.stages import make_stage


@pytest.fixture
def nose():
    if "nose" not in get_experts():
        pytest.skip("fixture plugin not installed: pip install -e tests/fixtures/mofrr-plugin-fixture")
    return get_experts()["nose"]


def run(argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(argv)


def test_no_arguments_lists_trainable_experts(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name, spec in get_experts().items():
        assert name in out and spec.distribution in out
    assert "mofrr-train --expert NAME" in out


def test_plugin_expert_trains_by_name(tmp_path, nose, capsys):
    out = tmp_path / "nose"
    assert run(["--preset", "tiny", "--expert", "nose", "--output-dir", str(out)]) == 0
    # no trained degree estimator yet: the degree stage ran first, then the expert on top of it
    from mofrr_core.models import DegreeEstimator, WaveFRR

    degree = DegreeEstimator.from_pretrained(out / "degree" / "final")
    expert = WaveFRR.from_pretrained(out / "final")
    for name, value in degree.state_dict().items():  # the expert carries the trained (frozen) DE
        assert (expert.degree_estimator.state_dict()[name] == value).all()
    run_info = json.loads((out / "run.json").read_text())
    assert (run_info["stage"], run_info["expert"]) == ("expert", "nose")
    stage = make_stage(make_config("tiny", stage="expert", expert="nose", output_dir=str(out)))
    data = stage.train_dataset()
    assert data.ops == ["nose"] and data.types == ["nose"]  # the plugin's own retouch type
    assert all(data[i]["labels"].tolist() == [1.0] for i in range(3))


def test_refuses_a_used_output_dir(tmp_path, capsys):
    out = tmp_path / "used"
    out.mkdir()
    (out / "something.txt").write_text("x")
    assert run(["--preset", "tiny", "--stage", "router", "--output-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and str(out) in err and "--overwrite" in err
    assert not (out / "final").exists()


def test_export_writes_weights_and_training_record(tmp_path, capsys):
    out, package = tmp_path / "run", tmp_path / "pkg" / "weights"
    argv = ["--preset", "tiny", "--stage", "expert", "--expert", "eye", "--train-degree", "--max-steps", "1",
            "--output-dir", str(out), "--export", str(package)]
    assert run(argv) == 0
    weights = package / "diffusion_pytorch_model.safetensors"
    assert weights.is_file() and (package / "config.json").is_file()
    record = json.loads((package / "training.json").read_text())
    assert record["command"] == "mofrr-train " + " ".join(argv)
    assert record["sha256"] == sha256_of(weights) == sha256_of(out / "final" / weights.name)
    assert record["steps"] == 1 and record["stage"] == "expert" and record["expert"] == "eye"
    assert "psnr_input" in record["final_val"]
    markdown = (package / "TRAINING.md").read_text()
    assert record["command"] in markdown and record["sha256"] in markdown
    capsys.readouterr()
    assert run(["export", str(out), str(package)]) == 1  # existing weights are not overwritten silently
    assert "--overwrite" in capsys.readouterr().err
    assert run(["export", str(out), str(package), "--overwrite"]) == 0
    assert run(["export", str(out), str(package), "--overwrite", "--which", "best"]) == 0
    record = json.loads((package / "training.json").read_text())
    assert record["exported_weights"] == "best"
    assert record["sha256"] == sha256_of(out / "best" / weights.name)
    assert record["best_val_metrics"] and "best step" in (package / "TRAINING.md").read_text()
    # fine-tune from the exported weights into the same folder: the new record keeps the old one
    tuned = tmp_path / "tuned"
    assert run(["--preset", "tiny", "--stage", "expert", "--expert", "eye", "--foreign", "0.5", "--init-weights",
                str(package), "--max-steps", "1", "--output-dir", str(tuned)]) == 0
    assert run(["export", str(tuned), str(package), "--overwrite"]) == 0
    chained = json.loads((package / "training.json").read_text())
    assert chained["started_from"]["sha256"] == record["sha256"] and chained["config"]["foreign"] == 0.5
    markdown = (package / "TRAINING.md").read_text()
    assert "Fine-tuned from" in markdown and record["command"] in markdown and chained["command"] in markdown
    # fine-tune from that run's own best/ folder (never exported): the chain goes through the run's summary
    again = tmp_path / "again"
    assert run(["--preset", "tiny", "--stage", "expert", "--expert", "eye", "--foreign", "0.5", "--init-weights",
                str(tuned / "best"), "--max-steps", "1", "--output-dir", str(again)]) == 0
    assert run(["export", str(again), str(package), "--overwrite"]) == 0
    third = json.loads((package / "training.json").read_text())
    assert third["started_from"]["exported_weights"] == "best"
    assert third["started_from"]["sha256"] == sha256_of(tuned / "best" / weights.name)
    assert third["started_from"]["started_from"]["sha256"] == record["sha256"]  # and on to the first record


def test_export_to_an_installed_package_warns_that_the_checkout_is_unchanged(tmp_path, monkeypatch):
    from mofrr_core.train import export

    out = tmp_path / "run"
    assert run(["--preset", "tiny", "--stage", "expert", "--expert", "eye", "--max-steps", "1",
                "--output-dir", str(out)]) == 0
    installed = tmp_path / "lib" / "site-packages" / "mofrr_expert_eye" / "weights"
    monkeypatch.setattr(export, "package_folder", lambda summary: installed)
    with pytest.warns(UserWarning, match="installed copy") as caught:  # the CLI prints it as "warning: ..."
        assert run(["export", str(out), "package"]) == 0
    assert str(installed) in str(caught[0].message) and "pip install -e" in str(caught[0].message)
    assert (installed / "config.json").is_file()  # it still exports, where it was asked to
    source = tmp_path / "src" / "mofrr_expert_eye" / "weights"
    monkeypatch.setattr(export, "package_folder", lambda summary: source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run(["export", str(out), "package"]) == 0
    assert not [w for w in caught if "installed copy" in str(w.message)]


def test_stage_all_plan_wires_the_stages(tmp_path):
    runs = plan_all(make_config("tiny"), str(tmp_path))
    stages = [(c.stage, c.expert) for c, _ in runs]
    assert stages[0] == ("router", None) and stages[-1] == ("combine", None)
    assert stages.index(("degree", "eye")) < stages.index(("expert", "eye")) < stages.index(("shared", "shared"))
    expert_eye = next(c for c, _ in runs if (c.stage, c.expert) == ("expert", "eye"))
    assert expert_eye.degree_weights == str(tmp_path / "degree-eye" / "final")
    combine = runs[-1][0]
    assert combine.router_weights == str(tmp_path / "router" / "final")
    assert combine.expert_weights["eye"] == str(tmp_path / "expert-eye" / "final")
    assert combine.shared_weights == str(tmp_path / "shared" / "final")


def test_cache_and_fine_tuning_flags_reach_the_config():
    from mofrr_core.train.cli import build_parser, config_from_args

    args = build_parser().parse_args(["--expert", "eye", "--preset", "cpu128", "--cache", "64", "--foreign", "0.25",
                                      "--init-weights", "some/weights", "--exclude-apis", "white=lab", "smooth=guided"])
    config = config_from_args(args)
    assert config.data["exclude_apis"] == {"white": ["lab"], "smooth": ["guided"]}
    assert config.data["cache"] == 64 and config.foreign == 0.25 and config.init_weights == "some/weights"
    assert config_from_args(build_parser().parse_args(["--preset", "cpu128", "--cache", "0"])).data["cache"] is None
    shared = make_stage(config_from_args(build_parser().parse_args(["--stage", "shared", "--preset", "tiny",
                                                                     "--num-ops", "0-4"])))
    assert shared.num_ops == (0, 4) and shared.val_dataset().num_ops == (1, 4)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--num-ops", "two"])
    with pytest.raises(ValueError, match="--foreign"):
        config_from_args(build_parser().parse_args(["--expert", "eye", "--foreign", "1.5"]))
    combine = config_from_args(build_parser().parse_args(["--stage", "combine", "--psnr-loss", "0.1"]))
    assert combine.psnr_loss == 0.1
    with pytest.raises(ValueError, match="--psnr-loss"):
        config_from_args(build_parser().parse_args(["--stage", "combine", "--psnr-loss", "-1"]))
    assert config_from_args(build_parser().parse_args(["--stage", "combine", "--harm-loss", "0.3"])).harm_loss == 0.3
    with pytest.raises(ValueError, match="--harm-loss"):
        config_from_args(build_parser().parse_args(["--stage", "combine", "--harm-loss", "-1"]))
    assert config_from_args(build_parser().parse_args(["--stage", "expert", "--harm-loss", "0.3"])).harm_loss == 0.3
    with pytest.raises(ValueError, match="--harm-loss is an option of the combine and expert stages"):
        config_from_args(build_parser().parse_args(["--stage", "baseline", "--harm-loss", "0.3"]))
    assert config_from_args(build_parser().parse_args(["--stage", "router", "--gates-only"])).gates_only
    with pytest.raises(ValueError, match="--gates-only is an option of the router stage"):
        config_from_args(build_parser().parse_args(["--stage", "combine", "--gates-only"]))
