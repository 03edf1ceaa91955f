"""Training logs: ``metrics.jsonl`` -> ``metrics.csv`` and a loss / validation curve ``curves.png``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` (missing file: empty list)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_jsonl(path: Path, max_step: int) -> None:
    """Drop records after ``max_step`` (a resumed run rewrites what came after its checkpoint)."""
    records = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= max_step]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def write_csv(records: list[dict[str, Any]], path: Path) -> None:
    """All records as one CSV (union of the keys; empty cells where a record lacks a key)."""
    keys: list[str] = []
    for record in records:
        keys += [k for k in record if k not in keys]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(records)


def plot_curves(records: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Training loss and the main validation metric (vs the input's, when there is one) over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("kind") == "train" and "loss" in r]
    val = [r for r in records if r.get("kind") == "val"]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1)
    ax_loss.set(xlabel="step", ylabel="training loss", title="loss")
    ax_loss.grid(alpha=0.3)
    if val and "val_psnr" in val[0]:
        steps = [r["step"] for r in val]
        ax_val.plot(steps, [r["val_psnr"] for r in val], marker="o", label="restored")
        ax_val.plot(steps, [r["val_psnr_input"] for r in val], ls="--", label="input")
        ax_val.set(ylabel="val PSNR (dB)", title="validation PSNR")
        ax_val.legend()
    elif val:
        key = next((k for k in ("val_f1", "val_accuracy") if k in val[0]), None)
        if key:
            ax_val.plot([r["step"] for r in val], [r[key] for r in val], marker="o")
            ax_val.set(ylabel=key, title=f"validation {key[4:]}")
    ax_val.set(xlabel="step")
    ax_val.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
