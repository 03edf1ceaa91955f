"""Build the bundled example: the astronaut's face, aligned like the training crops, retouched by our engine.

    python examples/make_example.py          # writes original.png, retouched.png, retouched.json here

The face is `skimage.data.astronaut()` (NASA, public domain); its MediaPipe landmarks ship in
`mofrr_core/assets/astronaut_landmarks.npy`, so MediaPipe is not needed.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from mofrr_core.faces import TEMPLATE_SIZE, align_face, estimate_alignment, points5_from_landmarks
from mofrr_core.metrics import psnr
from mofrr_core.retouch import FaceLandmarks, retouch

HERE = Path(__file__).resolve().parent
OPS = ["white", "face", "eye"]
STRENGTHS = [0.8, 0.8, 0.8]  # within the training range (engine.STRENGTH_RANGE: 0.25-1.0)


def astronaut_crop() -> tuple[np.ndarray, FaceLandmarks]:
    """The astronaut's face aligned to the 224 px training geometry, with its landmarks moved along."""
    points = np.load(resources.files("mofrr_core") / "assets" / "astronaut_landmarks.npy")
    matrix = estimate_alignment(points5_from_landmarks(points), TEMPLATE_SIZE)
    crop = align_face(data.astronaut(), matrix, TEMPLATE_SIZE)
    moved = np.concatenate([points, np.ones((len(points), 1), np.float32)], axis=1) @ matrix.T
    return crop, FaceLandmarks(moved.astype(np.float32))


def main() -> None:
    original, landmarks = astronaut_crop()
    result = retouch(original, landmarks, OPS, np.random.default_rng(0), strengths=STRENGTHS)
    Image.fromarray(original).save(HERE / "original.png")
    Image.fromarray(result.image).save(HERE / "retouched.png")
    record = {"source": "skimage.data.astronaut() (NASA, public domain), aligned to 224 px",
              "ops": OPS, "psnr_retouched_vs_original": round(psnr(result.image, original), 3),
              "record": result.record}
    (HERE / "retouched.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    print(f"wrote {HERE}/original.png, retouched.png (PSNR {record['psnr_retouched_vs_original']} dB)")


if __name__ == "__main__":
    main()
