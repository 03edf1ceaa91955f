"""A photo enlarged since its JPEG save: how much, and the photo shrunk back (mofrr_core.jpeg_grid)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from mofrr_core.jpeg_grid import JPEG_GRID_MIN, grid_at_any_phase, jpeg_grid_strength, saved_size


@pytest.fixture(scope="module")
def saved_jpeg() -> np.ndarray:
    """A soft 256 px photo as a JPEG saved it (the astronaut at 128 px, enlarged, quality 75: like FairFace's web
    photos; in sharp photos the stretched grid's harmonics drown in the content and nothing is undone)."""
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((128, 128), Image.LANCZOS).resize((256, 256), Image.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=75)
    return np.asarray(Image.open(buffer).convert("RGB"))


def enlarged(image: np.ndarray, scale: float) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("scale", [1.25, 1.5])
def test_an_enlarged_jpeg_is_brought_back_to_the_size_it_was_saved_at(saved_jpeg, scale):
    """The factor comes out within half a percent, the saved width exactly, and the photo shrunk back shows its 8 px
    grid again, its blocks starting at (0, 0); the photo as it is shows none."""
    photo = enlarged(saved_jpeg, scale)
    assert jpeg_grid_strength(photo) < JPEG_GRID_MIN
    saved = saved_size(photo)
    assert saved is not None and saved.width == 256 and abs(saved.scale - scale) < 0.005 * scale
    assert jpeg_grid_strength(saved.shrink(photo)) >= JPEG_GRID_MIN
    assert saved_size(photo) == saved  # deterministic


def test_no_saved_size_without_a_stretched_grid(saved_jpeg):
    """A JPEG as saved keeps its grid (nothing to undo); shrunk, or never a JPEG, it has no grid to read a size by."""
    from skimage import data

    assert saved_size(saved_jpeg) is None
    assert saved_size(cv2.resize(saved_jpeg, (205, 205), interpolation=cv2.INTER_AREA)) is None
    never = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    assert saved_size(enlarged(never, 1.25)) is None


def test_points_follow_the_photo_shrunk_back(saved_jpeg):
    """A point of the enlarged photo lands on the same content in the shrunk photo, offset included."""
    photo = enlarged(saved_jpeg[3:, 5:], 1.25)  # cut off its grid's phase, then enlarged
    saved = saved_size(photo)
    assert saved is not None and saved.offset != (0, 0)
    small = saved.shrink(photo)
    assert grid_at_any_phase(small)[1] == (0, 0)
    point = np.array([[150.0, 120.0]])
    x, y = saved.points(point)[0]
    assert np.abs(small[round(y), round(x)].astype(float) - photo[120, 150].astype(float)).max() < 40


@pytest.mark.parametrize("quality", [60, 75, 90])
def test_jpeg_lattice_tells_a_photo_saved_at_its_size(quality):
    """``jpeg_lattice``: a photo saved as JPEG (quality 90 or less) at the size it has puts its blocks' DCT
    coefficients on a quantization lattice (at least SAVED_LATTICE_MIN); never a JPEG, resized after the save,
    or cut off the blocks' phase, it does not; a tone change after the save moves it off; deterministic."""
    from PIL import Image
    from skimage import data

    from mofrr_core.jpeg_grid import SAVED_LATTICE_MIN, jpeg_lattice
    from mofrr_core.retouch.postprocess import jpeg_roundtrip

    photo = np.asarray(Image.fromarray(data.astronaut()).resize((300, 300), Image.BICUBIC))
    saved = jpeg_roundtrip(photo, quality)
    assert jpeg_lattice(saved) >= SAVED_LATTICE_MIN and jpeg_lattice(saved) == jpeg_lattice(saved.copy())
    assert jpeg_lattice(photo) < SAVED_LATTICE_MIN
    for scale in (0.8, 1.25):
        assert jpeg_lattice(enlarged(saved, scale)) < SAVED_LATTICE_MIN
    assert jpeg_lattice(saved[3:, 5:]) < SAVED_LATTICE_MIN
    brighter = np.clip(255 * (saved / 255.0) ** 0.8, 0, 255).round().astype(np.uint8)
    assert jpeg_lattice(brighter) < SAVED_LATTICE_MIN
    assert jpeg_lattice(saved[:5]) == 0.0  # too small to judge
