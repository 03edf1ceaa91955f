"""The training loop: one stage, accelerate everywhere, EMA, checkpoints, exact resume, metrics.

The same code runs on the CPU (``mofrr-train ...``) and on several GPUs
(``accelerate launch --multi_gpu -m mofrr_core.train.cli ...``): the model, optimizer and data
loaders go through ``accelerator.prepare``, gradients through ``accelerator.accumulate`` /
``clip_grad_norm_``, validation metrics through ``gather_for_metrics``, and checkpoints through
``save_state``/``load_state`` (the EMA, the noise generator and the loop position are registered
for checkpointing, so ``--resume`` continues bit-identically: same step, optimizer, EMA, RNG and
data order).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from mofrr_core import __version__
from mofrr_core.train.config import TrainConfig
from mofrr_core.train.ema import EMA, GeneratorState
from mofrr_core.train.plots import plot_curves, read_jsonl, truncate_jsonl, write_csv
from mofrr_core.train.stages import Stage, load_network, make_stage, nan_guard, public_config

RUN_FILE = "run.json"
SUMMARY_FILE = "training.json"
RUN_OUTPUTS = ("checkpoints", "final", "best", "cache", "metrics.jsonl", "metrics.csv", "curves.png", RUN_FILE,
               SUMMARY_FILE)


class OutputDirError(FileExistsError):
    """The output folder already holds something and neither --resume nor --overwrite was given."""


@dataclass
class TrainResult:
    """What a finished run produced."""

    output_dir: Path
    final_dir: Path
    best_dir: Path | None
    step: int
    wall_time: float
    val_metrics: dict[str, float] = field(default_factory=dict)


class EpochSampler(Sampler[int]):
    """A shuffled order that is a pure function of ``(seed, epoch)`` (no hidden RNG state)."""

    def __init__(self, length: int, seed: int = 0) -> None:
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())

    def __len__(self) -> int:
        return self.length


class Progress:
    """Loop position and bookkeeping, saved in every checkpoint (``register_for_checkpointing``)."""

    def __init__(self) -> None:
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.wall_time = 0.0

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self).update(state)


class LossModule(nn.Module):
    """Wraps the trained network so that ``forward`` is the stage's loss (what DDP needs to wrap)."""

    def __init__(self, stage: Stage, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self._stage = stage

    def forward(self, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        return self._stage.loss(self.net, batch, generator)


def command_line() -> str:
    """The command that started this process, shell-quoted."""
    program = Path(sys.argv[0]).name if sys.argv else "mofrr-train"
    if program in ("cli.py", "__main__.py", "-m", "-c"):
        program = "python -m mofrr_core.train.cli"
    return " ".join([program, *map(shlex.quote, sys.argv[1:])])


def git_commit() -> str | None:
    """The git commit of the source tree this package runs from (``None`` outside a checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def data_root(config: TrainConfig) -> str | None:
    """The face data folder this run reads (``--data``, ``MOFRR_DATA`` or the data engine's default)."""
    if config.data.get("type", "RetouchPairs") != "RetouchPairs":
        return None
    if config.data_root:
        return str(Path(config.data_root).resolve())
    if os.environ.get("MOFRR_DATA"):
        return str(Path(os.environ["MOFRR_DATA"]).resolve())
    try:
        from mofrr_core.data import default_data_root

        return str(default_data_root())
    except ImportError:
        return None


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(dataset).__name__, "samples": len(dataset)}
    for attr in ("num_faces", "faces"):
        value = getattr(dataset, attr, None)
        if isinstance(value, int):
            info["faces"] = value
        elif value is not None and hasattr(value, "__len__"):
            info["faces"] = len(value)
    return info


TRAINING_ONLY_KEYS = {"train_degree"}  # config keys that do not change the weights' shapes


def init_from(net: nn.Module, path: str | Path) -> None:
    """Load the trained weights of ``path`` (a ``save_pretrained`` folder of the same class and config)."""
    try:
        trained = load_network(path, type(net).__name__)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"--init-weights: {error}") from error
    theirs, ours = ({k: v for k, v in public_config(m).items() if k not in TRAINING_ONLY_KEYS} for m in (trained, net))
    differ = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    if set(differ) - set(getattr(net, "FINE_TUNE_KEYS", ())):
        raise ValueError(f"--init-weights {path}: its config differs from the network being trained in "
                         f"{', '.join(differ)} (same --model-preset?)")
    state = trained.state_dict()
    try:
        net.load_state_dict(net.adapt_state_dict(state) if differ else state)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"--init-weights {path}: {error}") from error


