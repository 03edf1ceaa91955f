"""Faces with landmarks for the retouching tests: a shared-data sample and skimage's astronaut."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from mofrr_core.retouch.landmarks import FaceLandmarks

ASSET = Path(__file__).resolve().parents[2] / "mofrr_core" / "assets" / "astronaut_landmarks.npy"


def first_sharp_sample(root: Path, min_sharpness: float = 2.0):
    """The first face of the first shard with real skin detail: (key, image, landmarks)."""
    shards = sorted(root.glob("faces-*.tar"))
    if not shards:
        return None
    with tarfile.open(shards[0]) as tar:
        files: dict[str, dict[str, bytes]] = {}
        for member in tar:
            key, _, ext = member.name.partition(".")
            files.setdefault(key, {})[ext] = tar.extractfile(member).read()
            sample = files[key]
            if {"jpg", "json", "landmarks.npy"} <= set(sample):
                if json.loads(sample["json"]).get("sharpness", 0) >= min_sharpness:
                    image = cv2.imdecode(np.frombuffer(sample["jpg"], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
                    points = np.load(io.BytesIO(sample["landmarks.npy"]))
                    return key, np.ascontiguousarray(image), FaceLandmarks(points)
                del files[key]
    return None


@pytest.fixture(scope="session")
def data_face():
    """A sharp FairFace sample (224 px) and its MediaPipe landmarks; skipped without the shared data."""
    root = Path(os.environ.get("MOFRR_DATA", ""))
    if not root.is_dir():
        pytest.skip(f"shared face data not found at MOFRR_DATA={root!s} (set MOFRR_DATA to the faces folder)")
    sample = first_sharp_sample(root)
    if sample is None:
        pytest.skip(f"no sharp face sample in {root}")
    return sample


@pytest.fixture(scope="session")
def padded_face(data_face):
    """The data face in the middle of a 448 px canvas: lots of background far from the face."""
    _, image, landmarks = data_face
    pad = 112
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    return padded, landmarks.translated(pad, pad)


@pytest.fixture(scope="session")
def astronaut_landmarks() -> FaceLandmarks:
    if not ASSET.is_file():
        pytest.skip(f"astronaut landmarks asset missing: {ASSET}")
    return FaceLandmarks(np.load(ASSET))


@pytest.fixture(scope="session")
def astronaut_256(astronaut_landmarks):
    """The whole astronaut photo at 256 px (face ~50 px wide) and its landmarks."""
    from skimage import data

    image = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    return image, astronaut_landmarks.scaled(0.5)


@pytest.fixture(scope="session")
def astronaut_crop(astronaut_face, astronaut_landmarks):
    """The conftest ``astronaut_face`` (200 px crop at (140, 20) resized to 64 px) and its landmarks."""
    return astronaut_face, astronaut_landmarks.translated(-140, -20).scaled(64 / 200)
