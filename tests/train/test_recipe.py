"""``mofrr-train --recipe``: the tiny recipe end to end, placeholders, errors, --dry-run, resume, default.yaml."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import yaml

from mofrr_core.pipeline import Pipeline
from mofrr_core.plugins import get_expert
from mofrr_core.registry import DEFAULT_REGISTRY, parse_registry, sha256_of, weight_file
from mofrr_core.train.cli import main
from mofrr_core.train.recipe import RECIPES, load_recipe, plan_recipe


def run(argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(argv)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny recipe, trained once for the tests of this module."""
    out = tmp_path_factory.mktemp("recipe") / "tiny"
    assert run(["--recipe", "tiny", "--data", "synthetic", "--output-dir", str(out)]) == 0
    return out


def write_recipe(tmp_path: Path, runs: list, **top) -> Path:
    path = tmp_path / "my-recipe.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"preset": "tiny"}, "runs": runs, **top}))
    return path


def test_recipes_are_listed_from_their_folder():
    assert {"default", "tiny"} <= set(RECIPES)
    assert run(["--recipe", "nope"]) == 1


def test_tiny_recipe_trains_every_run_and_writes_its_registry(trained):
    recipe = load_recipe("tiny", {"output_dir": str(trained)})
    for item in recipe.runs:
        summary = json.loads((trained / item.name / "training.json").read_text())
        assert summary["steps"] == item.config.max_steps == 2
        assert summary["config"]["stage"] == item.config.stage
        assert (trained / item.name / "final" / "config.json").is_file()
    # each run read the folders its placeholders name
    config = json.loads((trained / "expert-white" / "run.json").read_text())["config"]
    assert config["init_weights"] == str(trained / "expert-white-own" / "best")
    assert config["degree_weights"] == str(trained / "degree-white" / "best")
    assert config["foreign"] == 0.5
    combine = json.loads((trained / "combine-sum" / "run.json").read_text())["config"]
    assert combine["combine_cache_from"] == str(trained / "combine")
    assert combine["model_overrides"] == {"fusion": "sum"}
    # the registry builds the pipeline from exactly the trained files
    pipeline = Pipeline.from_registry(trained / "registry.yaml")
    expected = {"router": "router/best", "combine": "combine-sum/final", "experts.white": "expert-white/best",
                "experts.eye": "expert-eye/best", "experts.shared": "shared/best"}
    assert pipeline.weights == {key: sha256_of(weight_file(trained / path)) for key, path in expected.items()}
    assert (trained / "recipe.yaml").read_text() == Path(recipe.path).read_text()


def test_recipe_records_its_time(trained):
    recipe = load_recipe("tiny", {"output_dir": str(trained)})
    records = [json.loads((trained / item.name / "training.json").read_text()) for item in recipe.runs]
    assert all(r["setup_time_s"] > 0 and r["wall_time_s"] > 0 for r in records)
    table = (trained / "times.md").read_text().splitlines()
    assert [row.split(" | ")[0] for row in table[2:2 + len(recipe.runs)]] == [f"| {r.name}" for r in recipe.runs]
    total = sum(r["setup_time_s"] + r["wall_time_s"] for r in records) / 3600
    assert table[-1].startswith(f"Total: {total:.2f} h")


def test_resume_skips_finished_runs(trained, capsys):
    before = {p: p.stat().st_mtime_ns for p in trained.glob("*/final/*.safetensors")}
    assert len(before) == 9
    assert run(["--recipe", "tiny", "--data", "synthetic", "--output-dir", str(trained), "--resume", "latest"]) == 0
    out = capsys.readouterr().out
    assert out.count("already finished") == 9
    assert {p: p.stat().st_mtime_ns for p in trained.glob("*/final/*.safetensors")} == before
    # without --resume the used folders are refused
    assert run(["--recipe", "tiny", "--data", "synthetic", "--output-dir", str(trained)]) == 1
    assert "not empty" in capsys.readouterr().err


