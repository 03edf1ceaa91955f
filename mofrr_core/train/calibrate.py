"""``mofrr-train calibrate ROUTER_DIR``: temperature scaling of a trained router on held-out validation pairs.

The forensic report prints the router's probabilities, so they should mean what they say. One temperature
``T`` (``sigmoid(logit / T)``) fitted by maximum likelihood keeps every decision at the 0.5 threshold and
fixes over- or under-confidence. It is fitted on the validation split, retouched with the held-out
implementations (never on test faces), and written into the router's ``config.json``; the weights file, and
so its sha256 in registry.yaml, does not change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mofrr_core.eval.detection import expected_calibration_error, fit_temperature


@torch.no_grad()
def router_logits(router: torch.nn.Module, dataset: Any, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Raw logits (the router's own temperature undone) and labels of every sample of ``dataset``."""
    logits, labels = [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        logits.append((router(torch.stack([s["retouched"] for s in items])) * router.config.temperature).numpy())
        labels.append(torch.stack([s["labels"] for s in items]).numpy() > 0.5)
    return np.concatenate(logits), np.concatenate(labels)


def calibrate_router(router_dir: str | Path, data_root: str | Path | None, n: int = 512, seed: int = 4321,
                     apis_set: str = "heldout", write: bool = True) -> dict[str, float]:
    """Fit the temperature of the router saved in ``router_dir``; write it to its config.json if ``write``."""
    from mofrr_core.data import RetouchPairs
    from mofrr_core.data.cache import CachedPairs
    from mofrr_core.train.stages import load_network

    folder = Path(router_dir)
    router = load_network(folder, "Router").eval()
    size = router.face_size or router.config.input_size or 128
    pairs = RetouchPairs(data_root, split="val", resolution=size, num_ops=(0, 4), types=router.types, seed=seed,
                         length=n, p_clean=0.25, p_single=0.6, apis_set=apis_set)
    logits, labels = router_logits(router, CachedPairs(pairs, n, mirror=False, desc="retouching calibration pairs"))
    temperature = fit_temperature(logits, labels)
    before = expected_calibration_error(1 / (1 + np.exp(-logits)), labels)
    after = expected_calibration_error(1 / (1 + np.exp(-logits / temperature)), labels)
    if write:
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text())
        config["temperature"] = round(float(temperature), 4)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return {"temperature": float(temperature), "ece_before": before, "ece_after": after, "n": float(len(labels))}
