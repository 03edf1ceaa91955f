"""A JPEG photo's 8 px block grid: how much of it a view keeps, and how much a photo was enlarged since its save.

A JPEG photo carries a faint 8x8 block pattern wherever its pixels were not resampled after the save: the step
between neighbouring columns (and rows) is larger, on average, across block borders than inside blocks
(:func:`jpeg_grid_strength`). A warp or a smoothing filter resamples the pixels it touches and breaks that
pattern there, which is what the router reads a retouching by in a photo as it was saved.

A photo enlarged by ``s`` after its save keeps the pattern, stretched to a period of ``8 s`` px: the mean-step
profiles (each step clipped at :data:`STEP_CLIP` grey levels, so that edges and texture weigh less than the grid)
then show the harmonics ``k / (8 s)`` cycles per pixel. The enlargement's own interpolation adds
peaks at multiples of ``1 / s`` (folded into ``[0, 0.5]``), and a grid kept at the saved size has its
harmonics at ``j / 8``; the harmonics of a candidate ``s`` near either are not counted.
:func:`saved_size` takes the candidate whose remaining harmonics stand out most, refines it over the
integer widths the photo could have had, and keeps it when the photo shrunk back to that width shows a
clear 8 px grid again. The router can then read the face as it was saved (registry ``undo_enlargement``).
Shrunk photos are not recovered: shrinking removes the frequencies the grid lives at.

Whether a photo was saved as a JPEG at the size it has, even at a quality high enough to leave little visible
pattern, shows in its blocks' DCT coefficients: a decoder rebuilds every block from coefficients that are
multiples of the quantization steps, so the photo's own 8x8 DCT (blocks from (0, 0)) puts its low-frequency
coefficients close to a lattice (:func:`jpeg_lattice`). Resampling or a tone change moves them off it.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import cv2
import numpy as np
from einops import rearrange

JPEG_BLOCK = 8  # side of JPEG's blocks
JPEG_GRID_MIN = 1.12  # :func:`jpeg_grid_strength` of a view that keeps its JPEG grid (FairFace photos as saved: 1.11
# or more for 99 % of them; resized by 0.8 or 1.25 after the JPEG: below 1.12 for 99 %)
ENLARGEMENTS = np.arange(1.02, 1.9005, 0.001)  # the enlargements :func:`saved_size` considers
HARMONICS = 7  # grid harmonics k / (8 s) scored, k = 1..7
EVIDENCE_MIN = 3.5  # harmonics' mean height over the spectrum's median for an enlargement to be considered
# (set with unclipped steps, rule R68: validation photos as saved whose grid a retouching wiped at most 2.9, photos
# enlarged by 1.25 a median of 6)
SAVED_GRID_MIN = 1.15  # grid strength of the photo shrunk back for the enlargement to be kept
PEAKS = 3  # spectral candidates refined over integer widths
STEP_CLIP = 12.0  # saved_size reads pixel steps clipped at this many grey levels: edges and texture weigh less
LATTICE_COEFFICIENTS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (2, 1), (1, 2), (0, 3), (3, 0), (2, 2))  # (row, col)
LATTICE_STEPS = range(2, 9)  # the quantization steps :func:`jpeg_lattice` tries (JPEG quality about 50-90)
LATTICE_MIN_COUNT = 50  # coefficients a step needs to be judged
SAVED_LATTICE_MIN = 0.5  # jpeg_lattice of a photo saved as JPEG at its size (validation photos reframed, saved at
# quality 90 and untouched: 0.67 or more; never a JPEG at their size, reframed or resized 0.6-1.25 times after: 0.54
# or less for 99 % of them, median 0.24-0.32)


class SavedSize(NamedTuple):
    """The size a photo had when it was saved as a JPEG: ``width`` x ``height``; ``scale``: how many times larger
    the photo is now; ``offset``: the (x, y) pixels cut from the shrunk photo's top-left so that its blocks start
    at 0; ``strength``: its grid strength there; ``evidence``: the height of the stretched grid's harmonics."""

    scale: float
    width: int
    height: int
    offset: tuple[int, int]
    strength: float
    evidence: float

    def shrink(self, image: np.ndarray) -> np.ndarray:
        """``image`` (the photo as it is now) back at its saved size, its blocks starting at (0, 0)."""
        small = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_CUBIC)
        return np.ascontiguousarray(small[self.offset[1]:, self.offset[0]:])

    def points(self, points: np.ndarray) -> np.ndarray:
        """Points ``[P, 2]`` of the photo as it is now, in the pixels of :meth:`shrink`."""
        return np.asarray(points, dtype=np.float64) / self.scale - np.asarray(self.offset, dtype=np.float64)


