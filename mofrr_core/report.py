"""Forensic report of one restoration: JSON facts plus a difference heatmap and a side-by-side.

``write_report(dir, stem, input, restored, info)`` writes, atomically:

- ``<stem>.json``: ``info`` (what :func:`report_info` gathers: detected types
  with router probabilities, degree per type, experts run, DDIM steps, seed, weights sha256) plus
  ``difference`` statistics, ``heatmap`` scale, ``versions`` and ``files``; ``timings`` (if given)
  is always the last key, so a report is reproducible apart from it.
- ``<stem>.heatmap.png``: ``|restored - input|`` (mean over RGB, 8-bit levels) over the face
  region, colour-mapped with a fixed scale (``0..HEATMAP_VMAX`` levels, inferno) so heatmaps of
  different images compare.
- ``<stem>.side_by_side.png``: input | restored | heatmap, labelled.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mofrr_core.io import file_sha256, save_image_atomic, write_bytes_atomic

if TYPE_CHECKING:
    from mofrr_core.pipeline import Pipeline
    from mofrr_core.restore import RestoreResult

# 12: grid_native, faces[].router_view native-grid; 11: undo_enlargement, faces[].saved_scale;
# 10: grid_gates, faces[].jpeg_grid; 9: keep_low_frequencies, skip_combine;
# 8: faces[].gate_thresholds (a router calibrated per view); 7: confounded_gates; 6: change_cap, router_native_range;
# 5: gate_blend; 4: faces[].gate_views; 3: faces[].router_view; 2: gate_thresholds, offsets out
REPORT_VERSION = 12
HEATMAP_VMAX = 32.0
"""Difference (8-bit levels, mean over RGB) shown at the top of the colour scale."""
HEATMAP_CMAP = "inferno"
PANEL_MAX = 512  # longest side of each panel in the PNGs (larger regions are shrunk with area averaging)
PANEL_MIN = 256  # shorter panels are enlarged (nearest neighbour, whole factors) so small crops stay visible
LABEL_HEIGHT = 22


@dataclass(frozen=True)
class ReportFiles:
    """The three files of one image's report."""

    json: Path
    heatmap: Path
    side_by_side: Path

    def paths(self) -> list[Path]:
        return [self.json, self.heatmap, self.side_by_side]


def report_paths(directory: str | Path, stem: str) -> ReportFiles:
    """Where the report of the image named ``stem`` goes in ``directory``."""
    directory = Path(directory)
    return ReportFiles(directory / f"{stem}.json", directory / f"{stem}.heatmap.png",
                       directory / f"{stem}.side_by_side.png")


def difference_map(image: np.ndarray, restored: np.ndarray) -> np.ndarray:
    """``|restored - input|`` per pixel, mean over RGB, float32 ``[H, W]`` in 8-bit levels."""
    if image.shape != restored.shape:
        raise ValueError(f"input {image.shape} and restored {restored.shape} differ in shape")
    return np.abs(restored.astype(np.int16) - image.astype(np.int16)).mean(axis=2, dtype=np.float32)


def difference_stats(image: np.ndarray, restored: np.ndarray) -> dict[str, float]:
    """Mean / max / 99th percentile of the difference and the fraction of changed pixels (whole image)."""
    diff = np.abs(restored.astype(np.int16) - image.astype(np.int16)).max(axis=2)
    mean = difference_map(image, restored)
    return {
        "mean_abs": round(float(mean.mean()), 4),
        "p99_abs": round(float(np.percentile(mean, 99)), 4),
        "max_abs": int(diff.max()),
        "changed_fraction": round(float((diff > 0).mean()), 6),
    }


