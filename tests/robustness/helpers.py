"""Test helpers: a fake landmark provider and synthetic photos with known face landmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ASTRONAUT_LANDMARKS = Path(__file__).resolve().parents[2] / "mofrr_core" / "assets" / "astronaut_landmarks.npy"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str):
    """The module of ``benchmarks/<name>.py`` (benchmarks are scripts, not a package: as when one is run, its
    folder is importable, so a benchmark may import a sibling's helpers)."""
    import importlib.util
    import sys

    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def astronaut_with_landmarks() -> tuple[np.ndarray, np.ndarray]:
    """skimage's astronaut (512x512) and its bundled MediaPipe landmarks float32 [478, 2]."""
    from skimage import data

    return data.astronaut(), np.load(ASTRONAUT_LANDMARKS).astype(np.float32)


def place(canvas: np.ndarray, source: np.ndarray, landmarks: np.ndarray, box: tuple[int, int, int, int],
          at: tuple[int, int], size: int) -> np.ndarray:
    """Paste ``source[box]`` resized to ``size`` at ``at`` into ``canvas``; return the moved landmarks."""
    x0, y0, x1, y1 = box
    patch = cv2.resize(source[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    canvas[at[1]:at[1] + size, at[0]:at[0] + size] = patch
    scale = size / (x1 - x0)
    return ((landmarks - [x0, y0] + 0.5) * scale - 0.5 + at).astype(np.float32)


def two_face_photo() -> tuple[np.ndarray, list[np.ndarray]]:
    """A 420x260 photo with two astronaut faces of different sizes and their landmarks."""
    image, landmarks = astronaut_with_landmarks()
    ramp = np.linspace(60, 200, 420, dtype=np.float32)
    canvas = np.repeat(np.repeat(ramp[None, :, None], 260, axis=0), 3, axis=2).astype(np.uint8)
    head = (130, 20, 330, 220)
    big = place(canvas, image, landmarks, head, (10, 30), 200)
    small = place(canvas, image, landmarks, head, (260, 70), 130)
    return canvas, [big, small]


class FakeDetector:
    """``detect(image)``: the landmarks registered for images of that shape, else no face."""

    def __init__(self, faces_by_shape: dict[tuple[int, int], list[np.ndarray]]) -> None:
        self.faces_by_shape = faces_by_shape
        self.calls = 0

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        return [f.copy() for f in self.faces_by_shape.get(tuple(image.shape[:2]), [])]


def install_fake_provider(monkeypatch, detector) -> None:
    """Register ``detector`` as the highest-priority landmark provider for one test."""
    from mofrr_core.plugins import get_state
    from mofrr_core.spec import LandmarkProviderSpec

    spec = LandmarkProviderSpec(name="fake-test", factory=lambda: detector, priority=10**6,
                                description="test fixture")
    monkeypatch.setitem(get_state().landmark_providers, "fake-test", spec)


ASTRONAUT_HEAD = (130, 20, 330, 220)
"""A 200 px square around the astronaut's head (the face with some hair, helmet and background)."""


def textured_canvas(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture (no faces): a coarse noise grid enlarged to the canvas."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 220, size=(max(2, height // 150), max(2, width // 150), 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def composed_photo(height: int, width: int, faces: list[tuple[int, int, float]], seed: int = 0
                   ) -> tuple[np.ndarray, list[np.ndarray]]:
    """A ``height`` x ``width`` photo with astronaut heads at ``(x, y)`` (top-left) whose eyes are
    ``ipd`` px apart; returns the photo and each face's 478 landmarks in photo pixels."""
    image, landmarks = astronaut_with_landmarks()
    ipd = float(np.linalg.norm(landmarks[468] - landmarks[473]))
    canvas = textured_canvas(height, width, seed)
    placed = [place(canvas, image, landmarks, ASTRONAUT_HEAD, (x, y), round(200 * target / ipd))
              for x, y, target in faces]
    return canvas, placed