def luma(image: np.ndarray) -> np.ndarray:
    """The luma (BT.601 weights) of an RGB image, as float; a 2-D image as it is."""
    pixels = np.asarray(image, dtype=np.float64)
    return pixels if pixels.ndim == 2 else pixels[..., :3] @ np.array([0.299, 0.587, 0.114])


def step_profiles(y: np.ndarray, clip: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mean absolute step between neighbouring columns (one value per column gap), and between rows; each step
    clipped at ``clip`` first where given."""
    steps = [np.abs(np.diff(y, axis=axis)) for axis in (1, 0)]
    if clip is not None:
        steps = [np.minimum(step, clip) for step in steps]
    return steps[0].mean(0), steps[1].mean(1)


def block_steps(profile: np.ndarray) -> np.ndarray:
    """The mean step at each of the 8 phases of ``profile`` (phase 7: between pixels 7 and 8, a block border)."""
    n = profile.size // JPEG_BLOCK * JPEG_BLOCK
    return profile[:n].reshape(-1, JPEG_BLOCK).mean(0)


def jpeg_grid_strength(image: np.ndarray) -> float:
    """How much of a JPEG block grid an RGB ``image`` keeps on its own 8 px grid: the mean luma step across block
    borders over the mean step inside blocks, across columns and rows (about 1.0 without a grid; 1.2-1.6 for a
    photo as its camera or app saved it). A native view starts on the grid (``router_view.native_crop``)."""
    def ratio(steps: np.ndarray) -> float:
        border = np.arange(steps.size) % JPEG_BLOCK == JPEG_BLOCK - 1
        return float(steps[border].mean() / max(steps[~border].mean(), 1e-9))

    return sum(ratio(p) for p in step_profiles(luma(image))) / 2


def dct_basis(n: int = JPEG_BLOCK) -> np.ndarray:
    """The orthonormal DCT-II matrix of JPEG's blocks: ``basis @ block @ basis.T`` are a block's coefficients."""
    k, x = np.arange(n)[:, None], np.arange(n)[None]
    basis = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    basis[0] /= np.sqrt(2)
    return basis


DCT_BASIS = dct_basis()


def jpeg_lattice(image: np.ndarray) -> float:
    """How closely the low-frequency DCT coefficients of ``image``'s 8x8 luma blocks (from (0, 0)) sit on a
    quantization lattice: the mean of ``cos(2 pi c / q)`` over the coefficients ``c`` larger than ``0.75 q``, the
    largest over the steps ``q`` of :data:`LATTICE_STEPS` and the coefficients of :data:`LATTICE_COEFFICIENTS` (about
    0.2-0.5 off any lattice; 0.67 or more for a photo saved at JPEG quality 90 or less at its size, see
    :data:`SAVED_LATTICE_MIN`)."""
    y = luma(image) - 128.0
    rows, cols = (side - side % JPEG_BLOCK for side in y.shape)
    if min(rows, cols) < JPEG_BLOCK:
        return 0.0
    blocks = rearrange(y[:rows, :cols], "(h i) (w j) -> (h w) i j", i=JPEG_BLOCK, j=JPEG_BLOCK)
    coefficients = np.einsum("ui,bij,vj->buv", DCT_BASIS, blocks, DCT_BASIS)
    best = 0.0
    for u, v in LATTICE_COEFFICIENTS:
        values = coefficients[:, u, v]
        for step in LATTICE_STEPS:
            large = values[np.abs(values) > 0.75 * step]
            if large.size >= LATTICE_MIN_COUNT:
                best = max(best, float(np.cos(2 * np.pi * large / step).mean()))
    return best


def grid_at_any_phase(image: np.ndarray, clip: float | None = None) -> tuple[float, tuple[int, int]]:
    """:func:`jpeg_grid_strength` on the grid's strongest phase (steps clipped at ``clip`` where given), and the (x, y)
    offset where its blocks start."""
    strengths, offsets = [], []
    for profile in step_profiles(luma(image), clip):
        steps = block_steps(profile)
        border = int(steps.argmax())
        strengths.append(steps[border] / max(np.delete(steps, border).mean(), 1e-9))
        offsets.append((border + 1) % JPEG_BLOCK)
    return float(np.mean(strengths)), (offsets[0], offsets[1])


def folded(frequency: np.ndarray) -> np.ndarray:
    """Frequencies (cycles per pixel) as a sampled signal shows them, in ``[0, 0.5]``."""
    frequency = np.mod(frequency, 1.0)
    return np.minimum(frequency, 1.0 - frequency)


def harmonic_evidence(profile: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Per enlargement in ``scales``: the mean height of its grid's harmonics over the spectrum's median (0 where
    every harmonic lies near an interpolation peak or a grid kept at the saved size)."""
    trend = np.convolve(profile, np.ones(9) / 9, mode="same")
    signal = (profile - trend)[JPEG_BLOCK:-JPEG_BLOCK]
    if signal.size < 4 * JPEG_BLOCK:
        return np.zeros(scales.size)
    signal = signal * np.hanning(signal.size)
    pad = 16 * signal.size
    magnitude = np.abs(np.fft.rfft(signal, n=pad))
    grid = np.fft.rfftfreq(pad)
    background = max(float(np.median(magnitude[grid > 0.02])), 1e-9)
    tolerance = 2.0 / signal.size
    heights = []
    for k in range(1, HARMONICS + 1):
        f = folded(k / (JPEG_BLOCK * scales))
        interpolation = np.min([np.abs(f - folded(m / scales)) for m in range(1, 4)], axis=0)
        kept_grid = np.min([np.abs(f - j / JPEG_BLOCK) for j in range(JPEG_BLOCK // 2 + 1)], axis=0)
        usable = (interpolation > tolerance) & (kept_grid > tolerance)
        heights.append(np.where(usable, np.interp(f, grid, magnitude) / background, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a scale with no usable harmonic: nan, then 0
        return np.nan_to_num(np.nanmean(np.array(heights), axis=0))


def local_peaks(values: np.ndarray, count: int, floor: float) -> list[int]:
    """Indices of the ``count`` highest local maxima of ``values`` at or above ``floor``."""
    inner = np.arange(1, values.size - 1)
    peaks = inner[(values[inner] >= values[inner - 1]) & (values[inner] >= values[inner + 1])
                  & (values[inner] >= floor)]
    return sorted(peaks.tolist(), key=lambda i: -values[i])[:count]


def saved_size(image: np.ndarray) -> SavedSize | None:
    """The size the photo ``image`` had when it was saved as a JPEG, if it has been enlarged since (by 1.02-1.9
    times) and its stretched block grid says by how much; ``None`` when it keeps its grid at its own size, shows
    no stretched grid, or was shrunk."""
    grey = luma(image)  # once: the grid check and the evidence read the same luma
    if jpeg_grid_strength(grey) >= JPEG_GRID_MIN:
        return None
    evidence = sum(harmonic_evidence(p, ENLARGEMENTS) for p in step_profiles(grey, STEP_CLIP)) / 2
    height, width = image.shape[:2]
    best = None
    for peak in local_peaks(evidence, PEAKS, EVIDENCE_MIN):
        centre = round(width / ENLARGEMENTS[peak])
        for saved_width in range(centre - 2, centre + 3):
            if not 1.0 < width / saved_width:
                continue
            size = SavedSize(width / saved_width, saved_width, round(height * saved_width / width), (0, 0), 0.0,
                             float(evidence[peak]))
            strength, offset = grid_at_any_phase(size.shrink(image), STEP_CLIP)
            if best is None or strength > best.strength:
                best = size._replace(offset=offset, strength=strength)
    return best if best is not None and best.strength >= SAVED_GRID_MIN else None