def test_resume_restarts_a_run_killed_before_its_first_checkpoint_keeping_its_cache(trained, tmp_path, capsys):
    copy = tmp_path / "tiny"
    shutil.copytree(trained, copy)
    combine = copy / "combine"
    for name in ("checkpoints", "final", "best", "training.json", "run.json"):
        path = combine / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    (combine / "metrics.jsonl").write_text('{"step": 1, "partial": true}\n')
    cache = {p: p.stat().st_mtime_ns for p in (combine / "cache").iterdir()}
    assert cache
    assert run(["--recipe", "tiny", "--data", "synthetic", "--output-dir", str(copy), "--resume", "latest"]) == 0
    assert capsys.readouterr().out.count("already finished") == 8
    assert (combine / "final" / "config.json").is_file()
    assert {p: p.stat().st_mtime_ns for p in (combine / "cache").iterdir()} == cache
    assert "partial" not in (combine / "metrics.jsonl").read_text()


def test_placeholders_resolve_to_the_folders_of_earlier_runs(tmp_path):
    runs = plan_recipe("tiny", {"output_dir": str(tmp_path)})
    by_dir = {Path(config.output_dir).name: config for config, allowed in runs}
    assert all(allowed == () for _, allowed in runs)
    assert list(by_dir) == ["router", "degree-white", "expert-white-own", "expert-white", "degree-eye",
                            "expert-eye", "shared", "combine", "combine-sum"]
    combine = by_dir["combine"]
    assert combine.router_weights == str(tmp_path / "router" / "best")
    assert combine.shared_weights == str(tmp_path / "shared" / "best")
    assert combine.expert_weights == {"white": str(tmp_path / "expert-white" / "best"),
                                      "eye": str(tmp_path / "expert-eye" / "best")}
    assert by_dir["expert-eye"].model_overrides == {"warp": True}
    assert by_dir["shared"].num_ops == (0, 4)
    assert by_dir["expert-white-own"].lr == 2e-4


def test_default_recipe_uses_each_stages_preset_and_reads_only_earlier_runs(tmp_path):
    recipe = load_recipe("default", {"output_dir": str(tmp_path), "data_root": str(tmp_path)})
    done: set[str] = set()
    for item in recipe.runs:
        for path in item.reads.values():
            assert Path(path).relative_to(tmp_path).parts[0] in done, (item.name, path)
        wanted = "app-camera" if item.name == "router-camera" else "app"  # the one run that names its own
        assert item.config.data.get("postprocess") == wanted, item.name
        assert item.config.threads == 1 and item.config.output_dir == str(tmp_path / item.name)
        done.add(item.name)
    final = {(r.config.stage, r.config.expert): Path(r.config.preset).stem for r in recipe.runs}
    routers = [(r.name, Path(r.config.preset).stem) for r in recipe.runs if r.config.stage == "router"]
    assert routers == [("router", "router-srm"), ("router-photo", "router-photo-upright"),
                       ("router-kept", "router-photo-kept"), ("router-camera", "router-camera")]
    shipped = str(tmp_path / "router-camera" / "best")  # the router that ships, then its resized view
    assert [(step["router"], step.get("view"), step.get("gates"), step.get("max_any_calls"), step.get("recalibrate"))
            for step in recipe.calibrate] == [(shipped, None, None, 0.03, None), (shipped, "resized", None, 0.03, None),
                                              (shipped, "native", ["face"], None, None),
                                              (shipped, "native-grid", ["face", "eye"], 0.015, ["face", "eye"])]
    assert recipe.registry["router"]["weights"] == "router-camera/best" and recipe.registry["router_crop"] == "native"
    assert final[("expert", "white")] == final[("expert", "smooth")] == "cpu128"
    assert final[("expert", "face")] == final[("expert", "eye")] == "cpu128-warp"
    assert final[("shared", "shared")] == "cpu128"
    assert {final[("degree", e)] for e in ("white", "smooth", "face", "eye")} == {"cpu-psnr-degrees"}
    assert [Path(r.config.preset).stem for r in recipe.runs if r.config.stage == "combine"] == [
        "combine128", "combine128-sum"]
    weights = [recipe.registry["router"]["weights"], recipe.registry["combine"]["weights"],
               *(e["weights"] for e in recipe.registry["experts"])]
    assert {w.split("/")[0] for w in weights} <= done
    assert [e["name"] for e in recipe.registry["experts"]] == ["white", "smooth", "face", "eye", "shared"]


