"""Recipes: a whole model set trained with one command, ``mofrr-train --recipe NAME_OR_YAML``.

A recipe (``mofrr_core/configs/recipes/*.yaml``; the folder is the list) is BasicSR-style YAML::

    output_dir: runs/default                  # default of --output-dir; run NAME writes <output_dir>/NAME
    defaults: {threads: 1}                    # keys every run starts from
    runs:                                     # in order; each: name, stage, preset + overrides
      - {name: router, stage: router, preset: router-srm}
      - {name: degree-white, stage: degree, expert: white, preset: cpu-psnr-degrees}
      - {name: expert-white, stage: expert, expert: white, preset: cpu128,
         degree_weights: "{degree-white}/best"}         # "{RUN}" = the folder of an earlier run
    calibrate:                                # optional: mofrr-train calibrate, once the runs are done
      - {router: "{router}/best", n: 2048, realign: photo-upright, max_false_calls: 0.05}
      - {router: "{router}/best", n: 4096, realign: photo-native, view: resized, max_false_calls: 0.05}
    registry:                                 # optional: <output_dir>/registry.yaml naming the results
      router: "{router}/best"
      experts: {white: "{expert-white}/best"}   # exactly the experts named (router, combine: packaged if unnamed)

A run's keys are :class:`~mofrr_core.train.config.TrainConfig` fields or their command-line
equivalents ``lr``, ``cache`` (``data.cache``), ``exclude_apis`` (``data.exclude_apis``) and
``num_ops: LO-HI``; a mapping (``data``, ``optimizer``, ``model_overrides``, ``ema``) is merged key by
key into the preset's. :func:`plan_recipe` returns the runs as :func:`mofrr_core.train.cli.plan` does,
so ``run_plan`` trains them and ``--resume`` skips the finished ones.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mofrr_core.data.realign import crops_natively, resolve_realign, resolve_reframe
from mofrr_core.retouch.postprocess import resolve_postprocess
from mofrr_core.router_view import ROUTER_VIEWS
from mofrr_core.train.config import STAGES, TrainConfig, make_config
from mofrr_core.train.run_folder import SUMMARY_FILE

RECIPE_DIR = Path(__file__).resolve().parent.parent / "configs" / "recipes"
RECIPES = tuple(sorted(path.stem for path in RECIPE_DIR.glob("*.yaml")))  # the folder is the list
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CLI_KEYS = ("lr", "cache", "exclude_apis")  # command-line equivalents of TrainConfig fields
NOT_IN_A_RUN = {"output_dir": "set by the run's name", "resume": "a command-line option (--resume)",
                "overwrite": "a command-line option (--overwrite)"}
PATH_KEYS = ("init_weights", "router_weights", "degree_weights", "shared_weights", "expert_weights", "routed",
             "hard_negatives", "combine_cache_from", "registry")  # what a run reads (--dry-run shows them)
RECIPE_KEYS = ("output_dir", "defaults", "runs", "calibrate", "registry", "description")
CALIBRATE_KEYS = {"router": str, "n": int, "realign": str, "max_false_calls": float,  # calibrate_router's
                  "group_by": list, "false_calls_on": str, "max_any_calls": float, "postprocess": str,
                  "view": str, "gates": list, "reframe": str, "recalibrate": list}  # with view: calibrate_view's,
# without group_by; gates, reframe and recalibrate only with view
VIEW_STEP_WITHOUT = ("group_by",)
REGISTRY_COMPONENTS = ("router", "combine")
COMMAND_LINE_KEYS = ("recipe", "dry_run", "output_dir", "data", "resume", "overwrite", "verbose")


class RecipeError(ValueError):
    """A recipe is invalid; the one-line message names the recipe file and the run."""


@dataclass
class RecipeRun:
    name: str
    config: TrainConfig

    @property
    def reads(self) -> dict[str, str]:
        """The paths this run reads (weights of earlier runs, routers, registries), by option."""
        out: dict[str, str] = {}
        for key in PATH_KEYS:
            value = getattr(self.config, key)
            if isinstance(value, dict):
                out.update({f"{key}.{name}": str(path) for name, path in value.items()})
            elif value:
                out[key] = str(value)
        return out


@dataclass
class Recipe:
    path: Path
    output_dir: Path
    runs: list[RecipeRun]
    registry: dict[str, Any] | None  # the registry.yaml to write (paths relative to output_dir)
    calibrate: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # calibration steps, in order
    data_root: str | None = None  # the face shards (calibration reads their val split)


def recipe_path(name: str | Path) -> Path:
    """A recipe name (one of :data:`RECIPES`) or a YAML path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    if (RECIPE_DIR / f"{name}.yaml").is_file():
        return RECIPE_DIR / f"{name}.yaml"
    raise RecipeError(f"unknown recipe {str(name)!r} (known: {', '.join(RECIPES)}, or a path to a .yaml file)")