@lru_cache(maxsize=4)
def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    return np.round(colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def colorize(values: np.ndarray, vmax: float = HEATMAP_VMAX, cmap: str = HEATMAP_CMAP) -> np.ndarray:
    """``[H, W]`` values in ``[0, vmax]`` -> uint8 ``HxWx3`` through a matplotlib colour map (no pyplot)."""
    index = np.clip(np.asarray(values, dtype=np.float32) / float(vmax) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return _lut(cmap)[index]


def _panel(array: np.ndarray, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    height, width = array.shape[:2]
    if max(height, width) > PANEL_MAX:
        scale = PANEL_MAX / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(array, size, interpolation=interpolation)
    factor = max(1, PANEL_MIN // max(1, min(height, width)))
    if factor > 1:
        return cv2.resize(array, (width * factor, height * factor), interpolation=cv2.INTER_NEAREST)
    return array


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((LABEL_HEIGHT, panel.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(strip, text, (4, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, panel], axis=0)


def side_by_side(image: np.ndarray, restored: np.ndarray, heatmap: np.ndarray, labels: bool = True) -> np.ndarray:
    """input | restored | heatmap (all the same size), 4 px white gaps, optional labels on top."""
    panels = [image, restored, heatmap]
    if labels:
        names = ["input", "restored", f"|restored - input|, 0..{HEATMAP_VMAX:g} levels"]
        panels = [_label(p, n) for p, n in zip(panels, names)]
    gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def environment_versions() -> dict[str, str]:
    """Versions of MoFRR and of the libraries that shape a result."""
    import diffusers
    import PIL
    import torch

    from mofrr_core import __version__

    return {"mofrr": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "diffusers": diffusers.__version__, "numpy": np.__version__, "pillow": PIL.__version__,
            "opencv": cv2.__version__}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return np.asarray(value).tolist() if isinstance(value, np.ndarray) else list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_report(directory: str | Path, stem: str, image: np.ndarray, restored: np.ndarray, info: dict[str, Any],
                 *, region: tuple[int, int, int, int] | None = None, overwrite: bool = False) -> ReportFiles:
    """Write ``<stem>.json``, ``<stem>.heatmap.png`` and ``<stem>.side_by_side.png`` into ``directory``.

    ``region`` ``(x0, y0, x1, y1)`` is the face area the PNGs show (default: the whole image);
    difference statistics cover the whole image. Every file is written atomically; an existing
    one raises ``FileExistsError`` unless ``overwrite``.
    """
    files = report_paths(directory, stem)
    if not overwrite:
        for path in files.paths():
            if path.exists():
                raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    height, width = image.shape[:2]
    x0, y0, x1, y1 = region if region is not None else (0, 0, width, height)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        x0, y0, x1, y1 = 0, 0, width, height
    face_in, face_out = image[y0:y1, x0:x1], restored[y0:y1, x0:x1]
    heat = colorize(_panel(difference_map(face_in, face_out)))
    heatmap_png = heat
    panels = side_by_side(_panel(face_in), _panel(face_out), heat)

    timings = info.get("timings")
    body = {key: value for key, value in info.items() if key != "timings"}
    report = {
        "report_version": REPORT_VERSION,
        **body,
        "region": [x0, y0, x1, y1],
        "difference": difference_stats(image, restored),
        "heatmap": {"quantity": "mean over RGB of |restored - input|, 8-bit levels", "vmax": HEATMAP_VMAX,
                    "colormap": HEATMAP_CMAP},
        "restored_pixels_sha256": _pixels_sha256(restored),
        "versions": environment_versions(),
        "files": {"heatmap": files.heatmap.name, "side_by_side": files.side_by_side.name},
    }
    if timings is not None:
        report["timings"] = timings
    written: list[Path] = []
    try:
        for path, array in ((files.heatmap, heatmap_png), (files.side_by_side, panels)):
            save_image_atomic(array, path, overwrite=overwrite)
            written.append(path)
        text = json.dumps(report, indent=2, default=_jsonable) + "\n"
        write_bytes_atomic(text.encode(), files.json, overwrite=overwrite)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return files


def _pixels_sha256(array: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).hexdigest()


def report_info(pipeline: Pipeline, args: argparse.Namespace, src: Path, dst: Path,
                result: RestoreResult) -> dict[str, Any]:
    """Everything the report JSON says about one restored image (timings last, unless --no-timings)."""
    from mofrr_core.plugins import get_experts

    registered = get_experts()
    height, width = result.image.shape[:2]
    detected = sorted({t for face in result.faces for t in face["detected"]})
    info: dict[str, Any] = {
        "input": str(src),
        "input_sha256": file_sha256(src),
        "output": str(dst),
        "image_size": [width, height],
        "mode": "aligned" if args.aligned else "whole-photo",
        "detected_types": detected,
        "faces": result.faces,
        "ddim_steps": args.steps or pipeline.num_inference_steps,
        "seed": args.seed,
        "threshold": pipeline.threshold,
        "gate_thresholds": {t: round(v, 4) for t, v in pipeline.gate_thresholds.items()},
        "gate_blend": pipeline.gate_blend,
        "change_cap": pipeline.change_cap,
        "confounded_gates": pipeline.confounded_gates,
        "grid_gates": pipeline.grid_gates,
        "undo_enlargement": pipeline.undo_enlargement,
        "keep_low_frequencies": pipeline.keep_low_frequencies,
        "skip_combine": list(pipeline.skip_combine),
        "router_native_range": list(pipeline.router_native_range),
        "grid_native": pipeline.grid_native,
        "resolution": pipeline.resolution,
        "experts": [{"name": s.name, "retouch_type": s.retouch_type, "strength": s.strength,
                     "package": registered[s.name].distribution if s.name in registered else None,
                     "version": registered[s.name].version if s.name in registered else None}
                    for s in pipeline.experts],
        "weights_sha256": dict(sorted(pipeline.weights.items())),
    }
    if not args.no_timings:
        info["timings"] = {k: round(v, 4) for k, v in result.timings.items()}
    return info