def test_experiment_recipes_load_and_read_only_earlier_runs_or_packaged_weights(tmp_path):
    root = Path(__file__).resolve().parents[2]
    paths = sorted((root / "examples" / "experiments" / "recipes").glob("*.yaml"))
    assert paths
    for path in paths:
        recipe = load_recipe(path, {"output_dir": str(tmp_path), "data_root": str(tmp_path)})
        done: set[str] = set()
        for item in recipe.runs:
            for path_read in map(Path, item.reads.values()):  # an earlier run's folder, or packaged weights
                earlier = path_read.is_relative_to(tmp_path) and path_read.relative_to(tmp_path).parts[0] in done
                assert earlier or (root / path_read / "config.json").is_file(), (path.name, item.name, path_read)
            done.add(item.name)


def test_dry_run_prints_the_resolved_runs_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["--recipe", "tiny", "--data", "synthetic", "--output-dir", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert not out.exists()
    assert printed.count(str(out)) >= 9
    assert f"reads combine_cache_from: {out / 'combine'}" in printed
    assert f"reads expert_weights.eye: {out / 'expert-eye' / 'best'}" in printed
    assert "combine: combine-sum/final" in printed


@pytest.mark.parametrize("runs, message", [
    ([{"name": "a", "stage": "router"}, {"name": "b", "stage": "combine", "router_weights": "{rooter}/best"}],
     "run 'b': placeholder {rooter} names no earlier run (earlier runs: a)"),
    ([{"name": "a", "stage": "combine", "router_weights": "{b}/best"}, {"name": "b", "stage": "router"}],
     "run 'a': placeholder {b} names no earlier run (earlier runs: none)"),
    ([{"name": "a", "stage": "router", "max_step": 3}], "run 'a': unknown key 'max_step'"),
    ([{"name": "a", "stage": "router", "output_dir": "x"}], "run 'a': output_dir is set by the run's name"),
    ([{"name": "a", "stage": "everything"}], "run 'a': stage: expected one of"),
    ([{"name": "a", "stage": "router"}, {"name": "a", "stage": "router"}], "run 'a': the name is used by an"),
    ([{"name": "a", "stage": "router", "batch_size": 0}], "run 'a': --batch-size must be positive, got 0"),
])
def test_recipe_errors_are_one_line_naming_the_file_and_the_run(tmp_path, capsys, runs, message):
    path = write_recipe(tmp_path, runs)
    assert run(["--recipe", str(path), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: recipe {path}, ") and message in err


def test_dangling_placeholder_in_the_registry_step(tmp_path, capsys):
    path = write_recipe(tmp_path, [{"name": "r", "stage": "router"}], registry={"router": "{router}/best"})
    assert run(["--recipe", str(path), "--dry-run"]) == 1
    assert f"recipe {path}, registry step: placeholder {{router}} names no earlier run" in capsys.readouterr().err


def test_registry_step_keeps_packaged_weights_of_experts_named_with_an_empty_mapping(tmp_path):
    path = write_recipe(tmp_path, [{"name": "s", "stage": "expert", "expert": "smooth"}],
                        registry={"experts": {"white": {}, "smooth": "{s}/final", "eye": {}}})
    experts = load_recipe(str(path), {"output_dir": str(tmp_path / "out")}).registry["experts"]
    assert sorted(experts, key=lambda e: e["name"]) == [{"name": "eye"}, {"name": "smooth", "weights": "s/final"},
                                                         {"name": "white"}]
    config = parse_registry({**yaml.safe_load(DEFAULT_REGISTRY.read_text()), "experts": experts}, base=tmp_path)
    weights = {e.spec.name: e.component.weights for e in config.experts}
    assert weights["smooth"] == tmp_path / "s" / "final"
    assert weights["white"] == get_expert("white").weights and set(weights) == {"white", "smooth", "eye"}


def test_training_options_belong_in_the_recipe(tmp_path, capsys):
    assert run(["--recipe", "tiny", "--max-steps", "5", "--dry-run"]) == 1
    assert "--max-steps belong(s) in the recipe" in capsys.readouterr().err
    assert run(["--preset", "tiny", "--stage", "router", "--dry-run"]) == 1
    assert "--dry-run goes with --recipe" in capsys.readouterr().err


@pytest.mark.parametrize("calibrate, message", [
    ({"router": "{rooter}/best"}, "calibrate step: placeholder {rooter} names no earlier run"),
    ({"router": "{r}/best", "realign": "studio"}, "calibrate step: realign: unknown preset 'studio'"),
    ({"router": "{r}/best", "postprocess": "phone"}, "calibrate step: postprocess: unknown preset 'phone'"),
    ({"router": "{r}/best", "max_false_calls": 5}, "calibrate step: max_false_calls and max_any_calls must be in"),
    ({"router": "{r}/best", "max_any_calls": 1.5}, "max_false_calls and max_any_calls must be in"),
    ({"router": "{r}/best", "samples": 5}, "calibrate step: expected a mapping with router: and optionally n"),
    ({"n": 5}, "calibrate step: expected a mapping with router:"),
    ({"router": "{r}/best", "group_by": "race"}, "calibrate step: group_by: expected list, got 'race'"),
    ({"router": "{r}/best", "group_by": ["race"]}, "calibrate step: group_by goes with max_false_calls"),
    ({"router": "{r}/best", "view": "resized"},
     "calibrate step: a view step needs view native or resized or native-grid, realign"),
    ({"router": "{r}/best", "gates": ["face"]}, "calibrate step: gates, reframe and recalibrate go with view"),
    ({"router": "{r}/best", "recalibrate": ["face"]}, "calibrate step: gates, reframe and recalibrate go with view"),
    ({"router": "{r}/best", "view": "native", "realign": "photo-native", "recalibrate": True},
     "calibrate step: recalibrate: expected list, got True"),
    ({"router": "{r}/best", "view": "resized", "realign": "photo-native", "group_by": ["race"],
      "max_false_calls": 0.02},
     "calibrate step: a view step needs"),
])
def test_calibrate_step_errors_are_found_before_training(tmp_path, capsys, calibrate, message):
    path = write_recipe(tmp_path, [{"name": "r", "stage": "router"}], calibrate=calibrate)
    assert run(["--recipe", str(path), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_calibrate_step_fits_the_trained_router_before_the_registry(shards, tmp_path, capsys):
    """A recipe's ``calibrate:`` runs ``mofrr-train calibrate`` on its router once the runs are done (the steps of a
    list in order: the router's, then the faces it reads resized)."""
    root = shards
    view = {"router": "{r}/final", "n": 96, "realign": "photo-native", "view": "resized", "max_false_calls": 0.0}
    calibrate = [{"router": "{r}/final", "n": 24, "realign": "photo-upright", "max_false_calls": 0.0}, view]
    path = write_recipe(tmp_path, [{"name": "r", "stage": "router", "resolution": 32}], calibrate=calibrate,
                        registry={"router": "{r}/final"})
    out = tmp_path / "out"
    assert run(["--recipe", str(path), "--output-dir", str(out), "--dry-run"]) == 0
    expected = f"calibrate {out / 'r' / 'final'} (n 24, realign photo-upright, max_false_calls 0.0)"
    planned = capsys.readouterr().out
    assert expected in planned and "(n 96, realign photo-native, max_false_calls 0.0, view resized)" in planned
    assert run(["--recipe", str(path), "--output-dir", str(out), "--data", str(root)]) == 0
    printed = capsys.readouterr().out
    config = json.loads((out / "r" / "final" / "config.json").read_text())
    assert config["temperature"] != 1.0 and f"calibrate {out / 'r' / 'final'}: temperature" in printed
    calls = printed.split("untouched: ")[1].split(" (any call ")[0].split(", ")
    assert len(calls) == 4 and all(c.endswith(" 0.0%") for c in calls)  # zero budget: no untouched face flagged
    assert "(any call 0.0%)" in printed
    assert printed.index("calibrate ") < printed.index(f"calibrate {out / 'r' / 'final'}: view resized (")
    assert printed.rindex("(any call 0.0%)") > printed.index(": view resized (")  # the view's own budget held
    assert printed.index("calibrate ") < printed.index("registry: ")