def read_recipe(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise RecipeError(f"recipe {path}: invalid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list) or not raw["runs"]:
        raise RecipeError(f"recipe {path}: expected a mapping with a non-empty 'runs:' list")
    unknown = sorted(set(raw) - set(RECIPE_KEYS))
    if unknown:
        raise RecipeError(f"recipe {path}: unknown top-level key(s) {', '.join(unknown)} "
                          f"(known: {', '.join(RECIPE_KEYS)})")
    return raw


def merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; mapping values are merged key by key (one level)."""
    return {**base, **{key: {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict)
                       else value for key, value in top.items()}}


def substitute(value: Any, folders: dict[str, str], where: str) -> Any:
    """Replace every ``{RUN}`` in the strings of ``value`` by the folder of earlier run ``RUN``."""
    if isinstance(value, dict):
        return {key: substitute(item, folders, where) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, folders, where) for item in value]
    if not isinstance(value, str):
        return value

    def folder(match: re.Match) -> str:
        name = match.group(1)
        if name not in folders:
            earlier = ", ".join(folders) or "none"
            raise RecipeError(f"{where}: placeholder {{{name}}} names no earlier run (earlier runs: {earlier})")
        return folders[name]

    return PLACEHOLDER.sub(folder, value)


def cli_equivalents(keys: dict[str, Any], where: str) -> dict[str, Any]:
    """``cache``, ``exclude_apis`` -> ``data:`` keys; ``num_ops: LO-HI`` -> a tuple; path keys checked."""
    keys = dict(keys)
    data = dict(keys.pop("data", None) or {})
    if "cache" in keys:
        data["cache"] = int(keys.pop("cache")) or None
    if "exclude_apis" in keys:
        data["exclude_apis"] = {op: [apis] if isinstance(apis, str) else list(apis)
                                for op, apis in dict(keys.pop("exclude_apis")).items()}
    if data:
        keys["data"] = data
    if isinstance(keys.get("num_ops"), str | list):
        text = keys["num_ops"] if isinstance(keys["num_ops"], str) else "-".join(map(str, keys["num_ops"]))
        lo, _, hi = text.partition("-")
        if not (lo.isdigit() and hi.isdigit()):
            raise RecipeError(f"{where}: num_ops: expected LO-HI (e.g. 0-4), got {keys['num_ops']!r}")
        keys["num_ops"] = (int(lo), int(hi))
    for key in PATH_KEYS:
        value = keys.get(key)
        paths = value.values() if key == "expert_weights" and isinstance(value, dict) else [value]
        if value is not None and not all(isinstance(path, str) for path in paths):
            raise RecipeError(f"{where}: {key}: expected a path (quote placeholders: \"{{RUN}}/best\"), "
                              f"got {value!r}")
    return keys


def run_config(raw: dict[str, Any], base: dict[str, Any], folder: str, where: str) -> TrainConfig:
    """One run's :class:`TrainConfig`: its preset, then its keys, then the command line's ``base``."""
    keys = dict(raw)
    stage, preset = keys.pop("stage", None), keys.pop("preset", "cpu")
    if stage not in STAGES or stage == "all":
        raise RecipeError(f"{where}: stage: expected one of {', '.join(s for s in STAGES if s != 'all')}, "
                          f"got {stage!r}")
    known = {f.name for f in dataclasses.fields(TrainConfig)} - set(NOT_IN_A_RUN) - {"preset", "stage"}
    for key in keys:
        if key in NOT_IN_A_RUN:
            raise RecipeError(f"{where}: {key} is {NOT_IN_A_RUN[key]}, not a key of a run")
        if key not in known | set(CLI_KEYS):
            raise RecipeError(f"{where}: unknown key {key!r} (a run takes name, stage, preset, TrainConfig fields "
                              f"and {', '.join(CLI_KEYS)}, num_ops; see docs/training.md)")
    keys = cli_equivalents(keys, where)
    data = base.get("data")
    try:
        start = make_config(preset, stage=stage)
        lr = keys.pop("lr", None)
        overrides = merged({key: getattr(start, key) for key in keys}, keys)
        overrides.update({key: value for key, value in base.items() if key != "data"})
        if isinstance(data, dict):
            overrides["data"] = {**overrides.get("data", start.data), **data}
        config = make_config(preset, stage=stage, output_dir=folder, lr=lr, **overrides)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"{where}: {error}") from None
    if data == "synthetic" and config.data.get("type") != "SyntheticPairs":
        config.data = {"type": "SyntheticPairs", "length": 64}  # as --data synthetic does for one run
    elif base.get("data_root") and config.data.get("type") == "SyntheticPairs":
        config.data = {"type": "RetouchPairs"}  # a data folder means real pairs, as for one run
    return config


def registry_mapping(raw: Any, folders: dict[str, str], where: str) -> dict[str, Any]:
    """The ``registry:`` step as a registry.yaml mapping: the packaged one with the trained folders."""
    from mofrr_core.plugins import get_expert
    from mofrr_core.registry import DEFAULT_REGISTRY

    if not isinstance(raw, dict) or not isinstance(raw.get("experts", {}), dict):
        raise RecipeError(f"{where}: expected a mapping (router:, combine:, experts: {{NAME: PATH}}, ...)")
    raw = substitute(raw, folders, where)
    out = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    for key in REGISTRY_COMPONENTS:
        out[key] = {k: v for k, v in out[key].items() if k != "sha256"}  # pins the shipped files, not these
        if key in raw:
            value = raw.pop(key)
            out[key].update(value if isinstance(value, dict) else {"weights": value})
    experts = raw.pop("experts", None)
    if experts is not None:
        out["experts"] = []
        for name, value in experts.items():
            try:
                get_expert(name)
            except KeyError as error:
                raise RecipeError(f"{where}: experts: {error}") from None
            out["experts"].append({"name": name, **(value if isinstance(value, dict) else {"weights": value})})
    else:
        out["experts"] = [{k: v for k, v in entry.items() if k != "sha256"} for entry in out["experts"]]
    return {**out, **raw}  # resolution, threshold, sampling, passthrough_untouched...


def calibrate_step(raw: Any, folders: dict[str, str], where: str) -> dict[str, Any]:
    """The ``calibrate:`` step as :func:`~mofrr_core.train.calibrate.calibrate_router` keyword arguments."""
    if not isinstance(raw, dict) or "router" not in raw or set(raw) - set(CALIBRATE_KEYS):
        raise RecipeError(f"{where}: expected a mapping with router: and optionally "
                          f"{', '.join(k for k in CALIBRATE_KEYS if k != 'router')}, got {raw!r}")
    step = substitute(dict(raw), folders, where)
    for key, kind in CALIBRATE_KEYS.items():
        if key in step and not isinstance(step[key], kind if kind is not float else (int, float)):
            raise RecipeError(f"{where}: {key}: expected {kind.__name__}, got {step[key]!r}")
    try:  # checked now, not after hours of training
        resolve_realign(step.get("realign"))
        resolve_reframe(step.get("reframe"))
        resolve_postprocess(step.get("postprocess"))
    except ValueError as error:
        raise RecipeError(f"{where}: {error}") from None
    if step.get("group_by") and "max_false_calls" not in step:
        raise RecipeError(f"{where}: group_by goes with max_false_calls")
    if {"gates", "reframe", "recalibrate"} & set(step) and "view" not in step:
        raise RecipeError(f"{where}: gates, reframe and recalibrate go with view")
    if "view" in step and (step["view"] not in ROUTER_VIEWS or set(VIEW_STEP_WITHOUT) & set(step)
                           or not crops_natively(step.get("realign"))):
        raise RecipeError(f"{where}: a view step needs view {' or '.join(ROUTER_VIEWS)}, realign photo-native and no "
                          f"{' or '.join(VIEW_STEP_WITHOUT)}, got {raw!r}")
    rates_ok = all(0 <= step.get(key, 0) < 1 for key in ("max_false_calls", "max_any_calls"))
    if not rates_ok or step.get("n", 1) < 1:
        raise RecipeError(f"{where}: max_false_calls and max_any_calls must be in [0, 1) and n positive, got {raw!r}")
    return step


def load_recipe(name: str | Path, base_overrides: dict[str, Any] | None = None) -> Recipe:
    """The recipe ``name`` resolved: every run's config and the registry step.

    ``base_overrides`` (the command line) replace keys of every run; ``output_dir`` is the recipe's
    root folder (default: the recipe's ``output_dir:``, else ``runs/<recipe name>``) and ``data``
    is ``"synthetic"`` or leaves ``data_root`` to choose real pairs.
    """
    path = recipe_path(name)
    raw = read_recipe(path)
    base = {key: value for key, value in (base_overrides or {}).items() if value is not None}
    root = Path(base.pop("output_dir", None) or raw.get("output_dir") or f"runs/{path.stem}")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise RecipeError(f"recipe {path}: defaults: expected a mapping, got {defaults!r}")
    folders: dict[str, str] = {}
    runs: list[RecipeRun] = []
    for index, entry in enumerate(raw["runs"]):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = f"recipe {path}, run {label or index + 1!r}"
        if not isinstance(entry, dict) or not isinstance(label, str) or not RUN_NAME.fullmatch(label):
            raise RecipeError(f"{where}: expected a mapping with a 'name:' of letters, digits, '-', '_', '.'")
        if label in folders:
            raise RecipeError(f"{where}: the name is used by an earlier run")
        keys = substitute(merged(defaults, {k: v for k, v in entry.items() if k != "name"}), folders, where)
        config = run_config(keys, base, str(root / label), where)
        runs.append(RecipeRun(label, config))
        folders[label] = config.output_dir
    registry = None
    if raw.get("registry") is not None:
        registry = registry_mapping(raw["registry"], {name: name for name in folders},
                                    f"recipe {path}, registry step")
    steps = raw.get("calibrate") or []
    calibrate = [calibrate_step(step, folders, f"recipe {path}, calibrate step")
                 for step in (steps if isinstance(steps, list) else [steps])]
    return Recipe(path, root, runs, registry, calibrate, base.get("data_root"))


def plan_recipe(path: str | Path, base_overrides: dict[str, Any] | None = None) -> list[tuple[TrainConfig, tuple]]:
    """The recipe's runs as :func:`mofrr_core.train.cli.plan` returns them: ``[(TrainConfig, allowed)]``."""
    return [(run.config, ()) for run in load_recipe(path, base_overrides).runs]


def write_registry(recipe: Recipe) -> Path | None:
    """``<output_dir>/registry.yaml`` (paths relative to it), if the recipe has a registry step."""
    if recipe.registry is None:
        return None
    target = recipe.output_dir / "registry.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# Written by mofrr-train --recipe {recipe.path.stem}: the models it trained (paths relative to "
              f"this file).\n# Evaluate: mofrr eval --pipeline {target}\n")
    target.write_text(header + yaml.safe_dump(recipe.registry, sort_keys=False, default_flow_style=None))
    return target


def describe(recipe: Recipe) -> str:
    """The resolved runs (``--dry-run``): stage, expert, preset, steps, output folder, what each reads."""
    rows = [("#", "name", "stage", "expert", "preset", "steps", "output dir")]
    rows += [(str(i), r.name, r.config.stage, r.config.expert or "-", Path(r.config.preset).stem,
              str(r.config.max_steps), r.config.output_dir) for i, r in enumerate(recipe.runs, 1)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"recipe {recipe.path} -> {recipe.output_dir}: {len(recipe.runs)} runs"]
    for index, row in enumerate(rows):
        lines.append("  " + "  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
        reads = recipe.runs[index - 1].reads if index else {}
        lines += [f"  {'':{widths[0]}}  reads {key}: {value}" for key, value in reads.items()]
    for step in recipe.calibrate:
        options = ", ".join(f"{k} {step[k]}" for k in CALIBRATE_KEYS if k != "router" and k in step)
        lines.append(f"calibrate {step['router']}" + (f" ({options})" if options else ""))
    if recipe.registry is not None:
        lines.append(f"registry -> {recipe.output_dir / 'registry.yaml'} (paths relative to it):")
        for key in REGISTRY_COMPONENTS:
            lines.append(f"  {key}: {recipe.registry[key].get('weights', '(packaged)')}")
        lines += [f"  experts.{e['name']}: {e.get('weights', '(packaged)')}" for e in recipe.registry["experts"]]
    return "\n".join(lines)


def time_table(recipe: Recipe) -> str:
    """Markdown: each finished run's recorded training time (``wall_time_s``, summed over resumes) and the
    setup time of the process that finished it (pairs, caches; ``setup_time_s``), and the totals."""
    rows, totals = [], [0.0, 0.0]
    for run in recipe.runs:
        record = Path(run.config.output_dir) / SUMMARY_FILE
        info = json.loads(record.read_text()) if record.is_file() else {}
        times = [info.get("wall_time_s"), info.get("setup_time_s")]
        totals = [t + (v or 0.0) for t, v in zip(totals, times)]
        rows.append(f"| {run.name} | " + " | ".join("-" if v is None else f"{v / 60:.1f}" for v in times) + " |")
    lines = ["| run | training (min) | setup (min) |", "|---|---|---|", *rows,
             f"| total | {totals[0] / 60:.1f} | {totals[1] / 60:.1f} |",
             "", f"Total: {sum(totals) / 3600:.2f} h ('-': not finished, or finished before setup times were "
                 "recorded)."]
    return "\n".join(lines)


def calibrate_steps(recipe: Recipe) -> None:
    """The recipe's calibration steps in order. Idempotent, so a resumed recipe redoes them: the router's step
    refits from the raw logits, a view step replaces that view's offsets on top of the router's."""
    from mofrr_core.train.calibrate import calibrate_router, calibrate_view, describe_fit, describe_view_fit

    for raw in recipe.calibrate:
        step = dict(raw)
        router, view = step.pop("router"), step.pop("view", None)
        if view is None:
            described = describe_fit(calibrate_router(router, recipe.data_root, **step))
        else:
            described = describe_view_fit(calibrate_view(router, recipe.data_root, view, **step))
        print(f"calibrate {router}: {described}")


def run_recipe(recipe: Recipe, command: str | None = None) -> list[Any]:
    """Train the recipe's runs in order (finished ones skipped with ``--resume``), calibrate the router if the
    recipe says so, then write its registry."""
    from mofrr_core.train.cli import run_plan

    recipe.output_dir.mkdir(parents=True, exist_ok=True)
    if recipe.path.resolve() != (recipe.output_dir / "recipe.yaml").resolve():
        shutil.copyfile(recipe.path, recipe.output_dir / "recipe.yaml")  # what ran, next to the runs
    results = run_plan([(run.config, ()) for run in recipe.runs], command=command)
    calibrate_steps(recipe)
    target = write_registry(recipe)
    if target is not None:
        print(f"registry: {target} (evaluate: mofrr eval --pipeline {target})")
    times = time_table(recipe)
    (recipe.output_dir / "times.md").write_text(times + "\n")
    print(times)
    return results


def recipe_command(args: Any, defaults: Any, command: str) -> int:
    """``mofrr-train --recipe NAME [--output-dir DIR] [--data DIR] [--resume latest] [--dry-run]``."""
    extra = [key for key, value in vars(args).items()
             if key not in COMMAND_LINE_KEYS and value != getattr(defaults, key, None)]
    if extra:
        options = ", ".join("--" + key.replace("_", "-") for key in extra)
        raise RecipeError(f"--recipe {args.recipe}: {options} belong(s) in the recipe (copy it and pass the "
                          "copy's path); with --recipe give only --output-dir, --data, --resume, --overwrite")
    if args.data and args.data != "synthetic" and not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such folder (expected the face shards)")
    base = {"output_dir": args.output_dir, "resume": args.resume, "overwrite": args.overwrite or None,
            "data": args.data, "data_root": args.data if args.data != "synthetic" else None}
    recipe = load_recipe(args.recipe, base)
    if args.dry_run:
        print(describe(recipe))
        return 0
    run_recipe(recipe, command=command)
    return 0