def default_threads(num_workers: int, num_processes: int = 1) -> int:
    """Intra-op threads on a CPU: the cores this process may use, minus one per data worker.

    Oversubscribing the cores is far worse than idling one: on the shared 2-core machine a
    WaveFRR step (cpu preset, 256 px, batch 4) took 16.0 s with 2 threads and 3.0 s with 1.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, num_processes) - num_workers)


def find_checkpoint(output_dir: Path, resume: str) -> Path:
    """``latest`` -> newest ``checkpoints/checkpoint-<step>``; otherwise the given folder."""
    if resume != "latest":
        path = Path(resume)
        if not path.is_dir():
            raise FileNotFoundError(f"--resume {resume}: no such checkpoint folder")
        return path
    checkpoints = list_checkpoints(output_dir)
    if not checkpoints:
        raise FileNotFoundError(f"--resume latest: no checkpoint in {output_dir / 'checkpoints'}")
    return checkpoints[-1]


def list_checkpoints(output_dir: Path) -> list[Path]:
    folder = output_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")
             and p.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))


def continued_record(run_file: Path, checkpoint: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """The run record a resumed run extends: its own ``run.json``, else that of the run the checkpoint
    comes from (``--resume RUN/checkpoints/checkpoint-N`` into a new folder), else ``fresh``."""
    origin = run_file if run_file.is_file() else checkpoint.parent.parent / RUN_FILE
    record = json.loads(origin.read_text()) if origin.is_file() else fresh
    record.setdefault("resumed", [])
    return record


def prepare_output_dir(output_dir: Path, config: TrainConfig, allow: tuple[str, ...] = ()) -> None:
    """Refuse a non-empty output folder unless resuming (same stage/expert) or ``overwrite``."""
    existing = [p for p in output_dir.iterdir() if p.name not in allow] if output_dir.is_dir() else []
    run_file = output_dir / RUN_FILE
    if config.resume:
        if run_file.is_file():
            previous = json.loads(run_file.read_text())
            if (previous.get("stage"), previous.get("expert")) != (config.stage, config.expert):
                raise OutputDirError(f"{output_dir} holds a {previous.get('stage')} run "
                                     f"(expert {previous.get('expert')}); cannot resume it as stage "
                                     f"{config.stage} (expert {config.expert})")
        return
    if not existing:
        return
    if not config.overwrite:
        names = ", ".join(sorted(p.name for p in existing)[:5])
        raise OutputDirError(f"output dir {output_dir} is not empty ({names}); pass --resume latest to continue "
                             "that run, --overwrite to replace it, or choose another --output-dir")
    for path in existing:
        if path.name in RUN_OUTPUTS:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


class Trainer:
    """Train one stage (see :mod:`mofrr_core.train.stages`) as ``config`` says.

    ``train_dataset`` / ``val_dataset`` replace the stage's datasets (tests, custom data).
    ``allow_existing`` names entries of the output folder that do not count as "a different run"
    (the ``all`` plan keeps its sub-runs there).
    """

    def __init__(self, config: TrainConfig, stage: Stage | None = None, train_dataset: Dataset | None = None,
                 val_dataset: Dataset | None = None, command: str | None = None,
                 allow_existing: tuple[str, ...] = ()) -> None:
        self.config = config
        self.stage = stage or make_stage(config)
        self._train_dataset = train_dataset
        self._val_dataset = val_dataset
        self.command = command or command_line()
        self.output_dir = Path(config.output_dir)
        self.allow_existing = allow_existing

    # -- helpers ---------------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        if self.accelerator.is_main_process:
            with (self.output_dir / "metrics.jsonl").open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    def _optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        options = dict(self.config.optimizer)
        type_name = options.pop("type")
        cls = getattr(torch.optim, type_name, None)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise ValueError(f"optimizer.type: unknown optimizer {type_name!r} (a torch.optim class, e.g. Adam)")
        if "betas" in options:
            options["betas"] = tuple(options["betas"])
        return cls(params, **options)

    @torch.no_grad()
    def validate(self, eval_net: nn.Module, val_loader: DataLoader) -> dict[str, float]:
        """Metrics of the EMA weights on the fixed validation subset, gathered from every process."""
        eval_net.eval()
        generator = torch.Generator(self.accelerator.device).manual_seed(self.config.val_seed)
        collected: dict[str, list[torch.Tensor]] = {}
        with self.accelerator.autocast():
            for batch in val_loader:
                values = self.stage.evaluate(eval_net, batch, generator)
                values = self.accelerator.gather_for_metrics({k: v.float() for k, v in values.items()})
                for key, value in values.items():
                    collected.setdefault(key, []).append(value.cpu())
        return self.stage.summarize({k: torch.cat(v) for k, v in collected.items()})

    def _save_pretrained(self, net: nn.Module, folder: Path) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        net.save_pretrained(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.replace(folder)

    def _checkpoint(self, progress: Progress) -> None:
        folder = self.output_dir / "checkpoints" / f"checkpoint-{progress.step}"
        self.accelerator.save_state(str(folder))
        if self.accelerator.is_main_process:
            (folder / "trainer_state.json").write_text(json.dumps(progress.state_dict(), indent=2) + "\n")
            for old in list_checkpoints(self.output_dir)[: -max(1, self.config.checkpoints_keep)]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()

    # -- the run ---------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        """Run the stage to ``max_steps`` (resuming if asked); torch's thread count is restored after."""
        threads = torch.get_num_threads()
        try:
            return self._train()
        finally:
            torch.set_num_threads(threads)

    def _train(self) -> TrainResult:
        cfg = self.config
        self.accelerator = accelerator = Accelerator(
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            mixed_precision=cfg.mixed_precision,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir)),
        )
        if accelerator.is_main_process:
            prepare_output_dir(self.output_dir, cfg, self.allow_existing)
            self.output_dir.mkdir(parents=True, exist_ok=True)
        accelerator.wait_for_everyone()
        set_seed(cfg.seed)
        if cfg.threads or accelerator.device.type == "cpu":
            torch.set_num_threads(cfg.threads or default_threads(cfg.num_workers, accelerator.num_processes))

        stage = self.stage
        net = stage.build_model()
        if cfg.init_weights and not cfg.resume:
            init_from(net, cfg.init_weights)
            stage.after_init(net)
        if cfg.channels_last:  # opt-in: within noise on the 2-core machine (docs/training.md)
            net = net.to(memory_format=torch.channels_last)
        stage.setup(accelerator, self.output_dir)
        train_ds = self._train_dataset if self._train_dataset is not None else stage.train_dataset()
        val_ds = self._val_dataset if self._val_dataset is not None else stage.val_dataset()
        per_step = cfg.batch_size * accelerator.num_processes
        if len(train_ds) < per_step:
            raise ValueError(f"training set has {len(train_ds)} samples, fewer than one batch ({per_step})")

        sampler = EpochSampler(len(train_ds), cfg.seed)
        workers = {"num_workers": cfg.num_workers, "persistent_workers": cfg.num_workers > 0}
        train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=True, **workers)
        val_loader = DataLoader(val_ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers)
        wrapper = LossModule(stage, net)
        params = [p for p in net.parameters() if p.requires_grad]
        optimizer = self._optimizer(params)
        wrapper, optimizer, train_loader, val_loader = accelerator.prepare(wrapper, optimizer, train_loader,
                                                                           val_loader)
        ema = EMA(net, cfg.ema.get("decay", 0.999), cfg.ema.get("warmup", True))
        noise = GeneratorState(cfg.seed * 1000 + accelerator.process_index, accelerator.device)
        progress = Progress()
        accelerator.register_for_checkpointing(ema, noise, progress)

        jsonl = self.output_dir / "metrics.jsonl"
        checkpoint = None
        if cfg.resume:
            checkpoint = find_checkpoint(self.output_dir, cfg.resume)
            accelerator.load_state(str(checkpoint))
            accelerator.print(f"resumed from {checkpoint} at step {progress.step}")
            if accelerator.is_main_process:
                truncate_jsonl(jsonl, progress.step)
        run_info = {"stage": cfg.stage, "expert": stage.spec.name if stage.spec else cfg.expert,
                    "command": self.command, "mofrr_version": __version__, "git_commit": git_commit(),
                    "model_preset": stage.model_preset, "config": cfg.to_dict(),
                    "num_processes": accelerator.num_processes, "data_root": data_root(cfg),
                    "train_data": dataset_info(train_ds), "val_data": dataset_info(val_ds)}
        if cfg.init_weights and checkpoint is None:  # what was loaded, before its folder can change
            from mofrr_core.train.export import previous_record

            started_from = previous_record(run_info)
            if started_from is not None:
                run_info["started_from"] = started_from
        if accelerator.is_main_process and checkpoint is None:
            (self.output_dir / RUN_FILE).write_text(json.dumps({**run_info, "expert": cfg.expert}, indent=2) + "\n")
        elif accelerator.is_main_process:  # record how it was continued (from this run or another run's checkpoint)
            record = continued_record(self.output_dir / RUN_FILE, checkpoint, {**run_info, "expert": cfg.expert})
            record["resumed"].append({"command": self.command, "step": progress.step, "max_steps": cfg.max_steps,
                                      "checkpoint": str(checkpoint)})
            (self.output_dir / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
            run_info.update(command=record.get("command", self.command), resumed=record["resumed"])

        unwrapped = accelerator.unwrap_model(wrapper).net
        eval_net = ema.averaged_model(unwrapped).requires_grad_(False)
        val_metrics: dict[str, float] = {}
        start_time, window, last_log = time.perf_counter(), [], (time.perf_counter(), progress.step)
        base_wall = progress.wall_time
        pbar = tqdm(total=cfg.max_steps, initial=progress.step, desc=f"train {stage.describe()}",
                    disable=not accelerator.is_local_main_process, dynamic_ncols=True)
        wrapper.train()
        while progress.step < cfg.max_steps:
            train_loader.set_epoch(progress.epoch)
            loader = train_loader
            if progress.batch_in_epoch:
                loader = accelerator.skip_first_batches(train_loader, progress.batch_in_epoch)
            for batch in loader:
                with accelerator.accumulate(wrapper):
                    loss, logs = wrapper(batch, noise.generator)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.grad_clip:
                        accelerator.clip_grad_norm_(params, cfg.grad_clip)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                progress.batch_in_epoch += 1
                window.append({"loss": float(loss.detach()), **logs})
                if not accelerator.sync_gradients:
                    continue
                progress.step += 1
                nan_guard(loss.detach(), progress.step)
                ema.update(accelerator.unwrap_model(wrapper).net)
                progress.wall_time = base_wall + time.perf_counter() - start_time
                pbar.update(1)
                pbar.set_postfix(loss=f"{window[-1]['loss']:.4f}")
                done = progress.step >= cfg.max_steps
                if progress.step % max(1, cfg.log_every) == 0 or done:
                    now = time.perf_counter()
                    record = {"kind": "train", "step": progress.step, "epoch": progress.epoch,
                              "lr": optimizer.param_groups[0]["lr"],
                              "it_s": (progress.step - last_log[1]) / max(now - last_log[0], 1e-9)}
                    record.update({k: sum(w[k] for w in window if k in w) / sum(k in w for w in window)
                                   for k in dict.fromkeys(k for w in window for k in w)})
                    self._log(record)
                    window, last_log = [], (now, progress.step)
                if progress.step % max(1, cfg.val_every) == 0 or done:
                    ema.copy_to(eval_net)
                    val_metrics = self.validate(eval_net, val_loader)
                    self._log({"kind": "val", "step": progress.step, **{f"val_{k}": v for k, v in val_metrics.items()}})
                    value = val_metrics.get(stage.best_metric)
                    if value is not None and (progress.best is None or value > progress.best):
                        progress.best, progress.best_step = value, progress.step
                        if accelerator.is_main_process:
                            self._save_pretrained(eval_net, self.output_dir / "best")
                    pbar.write(f"step {progress.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in val_metrics.items()))
                    wrapper.train()
                if progress.step % max(1, cfg.checkpoint_every) == 0 or done:
                    self._checkpoint(progress)
                if done:
                    break
            else:
                progress.epoch += 1
                progress.batch_in_epoch = 0
        pbar.close()

        accelerator.wait_for_everyone()
        final_dir = self.output_dir / "final"
        ema.copy_to(eval_net)
        if not val_metrics:  # resumed at (or past) max_steps: still report the final weights
            val_metrics = self.validate(eval_net, val_loader)
        if accelerator.is_main_process:
            self._save_pretrained(eval_net, final_dir)
            records = read_jsonl(jsonl)
            write_csv(records, self.output_dir / "metrics.csv")
            plot_curves(records, self.output_dir / "curves.png", title=f"{stage.describe()} ({stage.model_preset})")
            summary = {**run_info, "steps": progress.step, "wall_time_s": round(progress.wall_time, 2),
                       "final_val": val_metrics, "best_val": progress.best, "best_step": progress.best_step,
                       "best_metric": stage.best_metric}
            (self.output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        accelerator.wait_for_everyone()
        best_dir = self.output_dir / "best"
        return TrainResult(self.output_dir, final_dir, best_dir if best_dir.is_dir() else None, progress.step,
                           progress.wall_time, val_metrics)
