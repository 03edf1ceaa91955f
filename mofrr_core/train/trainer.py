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
import shutil
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
from mofrr_core.train.run_folder import (
    RUN_FILE,
    SUMMARY_FILE,
    command_line,
    continued_record,
    data_root,
    dataset_info,
    find_checkpoint,
    git_commit,
    list_checkpoints,
    prepare_output_dir,
)
from mofrr_core.train.stages import Stage, load_network, make_stage, nan_guard, public_config


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


@dataclass
class RunState:
    """What one run's setup builds and its loop and finish use."""

    wrapper: nn.Module
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    train_loader: DataLoader
    val_loader: DataLoader
    ema: EMA
    noise: GeneratorState
    progress: Progress
    info: dict[str, Any]  # the run record (run.json / training.json)
    eval_net: nn.Module | None = None


class LossModule(nn.Module):
    """Wraps the trained network so that ``forward`` is the stage's loss (what DDP needs to wrap)."""

    def __init__(self, stage: Stage, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self._stage = stage

    def forward(self, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        return self._stage.loss(self.net, batch, generator)


# config keys that change no weight: a network may start from trained weights that differ in them (a calibrated
# router's temperature, offsets and view rescalings too: fine-tuning trains raw logits, `mofrr-train calibrate` fits
# new ones afterwards)
TRAINING_ONLY_KEYS = {"train_degree", "num_inference_steps", "use_idem", "use_degree", "use_hfcam", "use_warp",
                      "use_refinement", "temperature", "gate_offsets", "view_gate_offsets", "view_calibration"}


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
        start = time.perf_counter()
        run = self._setup()
        self._resume_and_record(run)
        run.info["setup_time_s"] = round(time.perf_counter() - start, 2)  # pairs, caches (this process)
        val_metrics = self._loop(run)
        return self._finish(run, val_metrics)

    def _setup(self) -> RunState:
        """Accelerator, output folder, threads, the network, datasets, loaders, optimizer, EMA and RNG state."""
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
        return RunState(wrapper, optimizer, params, train_loader, val_loader, ema, noise, progress,
                        {"train_data": dataset_info(train_ds), "val_data": dataset_info(val_ds)})

    def _resume_and_record(self, run: RunState) -> None:
        """Load ``--resume``'s checkpoint, then write (or extend) ``run.json``."""
        cfg, accelerator, stage = self.config, self.accelerator, self.stage
        checkpoint = None
        if cfg.resume:
            checkpoint = find_checkpoint(self.output_dir, cfg.resume)
            accelerator.load_state(str(checkpoint))
            accelerator.print(f"resumed from {checkpoint} at step {run.progress.step}")
            if accelerator.is_main_process:
                truncate_jsonl(self.output_dir / "metrics.jsonl", run.progress.step)
        data_info = run.info
        run.info = {"stage": cfg.stage, "expert": stage.spec.name if stage.spec else cfg.expert,
                    "command": self.command, "mofrr_version": __version__, "git_commit": git_commit(),
                    "model_preset": stage.model_preset, "config": cfg.to_dict(),
                    "num_processes": accelerator.num_processes, "data_root": data_root(cfg), **data_info}
        if cfg.init_weights and checkpoint is None:  # what was loaded, before its folder can change
            from mofrr_core.train.export import previous_record

            started_from = previous_record(run.info)
            if started_from is not None:
                run.info["started_from"] = started_from
        if accelerator.is_main_process and checkpoint is None:
            (self.output_dir / RUN_FILE).write_text(json.dumps({**run.info, "expert": cfg.expert}, indent=2) + "\n")
        elif accelerator.is_main_process:  # record how it was continued (from this run or another run's checkpoint)
            record = continued_record(self.output_dir / RUN_FILE, checkpoint, {**run.info, "expert": cfg.expert})
            record["resumed"].append({"command": self.command, "step": run.progress.step,
                                      "max_steps": cfg.max_steps, "checkpoint": str(checkpoint)})
            (self.output_dir / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
            run.info.update(command=record.get("command", self.command), resumed=record["resumed"])
        run.eval_net = run.ema.averaged_model(accelerator.unwrap_model(run.wrapper).net).requires_grad_(False)

    def _loop(self, run: RunState) -> dict[str, float]:
        """Train to ``max_steps``: steps, EMA updates, logs, validations and checkpoints; the last validation."""
        cfg, accelerator, progress = self.config, self.accelerator, run.progress
        val_metrics: dict[str, float] = {}
        start_time, window, last_log = time.perf_counter(), [], (time.perf_counter(), progress.step)
        base_wall = progress.wall_time
        pbar = tqdm(total=cfg.max_steps, initial=progress.step, desc=f"train {self.stage.describe()}",
                    disable=not accelerator.is_local_main_process, dynamic_ncols=True)
        run.wrapper.train()
        while progress.step < cfg.max_steps:
            run.train_loader.set_epoch(progress.epoch)
            loader = run.train_loader
            if progress.batch_in_epoch:
                loader = accelerator.skip_first_batches(run.train_loader, progress.batch_in_epoch)
            for batch in loader:
                loss, logs = self._step(run, batch)
                progress.batch_in_epoch += 1
                window.append({"loss": float(loss.detach()), **logs})
                if not accelerator.sync_gradients:
                    continue
                progress.step += 1
                nan_guard(loss.detach(), progress.step)
                run.ema.update(accelerator.unwrap_model(run.wrapper).net)
                progress.wall_time = base_wall + time.perf_counter() - start_time
                pbar.update(1)
                pbar.set_postfix(loss=f"{window[-1]['loss']:.4f}")
                done = progress.step >= cfg.max_steps
                if progress.step % max(1, cfg.log_every) == 0 or done:
                    last_log = self._log_train(run, window, last_log)
                    window = []
                if progress.step % max(1, cfg.val_every) == 0 or done:
                    val_metrics = self._validation(run)
                    pbar.write(f"step {progress.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in val_metrics.items()))
                    run.wrapper.train()
                if progress.step % max(1, cfg.checkpoint_every) == 0 or done:
                    self._checkpoint(progress)
                if done:
                    break
            else:
                progress.epoch += 1
                progress.batch_in_epoch = 0
        pbar.close()
        return val_metrics

    def _step(self, run: RunState, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """One forward/backward pass (an optimizer step once the gradients are accumulated)."""
        with self.accelerator.accumulate(run.wrapper):
            loss, logs = run.wrapper(batch, run.noise.generator)
            self.accelerator.backward(loss)
            if self.accelerator.sync_gradients and self.config.grad_clip:
                self.accelerator.clip_grad_norm_(run.params, self.config.grad_clip)
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
        return loss, logs

    def _log_train(self, run: RunState, window: list[dict[str, float]],
                   last_log: tuple[float, int]) -> tuple[float, int]:
        """Log the mean of every loss term over ``window`` and the speed since ``last_log``; the new mark."""
        now, progress = time.perf_counter(), run.progress
        record = {"kind": "train", "step": progress.step, "epoch": progress.epoch,
                  "lr": run.optimizer.param_groups[0]["lr"],
                  "it_s": (progress.step - last_log[1]) / max(now - last_log[0], 1e-9)}
        record.update({k: sum(w[k] for w in window if k in w) / sum(k in w for w in window)
                       for k in dict.fromkeys(k for w in window for k in w)})
        self._log(record)
        return now, progress.step

    def _validation(self, run: RunState) -> dict[str, float]:
        """Validate the EMA weights, log the metrics and keep ``best/`` when the stage's metric improved."""
        progress = run.progress
        run.ema.copy_to(run.eval_net)
        val_metrics = self.validate(run.eval_net, run.val_loader)
        self._log({"kind": "val", "step": progress.step, **{f"val_{k}": v for k, v in val_metrics.items()}})
        value = val_metrics.get(self.stage.best_metric)
        if value is not None and (progress.best is None or value > progress.best):
            progress.best, progress.best_step = value, progress.step
            if self.accelerator.is_main_process:
                self._save_pretrained(run.eval_net, self.output_dir / "best")
        return val_metrics

    def _finish(self, run: RunState, val_metrics: dict[str, float]) -> TrainResult:
        """Save ``final/`` (the EMA weights), metrics.csv, curves.png and ``training.json``."""
        accelerator, progress, stage = self.accelerator, run.progress, self.stage
        accelerator.wait_for_everyone()
        final_dir = self.output_dir / "final"
        run.ema.copy_to(run.eval_net)
        if not val_metrics:  # resumed at (or past) max_steps: still report the final weights
            val_metrics = self.validate(run.eval_net, run.val_loader)
        if accelerator.is_main_process:
            self._save_pretrained(run.eval_net, final_dir)
            records = read_jsonl(self.output_dir / "metrics.jsonl")
            write_csv(records, self.output_dir / "metrics.csv")
            plot_curves(records, self.output_dir / "curves.png", title=f"{stage.describe()} ({stage.model_preset})")
            summary = {**run.info, "steps": progress.step, "wall_time_s": round(progress.wall_time, 2),
                       "final_val": val_metrics, "best_val": progress.best, "best_step": progress.best_step,
                       "best_metric": stage.best_metric}
            (self.output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        accelerator.wait_for_everyone()
        best_dir = self.output_dir / "best"
        return TrainResult(self.output_dir, final_dir, best_dir if best_dir.is_dir() else None, progress.step,
                           progress.wall_time, val_metrics)
