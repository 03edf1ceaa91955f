"""``mofrr-train``: train the router, degree estimators, experts, shared expert, gates and combine module.

Stages follow the paper: router and degree estimators first (then frozen), each WaveFRR expert on
single-operation images of its type, the shared expert on multi-operation images, the Combine
Module last on 0-4-operation images with everything else frozen. ``gate`` trains a new plugin
expert's router gate head on the frozen router backbone.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mofrr_core.cli import one_line_warnings, run_reporting_errors

EPILOG = """examples:
  mofrr-train                                         list the trainable experts
  mofrr-train --expert eye                            degree estimator (if none trained), then the eye expert
  mofrr-train --stage router                          router backbone + all gates
  mofrr-train --stage degree --expert eye             only the eye expert's degree estimator
  mofrr-train --stage expert --expert eye --degree-weights runs/mofrr/degree-eye/final
  mofrr-train --expert shared                         the shared expert (multi-op images)
  mofrr-train --stage gate --expert lips --router-weights runs/mofrr/router/final
  mofrr-train --stage combine --router-weights ... --expert-weights eye=runs/.../final ...
  mofrr-train --stage all --output-dir runs/full      every stage in order
  mofrr-train --recipe default --dry-run              the runs of a recipe (configs/recipes/), resolved
  mofrr-train --recipe default --output-dir runs/def  the whole default model set, each stage its own preset
  mofrr-train --expert eye --resume latest            continue exactly where the run stopped
  mofrr-train export runs/mofrr/expert-eye package    copy the EMA weights into the eye package
  mofrr-train calibrate runs/mofrr/router/best        fit the router's temperature on held-out val pairs
  accelerate launch --multi_gpu -m mofrr_core.train.cli --preset paper --expert eye

