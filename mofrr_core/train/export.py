"""Export a finished run's EMA weights into an expert package (``weights/`` or ``gate/``) with provenance."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from mofrr_core.registry import sha256_of, weight_file
from mofrr_core.train.plots import read_jsonl
from mofrr_core.train.run_folder import SUMMARY_FILE

EXPORT_JSON = "training.json"
EXPORT_MD = "TRAINING.md"


class ExportError(RuntimeError):
    """The run cannot be exported there (missing run files, or existing weights without --overwrite)."""


# where pip puts a package that is installed, not linked to its source (pip install -e)
INSTALLED_DIRS = {"site-packages", "dist-packages"}


def package_folder(summary: dict[str, Any]) -> Path:
    """Where ``--export package`` writes: the expert package's ``weights/`` (or ``gate/`` for a gate run)."""
    from mofrr_core.plugins import get_expert

    stage, expert = summary.get("stage"), summary.get("expert")
    if stage not in ("expert", "shared", "gate") or not expert:
        raise ExportError(f"a {stage} run has no expert package; give the destination folder explicitly")
    spec = get_expert(expert)
    if spec.weights is None:
        raise ExportError(f"expert {expert!r} declares no weights folder; give the destination folder explicitly")
    return spec.weights.parent / "gate" if stage == "gate" else spec.weights


def best_val_metrics(run_dir: Path, step: int | None) -> dict[str, float]:
    """The validation metrics logged at ``step`` (from ``metrics.jsonl``)."""
    rows = read_jsonl(run_dir / "metrics.jsonl") if step is not None else []
    return {k: v for row in rows if row.get("step") == step for k, v in row.items()
            if k.startswith("val_") and isinstance(v, float)}


def render_markdown(info: dict[str, Any]) -> str:
    """``TRAINING.md``: how these weights were made, human-readable."""
    val = info.get("final_val") or {}
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in val.items()) or "| (none) | |"
    best = "\n".join(f"| {k} | {v:.4f} |" for k, v in (info.get("best_val_metrics") or {}).items())
    data = info.get("train_data") or {}
    lines = [
        f"# Training record: {info.get('stage')} {info.get('expert') or ''}".rstrip(),
        "",
        "These weights were trained with `mofrr-train` and exported with their provenance.",
        "",
        "Command:",
        "",
        "```bash",
        str(info.get("command")),
        *(f"{r['command']}  # resumed at step {r['step']}" for r in info.get("resumed") or ()),
        "```",
        "",
        "| field | value |",
        "|---|---|",
        f"| stage | {info.get('stage')} |",
        f"| expert | {info.get('expert')} |",
        f"| training preset | {info.get('config', {}).get('preset')} |",
        f"| model preset | {info.get('model_preset')} |",
        f"| resolution | {info.get('config', {}).get('resolution')} |",
        f"| data root | {info.get('data_root')} |",
        f"| training data | {data.get('type')}: {data.get('samples')} samples, {data.get('faces', '?')} faces |",
        f"| validation data | {(info.get('val_data') or {}).get('samples')} samples (fixed seed) |",
        f"| steps | {info.get('steps')} |",
        f"| exported weights | {info.get('exported_weights', 'final')} (best step {info.get('best_step')}, "
        f"{info.get('best_metric')} {info.get('best_val')}) |",
        f"| wall time | {info.get('wall_time_s')} s on {info.get('num_processes')} process(es) |",
        f"| git commit | {info.get('git_commit')} |",
        f"| mofrr version | {info.get('mofrr_version')} |",
        f"| weights file | {info.get('weights_file')} |",
        f"| sha256 | `{info.get('sha256')}` |",
        "",
        "Final validation metrics (EMA weights; PSNR/SSIM of the restored output and of the input):",
        "",
        "| metric | value |",
        "|---|---|",
        metrics,
        "",
    ]
    if best:
        lines += ["Validation metrics at the best step (the exported weights):", "", "| metric | value |", "|---|---|",
                  best, ""]
    init = (info.get("config") or {}).get("init_weights")
    if init:
        lines += [f"Fine-tuned from `{init}` (`--init-weights`); the record of those weights follows.", ""]
        previous = info.get("started_from")
        if previous:
            lines += ["#" + line if line.startswith("#") else line for line in render_markdown(previous).splitlines()]
            lines.append("")
    return "\n".join(lines)


