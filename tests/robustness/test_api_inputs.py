"""The Python API checks its arguments: a ``TypeError``/``ValueError`` naming the argument, or a documented
conversion (paths, grayscale, RGBA), never an error from deep inside torch or garbage output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mofrr_core.inputs import check_device, check_seed, check_steps
from mofrr_core.restore import restore_photo
from tests.robustness.helpers import astronaut_with_landmarks


@pytest.fixture(scope="module")
def pipe():
    from tests.conftest import make_tiny_pipeline

    return make_tiny_pipeline()


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut_with_landmarks()[0][20:220, 130:330]).resize((64, 64)))


@pytest.mark.parametrize("images,error,message", [
    ([], ValueError, r"images: empty list"),
    (torch.zeros(0, 3, 32, 32), ValueError, r"images: empty batch"),
    ([torch.zeros(1, 3, 32, 32)], ValueError, r"images\[0\]: expected a \[3, H, W\] tensor .*not inside a list"),
    ([torch.zeros(1, 32, 32)], ValueError, r"images\[0\]: expected a \[3, H, W\] tensor"),
    ([torch.full((3, 32, 32), float("nan"))], ValueError, r"images\[0\]: contains NaN"),
    ([torch.full((3, 32, 32), 200.0)], ValueError, r"images\[0\]: tensor values must be in \[-1, 1\]"),
    ([torch.zeros(3, 32, 32, dtype=torch.uint8)], TypeError, r"images\[0\]: expected a float tensor"),
    ([np.zeros((32, 32, 3), np.float32)], TypeError, r"images\[0\]: expected a uint8 array"),
    ([np.zeros((32, 32, 2), np.uint8)], ValueError, r"images\[0\]: expected an HxWx3"),
    ([np.zeros((0, 32, 3), np.uint8)], ValueError, r"images\[0\]: image is too small"),
    ([np.zeros((16, 32767, 3), np.uint8)], ValueError, r"images\[0\]: image is too large"),
    ([42], TypeError, r"images\[0\]: expected a PIL image"),
    (42, TypeError, r"images: expected an image or a list"),
])
def test_bad_images_name_the_argument(pipe, images, error, message):
    with pytest.raises(error, match=message):
        pipe(images)


@pytest.mark.parametrize("steps,error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError),
                                         ("10", TypeError)])
def test_bad_step_counts_are_refused(pipe, face, steps, error):
    with pytest.raises(error, match="num_inference_steps"):
        pipe([face], num_inference_steps=steps)
    assert check_steps(np.int64(3)) == 3 and check_steps(None) is None


def test_bad_seed_and_output_type_are_refused(pipe, face):
    with pytest.raises(ValueError, match="seed must be between"):
        pipe([face], seed=2**64)
    with pytest.raises(TypeError, match="seed must be an integer"):
        pipe([face], seed=1.5)
    with pytest.raises(ValueError, match="output_type"):
        pipe([face], output_type="jpeg")
    assert check_seed(2**64 - 1) == 2**64 - 1


def test_documented_conversions(pipe, face, tmp_path):
    """A path is read like the CLI reads it; grayscale gets three equal channels; RGBA drops alpha."""
    Image.fromarray(face).save(tmp_path / "face.png")
    from_path = pipe([tmp_path / "face.png", str(tmp_path / "face.png")], output_type="np", seed=1)
    from_array = pipe([face, face], output_type="np", seed=1)
    for got, want in zip(from_path.images, from_array.images):
        np.testing.assert_array_equal(got, want)
    gray = face[..., 1]
    out = pipe([gray], output_type="np").images[0]
    assert out.shape == (64, 64, 3)
    rgba = np.concatenate([face, np.full((64, 64, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(pipe([rgba], output_type="np", seed=2).images[0],
                                  pipe([face], output_type="np", seed=2).images[0])
    batch = torch.from_numpy(face).permute(2, 0, 1)[None].float() / 127.5 - 1  # a [1, 3, H, W] batch itself
    assert len(pipe(batch).images) == 1


def test_nan_never_comes_back_as_zeros(pipe):
    image = torch.zeros(3, 32, 32)
    image[0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pipe(image)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"max_faces": 0}, ValueError, "max_faces must be a positive integer, got 0"),
    ({"max_faces": 2.0}, TypeError, "max_faces"),
    ({"steps": 0}, ValueError, "steps must be a positive integer"),
    ({"seed": -(2**63) - 1}, ValueError, "seed must be between"),
    ({"aligned": "no"}, TypeError, "aligned must be True or False"),
    ({"aligned": False, "detector": None}, ValueError, "detector: whole-photo mode needs a face detector"),
    ({"aligned": False, "detector": "mediapipe"}, TypeError, "detector must be callable"),
])
def test_restore_photo_checks_its_arguments(pipe, face, kwargs, error, message):
    arguments = {"aligned": True, **kwargs}
    with pytest.raises(error, match=message):
        restore_photo(pipe, face, **arguments)


def test_restore_photo_converts_grayscale_paths_and_pil(pipe, face, tmp_path):
    gray = restore_photo(pipe, face[..., 0], aligned=True)
    assert gray.image.shape == (64, 64, 3) and gray.image.dtype == np.uint8
    Image.fromarray(face).save(tmp_path / "f.png")
    by_path = restore_photo(pipe, tmp_path / "f.png", aligned=True, seed=3).image
    by_pil = restore_photo(pipe, Image.fromarray(face), aligned=True, seed=3).image
    np.testing.assert_array_equal(by_path, restore_photo(pipe, face, aligned=True, seed=3).image)
    np.testing.assert_array_equal(by_pil, by_path)
    with pytest.raises(TypeError, match="image: expected a uint8 array"):
        restore_photo(pipe, face.astype(np.float32) / 255, aligned=True)
    with pytest.raises(ValueError, match="image: image is too small"):  # whole-photo mode: 16 px at least
        restore_photo(pipe, face[:8, :8], aligned=False, detector=lambda image: [])


def test_check_device():
    assert check_device("cpu") == "cpu"
    assert check_device(None) in ("cpu", "cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        check_device("toaster")