Data: --data DIR (or MOFRR_DATA) is the face shard folder (default ../shared/data/faces);
--data synthetic uses cheap synthetic pairs (smoke tests and benchmarks only).
"""


def _key_value(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def _ops_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    if not (sep and lo.isdigit() and hi.isdigit()):
        raise argparse.ArgumentTypeError(f"expected LO-HI (e.g. 0-4), got {text!r}")
    return int(lo), int(hi)


def add_stage_options(add: Any) -> None:
    """The options that apply to some stages only (expert, shared, router, combine...)."""
    add("--train-degree", action=argparse.BooleanOptionalAction, default=None,
        help="expert stage: train the degree estimator jointly (L_class); default: only without --degree-weights")
    add("--foreign", type=float, metavar="FRACTION",
        help="expert stage: share of training images that carry another type's retouching or none, with the "
             "input itself as target, so the expert learns to leave them alone (default 0: the paper's "
             "own-type images only)")
    add("--hard-negatives", metavar="ROUTER_DIR",
        help="expert stage, with --foreign: keep only the foreign training images on which this router runs the "
             "expert (its false positives), i.e. the images without its retouching that it will really get")
    add("--routed", metavar="ROUTER_DIR",
        help="expert stage: train and validate only on the images this router sends the expert, as the pipeline "
             "does: the own-type images it finds and, with --foreign, the foreign ones it takes for its type")
    add("--psnr-loss", type=float, metavar="WEIGHT",
        help="combine/baseline stages: add WEIGHT x mean per-image log10(MSE) to L_hyb, i.e. train for the "
             "evaluation's mean per-image PSNR, which punishes harm on lightly retouched faces (default 0: the "
             "paper's L_hyb only)")
    add("--harm-loss", type=float, metavar="WEIGHT",
        help="combine and expert stages: add WEIGHT x the mean over images of how much worse than its input "
             "(log10 MSE) each restored image is, zero where it is better: a hinge on the 'made worse' count "
             "(default 0)")
    add("--num-ops", type=_ops_range, metavar="LO-HI",
        help="shared stage: operations per training image (default 2-4, the paper's multi-op images; 0-4 "
             "also teaches it single-op and untouched faces, with p_clean); expert stage: operations of the "
             "other types per foreign image (default 1-1)")
    add("--p-single", type=float, metavar="FRACTION",
        help="router/shared/combine/baseline stages: share of single-op images among the retouched ones, the "
             "rest 2-4 ops (default: the number of ops uniform; 0.8 is the op mix of mofrr eval --ops balanced)")
    add("--init-weights", metavar="DIR", help="start from these trained weights (fine-tuning) instead of from "
                                              "scratch; an expert then keeps its degree estimator frozen")
    add("--gates-only", action="store_true", default=None,
        help="router stage: keep the backbone of --init-weights frozen and train every gate head afresh (e.g. "
             "on another label mix, a preset with data.p_type)")
    add("--router-weights", metavar="DIR", help="trained router (gate and combine stages)")
    add("--degree-weights", metavar="DIR", help="trained degree estimator (expert stage)")
    add("--shared-weights", metavar="DIR", help="trained shared expert (combine stage)")
    add("--expert-weights", type=_key_value, action="append", default=[], metavar="NAME=DIR",
        help="trained specialised expert (combine stage), repeatable")
    add("--registry", metavar="YAML", help="registry.yaml for the combine/gate stages (default: packaged)")


def build_parser() -> argparse.ArgumentParser:
    from mofrr_core.train.config import STAGES, TRAIN_PRESETS
    from mofrr_core.train.recipe import RECIPES

    parser = argparse.ArgumentParser(prog="mofrr-train", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--stage", choices=STAGES, help="what to train (default with --expert: degree if needed, then the expert; "
                                        "'shared' for the shared expert)")
    add("--expert", help="expert name as its plugin registered it (mofrr-train without arguments lists them)")
    add("--preset", default="cpu", help=f"training preset: {', '.join(TRAIN_PRESETS)} or a YAML path (default cpu)")
    add("--model-preset", help="network sizes (tiny/cpu/paper); default: the preset the expert's spec names")
    add("--resolution", type=int, help="training image size (square)")
    add("--batch-size", type=int, help="samples per process and step")
    add("--max-steps", type=int, help="optimizer steps")
    add("--lr", type=float, help="learning rate (default 1e-4)")
    add("--gradient-accumulation-steps", type=int, help="micro-batches per optimizer step")
    add("--mixed-precision", choices=("no", "fp16", "bf16"), help="passed to accelerate (fp16 needs a GPU)")
    add("--data", metavar="DIR", help="face shards folder (default MOFRR_DATA or ../shared/data/faces); "
                                      "'synthetic' for synthetic pairs")
    add("--output-dir", help="run folder (default <preset output_dir>/<stage>[-<expert>])")
    add("--num-workers", type=int, help="DataLoader workers (retouching runs in them)")
    add("--seed", type=int, help="training seed (data order, noise)")
    add("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    add("--channels-last", action="store_true", default=None, help="channels_last memory format (opt-in)")
    add("--val-every", type=int, help="validate every N steps")
    add("--val-samples", type=int, help="size of the fixed validation subset")
    add("--val-apis", choices=("heldout", "train", "all"),
        help="retouching implementations of the validation pairs, which choose the exported step: heldout "
             "(default; mofrr_core/retouch/heldout.yaml, never trained on), train (in-domain) or all")
    add("--log-every", type=int, help="write metrics.jsonl every N steps")
    add("--checkpoint-every", type=int, help="accelerate save_state every N steps")
    add("--checkpoints-keep", type=int, help="keep the last K checkpoints")
    add("--cache", type=int, metavar="N",
        help="retouch N training pairs once and train on them and their mirrors (0: a new pair every sample); "
             "default: the preset's data.cache")
    add("--exclude-apis", nargs="+", type=_key_value, default=[], metavar="OP=API",
        help="never retouch with these implementations (the cross-implementation protocol, paper Table 3; "
             "evaluate with mofrr eval --apis OP=API), e.g. --exclude-apis white=lab")
    add("--combine-cache-samples", type=int,
        help="combine stage: training samples whose frozen expert outputs are computed once")
    add("--combine-cache-from", metavar="RUN",
        help="combine stage: train on the frozen outputs cached by an earlier combine run (RUN/cache/) instead "
             "of computing them again; its weights, data and cache settings must be the same (checked "
             "against RUN/run.json: paths, not file contents)")
    add("--resume", nargs="?", const="latest", metavar="latest|PATH", help="continue from a checkpoint")
    add("--overwrite", action="store_true", help="replace an existing run in --output-dir (and weights on --export)")
    add_stage_options(add)
    add("--export", metavar="DIR", help="after training copy the EMA weights (+ TRAINING.md) to DIR; "
                                        "'package' = the expert package's weights/ (gate/ for a gate run)")
    add("--recipe", metavar="NAME_OR_YAML",
        help=f"train the runs of a recipe in order, each with its own preset: {', '.join(RECIPES)} or a YAML path "
             "(with only --output-dir, --data, --resume, --overwrite, --dry-run)")
    add("--dry-run", action="store_true", help="with --recipe: print the resolved runs, train nothing")
    add("-v", "--verbose", action="store_true", help="show warnings and full tracebacks")
    return parser


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mofrr-train export",
                                     description="Copy a finished run's EMA weights (final/) into an expert "
                                                 "package with TRAINING.md + training.json (command, data, "
                                                 "steps, metrics, git commit, sha256).")
    parser.add_argument("run", help="run folder written by mofrr-train")
    parser.add_argument("destination", help="weights folder, or 'package' for the expert package's own folder")
    parser.add_argument("--which", choices=("final", "best"), default="final",
                        help="the EMA weights of the last step (final) or of the best validation step (best)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing weights there")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")
    return parser


def build_calibrate_parser() -> argparse.ArgumentParser:
    from mofrr_core.data.realign import REFRAME_PRESETS
    from mofrr_core.retouch.postprocess import POSTPROCESS_PRESETS
    from mofrr_core.router_view import ROUTER_VIEWS
    from mofrr_core.train.calibrate import FALSE_CALLS_ON

    parser = argparse.ArgumentParser(prog="mofrr-train calibrate",
                                     description="Fit the temperature of a trained router on validation faces "
                                                 "retouched with the held-out implementations, and write it into "
                                                 "the router's config.json (decisions at 0.5 do not change; the "
                                                 "printed probabilities become calibrated).")
    parser.add_argument("router", help="a router weights folder (config.json + .safetensors), e.g. RUN/best")
    parser.add_argument("--data", metavar="DIR", help="face shards folder (default MOFRR_DATA or ../shared/data/faces)")
    parser.add_argument("-n", type=int, default=512, help="validation pairs to fit on (default: 512; a quarter "
                                                          "are untouched)")
    parser.add_argument("--max-false-calls", type=float, metavar="RATE",
                        help="also make every gate that flags more than RATE (e.g. 0.05) of the untouched faces "
                             "stricter (a per-gate logit offset in config.json); no gate is made more sensitive")
    parser.add_argument("--max-any-calls", type=float, metavar="RATE",
                        help="also keep the untouched faces on which any gate fires within RATE (e.g. 0.04), "
                             "making stricter the gates whose calls are most often false (after --max-false-calls)")
    parser.add_argument("--realign", choices=["photo", "photo-upright", "photo-native", "photo-native-grid"],
                        default=None,
                        help="fit on faces a share of which went through a whole-photo alignment, as `mofrr "
                             "restore` sees them (presets of mofrr_core/data/realign.py; photo-native: as "
                             "router_crop: native reads them; photo-native-grid: and smaller faces that keep their "
                             "JPEG grid, as the registry's grid_native reads them; default: the faces' own crops)")
    parser.add_argument("--reframe", choices=[k for k, v in REFRAME_PRESETS.items() if v], default=None,
                        help="with --view: fit on photos framed looser before the retouching (presets of "
                             "mofrr_core/data/realign.py; portrait-jpeg: and saved as JPEG, for --view native-grid)")
    parser.add_argument("--postprocess", choices=[k for k, v in POSTPROCESS_PRESETS.items() if v], default=None,
                        help="fit on faces (untouched ones too) that went through a photo app's or a camera's "
                             "post-processing (presets of mofrr_core/retouch/postprocess.py; default: none)")
    parser.add_argument("--group-by", nargs="+", metavar="FIELD", default=[],
                        help="with --max-false-calls: hold the budget in every group of these FairFace metadata "
                             "fields too (e.g. race gender), not only over all untouched faces")
    parser.add_argument("--false-calls-on", choices=FALSE_CALLS_ON, default=FALSE_CALLS_ON[0],
                        help="with --max-false-calls: the faces a gate must not flag, the untouched ones (default) "
                             "or every face without its type (untouched and retouched with other types only)")
    parser.add_argument("--view", choices=ROUTER_VIEWS, default=None,
                        help="instead, fit the gate offsets of the faces whole-photo mode's router reads in this "
                             "view (resized: a face outside the native range, resampled to the router's size; "
                             "native-grid: a smaller face read from its own pixels for its JPEG grid) "
                             "with --max-false-calls / --max-any-calls on that view's untouched faces alone, on "
                             "top of the router's offsets (never looser), and write them as view_gate_offsets; "
                             "needs --realign photo-native")
    parser.add_argument("--gates", nargs="+", metavar="TYPE", default=None,
                        help="with --view: fit only these gates' offsets, the budgets counted on their calls alone "
                             "(e.g. face: the gate whose false calls cost most)")
    parser.add_argument("--recalibrate", nargs="+", metavar="TYPE", default=(),
                        help="with --view: also fit the scale and bias of these gates' printed probabilities in that "
                             "view (Platt scaling, view_calibration in config.json; name the gates that read the "
                             "view, e.g. face eye for native-grid), where the temperature alone leaves them off; "
                             "decisions do not change")
    parser.add_argument("--dry-run", action="store_true", help="print what would be fitted, write nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")
    return parser


# -- listing ----------------------------------------------------------------------------------------
def list_experts() -> int:
    """Print the trainable experts (every registered expert) and how to train them."""
    from mofrr_core.plugins import get_experts

    experts = get_experts()
    if not experts:
        print("no experts installed (pip install mofrr-expert-<type>)")
        return 0
    rows = [("expert", "kind", "type", "model", "preset", "weights", "gate", "package")]
    for name, spec in sorted(experts.items()):
        weights = "trained" if spec.weights is not None and (spec.weights / "config.json").is_file() else "untrained"
        gate = "yes" if spec.gate is not None else "-"
        rows.append((name, spec.kind, spec.retouch_type or "-", spec.model_type, spec.preset, weights, gate,
                     spec.distribution))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    print("trainable experts:")
    for row in rows:
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    print("\ntrain one:  mofrr-train --expert NAME        all stages:  mofrr-train --stage all\n"
          "more:       mofrr-train --help")
    return 0


# -- planning ---------------------------------------------------------------------------------------
def config_from_args(args: argparse.Namespace) -> Any:
    from mofrr_core.train.config import make_config

    overrides: dict[str, Any] = {
        "expert": args.expert, "model_preset": args.model_preset, "resolution": args.resolution,
        "batch_size": args.batch_size, "max_steps": args.max_steps, "lr": args.lr,
        "gradient_accumulation_steps": args.gradient_accumulation_steps, "mixed_precision": args.mixed_precision,
        "num_workers": args.num_workers, "seed": args.seed, "threads": args.threads,
        "channels_last": args.channels_last, "val_every": args.val_every,
        "val_samples": args.val_samples, "val_apis": args.val_apis, "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every,
        "checkpoints_keep": args.checkpoints_keep, "combine_cache_samples": args.combine_cache_samples,
        "combine_cache_from": args.combine_cache_from,
        "resume": args.resume, "overwrite": args.overwrite or None,
        "foreign": args.foreign, "hard_negatives": args.hard_negatives, "routed": args.routed,
        "psnr_loss": args.psnr_loss, "harm_loss": args.harm_loss,
        "num_ops": args.num_ops, "p_single": args.p_single,
        "init_weights": args.init_weights, "gates_only": args.gates_only,
        "train_degree": args.train_degree, "router_weights": args.router_weights,
        "degree_weights": args.degree_weights, "shared_weights": args.shared_weights,
        "expert_weights": dict(args.expert_weights) or None, "registry": args.registry,
    }
    if args.data == "synthetic":
        overrides["data"] = {"type": "SyntheticPairs", "length": 64}
    elif args.data:
        if not Path(args.data).is_dir():
            raise FileNotFoundError(f"--data {args.data}: no such folder (expected the face shards, see "
                                    "../shared/data/faces/README.md)")
        overrides["data_root"] = args.data
    config = make_config(args.preset, stage=args.stage or "expert", **overrides)
    if args.data and args.data != "synthetic" and config.data.get("type") != "RetouchPairs":
        config.data = {"type": "RetouchPairs"}  # a data folder means real pairs, whatever the preset's default
    if args.exclude_apis:
        excluded: dict[str, list[str]] = {}
        for op, api in args.exclude_apis:
            excluded.setdefault(op, []).append(api)
        config.data = {**config.data, "exclude_apis": excluded}
    if args.cache is not None:
        if args.cache < 0:
            raise ValueError(f"--cache must be >= 0, got {args.cache}")
        config.data = {**config.data, "cache": args.cache or None}
    return config


def default_dir(config: Any, stage: str, expert: str | None) -> str:
    return str(Path(config.output_dir) / (f"{stage}-{expert}" if expert else stage))


def plan(args: argparse.Namespace) -> list[tuple[Any, tuple[str, ...]]]:
    """The runs to do, in order: ``[(TrainConfig, allowed existing entries of its output dir)]``."""
    from mofrr_core.plugins import get_expert

    base = config_from_args(args)
    if args.stage == "all":
        return plan_all(base, args.output_dir)
    stage = args.stage
    if stage is None:
        if not args.expert:
            raise ValueError("give --stage or --expert (mofrr-train without arguments lists the experts)")
        spec = get_expert(args.expert)
        stage = "shared" if spec.kind == "shared" else "expert"
    out = args.output_dir or default_dir(base, stage, args.expert)
    config = base.replace(stage=stage, output_dir=out)
    if (args.stage is None and stage == "expert" and config.degree_weights is None and config.train_degree is None
            and config.init_weights is None):
        # the paper's order: this expert's degree estimator first (kept in <out>/degree), then the expert
        degree_dir = Path(out) / "degree"
        runs: list[tuple[Any, tuple[str, ...]]] = []
        if not (degree_dir / "final" / "config.json").is_file():
            runs.append((config.replace(stage="degree", output_dir=str(degree_dir)), ()))
        runs.append((config.replace(degree_weights=str(degree_dir / "final")), ("degree",)))
        return runs
    return [(config, ())]


def plan_all(base: Any, output_dir: str | None) -> list[tuple[Any, tuple[str, ...]]]:
    """router -> (degree, expert[, gate]) per specialised expert -> shared -> combine, in sub-folders."""
    from mofrr_core.models.presets import load_preset
    from mofrr_core.registry import load_registry

    root = Path(output_dir or base.output_dir)
    registry = load_registry(base.registry)
    router_types = list(load_preset(base.model_preset or registry.router.preset)["router"].get("types") or [])
    runs: list[tuple[Any, tuple[str, ...]]] = []

    def sub(name: str) -> str:
        return str(root / name)

    runs.append((base.replace(stage="router", expert=None, output_dir=sub("router")), ()))
    router = sub("router") + "/final"
    expert_weights = {}
    for entry in registry.specialised:
        name = entry.name
        degree = sub(f"degree-{name}")
        runs.append((base.replace(stage="degree", expert=name, output_dir=degree), ()))
        runs.append((base.replace(stage="expert", expert=name, output_dir=sub(f"expert-{name}"),
                                  degree_weights=degree + "/final"), ()))
        expert_weights[name] = sub(f"expert-{name}") + "/final"
        if entry.spec.retouch_type not in router_types:
            runs.append((base.replace(stage="gate", expert=name, output_dir=sub(f"gate-{name}"),
                                      router_weights=router), ()))
    shared = None
    if registry.shared is not None:
        shared = sub("shared") + "/final"
        runs.append((base.replace(stage="shared", expert=registry.shared.name, output_dir=sub("shared")), ()))
    runs.append((base.replace(stage="combine", expert=None, output_dir=sub("combine"), router_weights=router,
                              expert_weights=expert_weights, shared_weights=shared), ()))
    return runs


def finished(config: Any) -> bool:
    """A run whose final weights exist and reached ``max_steps`` (skipped when resuming a plan)."""
    summary = Path(config.output_dir) / "training.json"
    if not summary.is_file():
        return False
    return int(json.loads(summary.read_text()).get("steps", 0)) >= config.max_steps


def run_plan(runs: list[tuple[Any, tuple[str, ...]]], export: str | None = None,
             command: str | None = None) -> list[Any]:
    """Train the planned runs in order (then export the last one if asked); returns their results."""
    from mofrr_core.train.export import export_run
    from mofrr_core.train.run_folder import list_checkpoints
    from mofrr_core.train.trainer import Trainer

    # rank from the launcher's environment: creating accelerate's state here would fix it too early
    main_process = os.environ.get("RANK", "0") == "0"
    say = print if main_process else (lambda *_a, **_k: None)
    results = []
    for config, allow in runs:
        if config.resume and len(runs) > 1:  # a plan: finished sub-runs are kept, started ones continue
            if finished(config):
                say(f"== {config.stage}{' ' + config.expert if config.expert else ''}: already finished "
                      f"({config.output_dir})")
                continue
            if not list_checkpoints(Path(config.output_dir)):  # stopped before its first checkpoint:
                # start it again, keeping a finished cache (its files are written whole) and nothing else
                config, allow = config.replace(resume=None, overwrite=True), (*allow, "cache")
        say(f"== {config.stage}{' ' + config.expert if config.expert else ''} -> {config.output_dir}")
        result = Trainer(config, command=command, allow_existing=allow).train()
        results.append(result)
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in result.val_metrics.items())
        say(f"   {result.step} steps in {result.wall_time:.1f} s; final val: {metrics}; weights: {result.final_dir}")
    if export and main_process:
        if len(runs) > 1 and runs[-1][0].stage != "expert":
            raise ValueError("--export needs a single-run command (use `mofrr-train export RUN DIR` per run)")
        dest = export_run(runs[-1][0].output_dir, export, overwrite=runs[-1][0].overwrite, command=command)
        print(f"exported to {dest}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return list_experts()
    command = shlex.join(["mofrr-train", *argv])
    subcommand = argv[0] if argv[0] in SUBCOMMANDS else None
    parser = SUBCOMMANDS[subcommand]() if subcommand else build_parser()
    args = parser.parse_args(argv[1:] if subcommand else argv)
    format_warning = warnings.formatwarning
    with warnings.catch_warnings():
        if not args.verbose:
            one_line_warnings()
        try:
            return run_reporting_errors(lambda: run_command(args, subcommand, command), args.verbose,
                                        interrupted="interrupted (resume with --resume latest)")
        finally:
            warnings.formatwarning = format_warning


SUBCOMMANDS = {"export": build_export_parser, "calibrate": build_calibrate_parser}


def run_command(args: argparse.Namespace, subcommand: str | None, command: str) -> int:
    """``mofrr-train export RUN DIR``, ``mofrr-train calibrate ROUTER``, or the runs ``args`` plans."""
    if subcommand == "calibrate" and args.view:
        from mofrr_core.train.calibrate import calibrate_view, describe_view_fit

        fit = calibrate_view(args.router, args.data, args.view, n=args.n, write=not args.dry_run,
                             max_false_calls=args.max_false_calls, max_any_calls=args.max_any_calls,
                             realign=args.realign, postprocess=args.postprocess, gates=args.gates,
                             reframe=args.reframe, false_calls_on=args.false_calls_on,
                             recalibrate=args.recalibrate)
        print(describe_view_fit(fit) + ("" if args.dry_run else f" (written to {Path(args.router) / 'config.json'})"))
        return 0
    if subcommand == "calibrate":
        from mofrr_core.train.calibrate import calibrate_router, describe_fit

        if args.gates or args.reframe or args.recalibrate:
            raise ValueError("--gates, --reframe and --recalibrate go with --view")

        fit = calibrate_router(args.router, args.data, n=args.n, write=not args.dry_run,
                               max_false_calls=args.max_false_calls, realign=args.realign, group_by=args.group_by,
                               false_calls_on=args.false_calls_on, max_any_calls=args.max_any_calls,
                               postprocess=args.postprocess)
        print(describe_fit(fit) + ("" if args.dry_run else f" (written to {Path(args.router) / 'config.json'})"))
        return 0
    if subcommand == "export":
        from mofrr_core.train.export import export_run

        dest = export_run(args.run, args.destination, overwrite=args.overwrite, command=command, which=args.which)
        print(f"exported {args.run}/{args.which} to {dest} (+ TRAINING.md, training.json)")
        return 0
    if args.recipe:
        from mofrr_core.train.recipe import recipe_command

        return recipe_command(args, build_parser().parse_args([]), command)
    if args.dry_run:
        raise ValueError("--dry-run goes with --recipe")
    run_plan(plan(args), export=args.export, command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