def run_record(run_dir: Path, which: str) -> dict[str, Any]:
    """A run's summary as the record of its ``which`` folder (``final`` or ``best``, with the best step's metrics)."""
    record = {**json.loads((run_dir / SUMMARY_FILE).read_text()), "exported_weights": which}
    if which == "best":
        record["best_val_metrics"] = best_val_metrics(run_dir, record.get("best_step"))
    return record


def previous_record(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The record of the weights a fine-tuning run started from (``--init-weights``), if any.

    A run records it when it starts (``started_from``), while ``--init-weights`` still holds what was
    loaded. Otherwise it is read now: exported weights carry their ``training.json``; a run's own
    ``final/`` or ``best/`` folder has none, and its run's summary stands in for it (with the best
    step's metrics for ``best/``), followed in turn by the record of the weights *that* run started from.
    """
    if summary.get("started_from"):
        return summary["started_from"]
    init = (summary.get("config") or {}).get("init_weights")
    if not init:
        return None
    folder = Path(init)
    if (folder / EXPORT_JSON).is_file():
        return json.loads((folder / EXPORT_JSON).read_text())
    run_summary = folder.parent / SUMMARY_FILE
    if folder.name not in ("final", "best") or not run_summary.is_file():
        return None
    record = {**run_record(folder.parent, folder.name), "exported_from": str(folder.parent.resolve())}
    weights = next(folder.glob("*.safetensors"), None)
    if weights is not None:
        record.update(weights_file=weights.name, sha256=sha256_of(weights))
    earlier = previous_record(record)
    if earlier is not None:
        record["started_from"] = earlier
    return record


def export_run(run_dir: str | Path, destination: str | Path, overwrite: bool = False,
               command: str | None = None, which: str = "final") -> Path:
    """Copy ``run_dir/<which>`` (EMA weights) to ``destination`` and write ``training.json`` + ``TRAINING.md``.

    ``which`` is ``final`` (last step) or ``best`` (best validation step). ``destination="package"``
    means the expert package's own ``weights/`` (``gate/`` for a gate run). Existing weights are
    refused unless ``overwrite``. Returns the destination folder.
    """
    if which not in ("final", "best"):
        raise ExportError(f"which: expected 'final' or 'best', got {which!r}")
    run_dir = Path(run_dir)
    final = run_dir / which
    summary_file = run_dir / SUMMARY_FILE
    if not (final / "config.json").is_file() or not summary_file.is_file():
        raise ExportError(f"{run_dir}: not a finished mofrr-train run (needs {which}/config.json and {SUMMARY_FILE})")
    summary = run_record(run_dir, which)
    if str(destination) == "package":
        dest = package_folder(summary)
        if INSTALLED_DIRS & set(dest.resolve().parts):
            warnings.warn(f"'package' is the installed copy of the expert package ({dest}); a source checkout's "
                          "experts/ folder is not changed. Give that folder as the destination to update it, or "
                          "install the package with pip install -e", stacklevel=2)
    else:
        dest = Path(destination)
    if dest.resolve() == final.resolve():
        raise ExportError(f"{dest}: is the run's own final/ folder")
    existing = [p for p in (dest.glob("*.safetensors") if dest.is_dir() else [])] + \
        [p for p in (dest / "config.json", dest / EXPORT_JSON) if p.is_file()]
    if existing and not overwrite:
        raise ExportError(f"{dest} already holds weights ({', '.join(sorted(p.name for p in existing))}); "
                          "pass --overwrite to replace them")
    started_from = previous_record(summary)  # read before ``dest`` (often the same folder) is replaced
    if started_from is not None:
        summary["started_from"] = started_from
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.safetensors"):
        old.unlink()
    for item in final.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    weights = weight_file(dest)
    info = {**summary, "weights_file": weights.name, "sha256": sha256_of(weights),
            "exported_from": str(run_dir.resolve()), "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if command:
        info["export_command"] = command
    (dest / EXPORT_JSON).write_text(json.dumps(info, indent=2) + "\n")
    (dest / EXPORT_MD).write_text(render_markdown(info))
    return dest
