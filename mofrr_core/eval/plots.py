"""Figures of ``mofrr eval``: identity-similarity density (paper Fig. 6), montage, steps trade-off."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mofrr_core.io import save_image_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    return path


def density_curve(values: Sequence[float], grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE of ``values`` on ``grid`` (a narrow bump when all values are equal or only one)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size >= 2 and np.std(a) > 1e-6:
        from scipy.stats import gaussian_kde

        return gaussian_kde(a)(grid)
    bandwidth = 0.005  # degenerate sample: a narrow normal bump at its mean
    return np.exp(-0.5 * ((grid - a.mean()) / bandwidth) ** 2) / (bandwidth * np.sqrt(2 * np.pi))


def identity_density_plot(values: Mapping[str, Sequence[float]], path: str | Path, model: str) -> Path:
    """Fig. 6: probability density of the identity cosine (restored vs original) per method."""
    plt = _pyplot()
    path = Path(path)
    finite = [v for vs in values.values() for v in vs]
    low = max(-1.0, float(np.min(finite)) - 0.03) if finite else 0.5
    grid = np.linspace(low, 1.0, 400)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, vs in values.items():
        if len(vs):
            style = {"color": "tab:red", "linestyle": "--"} if name.startswith("Retouched") else {}
            ax.plot(grid, density_curve(vs, grid), label=f"{name} (n={len(vs)})", **style)
    ax.set_xlabel("cosine similarity to the original face")
    ax.set_ylabel("density")
    ax.set_title(f"Identity similarity ({model.split(' (')[0]})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    try:
        return _save_figure(fig, path)
    finally:
        plt.close(fig)


def abs_diff(a: np.ndarray, b: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """``|a - b| * gain`` as a uint8 image (differences are small: amplified to be visible)."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).astype(np.float32) * gain
    return np.clip(diff, 0, 255).astype(np.uint8)


def _wrap(text: str, width: int, lines: int = 2) -> list[str]:
    words, out = text.split(), [""]
    for word in words:
        candidate = f"{out[-1]} {word}".strip()
        if len(candidate) <= width or not out[-1]:
            out[-1] = candidate[:width]
        else:
            out.append(word[:width])
    return out[:lines]


def montage(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], path: str | Path,
            overwrite: bool = True, pad: int = 2, min_size: int = 128) -> Path:
    """Grid of uint8 images (one row per test image) under column titles; written atomically as PNG.

    Tiles smaller than ``min_size`` are enlarged by pixel repetition (nearest), so pixels stay visible.
    """
    if not rows:
        raise ValueError("montage: no rows")
    h, w = rows[0][0].shape[:2]
    scale = max(1, -(-min_size // max(h, w)))
    th, tw = h * scale, w * scale
    header = 26
    canvas = np.full((header + len(rows) * (th + pad), len(titles) * (tw + pad), 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            tile = image if image.shape[:2] == (h, w) else np.asarray(Image.fromarray(image).resize((w, h)))
            tile = np.repeat(np.repeat(tile, scale, axis=0), scale, axis=1)
            y, x = header + i * (th + pad), j * (tw + pad)
            canvas[y:y + th, x:x + tw] = tile
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for j, text in enumerate(titles):
        for k, line in enumerate(_wrap(text, max(4, tw // 6))):
            draw.text((j * (tw + pad) + 2, 1 + 12 * k), line, fill=(0, 0, 0))
    return save_image_atomic(picture, path, overwrite=overwrite)


def steps_plot(table: Mapping[int, Mapping[str, float]], path: str | Path, title: str = "") -> Path:
    """PSNR (and seconds per image) against DDIM steps."""
    plt = _pyplot()
    path = Path(path)
    steps = sorted(table)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(steps, [table[s]["psnr"] for s in steps], "o-", label="restored")
    ax.plot(steps, [table[s]["input_psnr"] for s in steps], "--", color="gray", label="input")
    ax.set_xlabel("DDIM steps")
    ax.set_ylabel("PSNR (dB)")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(steps, [str(s) for s in steps])
    ax2 = ax.twinx()
    ax2.plot(steps, [table[s]["seconds"] for s in steps], "s:", color="tab:orange", label="s / image")
    ax2.set_ylabel("seconds per image", color="tab:orange")
    ax2.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    try:
        return _save_figure(fig, path)
    finally:
        plt.close(fig)
