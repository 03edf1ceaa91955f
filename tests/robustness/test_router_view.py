"""What the router reads in whole-photo mode: native crops on the 8 px grid (mofrr_core.router_view)."""

from __future__ import annotations

import numpy as np

from mofrr_core.faces import crop_box, template_points, upright_alignment
from mofrr_core.router_view import JPEG_BLOCK, JPEG_GRID_MIN, NATIVE_SCALE_RANGE, jpeg_grid_strength, native_crop

SIZE = 64


def shifted_box(scale: float, tx: float, ty: float) -> np.ndarray:
    """The upright alignment of a face ``scale`` times the template's size, at ``(tx, ty)`` in the photo."""
    return upright_alignment(template_points(SIZE) * scale + [tx, ty], SIZE)


def test_native_crop_is_the_photos_own_pixels_on_its_grid():
    """A box of photo pixels at the router's size, not resized, its origin on the grid nearest the face's box;
    ``None`` for a rolled face or one too large or too small."""
    photo = np.random.default_rng(1).integers(0, 256, (300, 280, 3), dtype=np.uint8)
    for scale, (tx, ty) in [(1.0, (37, 51)), (0.93, (60, 41)), (1.2, (13, 20))]:
        matrix = shifted_box(scale, tx, ty)
        x0, y0, side = crop_box(matrix, SIZE)
        left, top = (x0 + (side - SIZE) / 2, y0 + (side - SIZE) / 2)  # the box centred on the face
        crop = native_crop(photo, matrix, SIZE)
        found = [(c, r) for r in range(300 - SIZE) for c in range(280 - SIZE)
                 if abs(c - left) <= JPEG_BLOCK and abs(r - top) <= JPEG_BLOCK
                 and np.array_equal(photo[r:r + SIZE, c:c + SIZE], crop)]
        assert len(found) == 1
        (c, r), = found
        assert c % JPEG_BLOCK == r % JPEG_BLOCK == 0
        assert abs(c - left) <= JPEG_BLOCK / 2 and abs(r - top) <= JPEG_BLOCK / 2
    smallest, largest = NATIVE_SCALE_RANGE
    for too_far in (largest * 1.05, smallest / 1.05, 0.85):
        assert native_crop(photo, shifted_box(too_far, 40, 40), SIZE) is None
    for within in (smallest * 1.02, largest / 1.02):
        assert native_crop(photo, shifted_box(within, 40, 40), SIZE) is not None
    theta = np.deg2rad(35.0)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    assert native_crop(photo, upright_alignment(template_points(SIZE) @ rotation.T + 100, SIZE), SIZE) is None


def test_native_crop_at_the_border_is_reflected():
    photo = np.random.default_rng(2).integers(0, 256, (100, 90, 3), dtype=np.uint8)
    matrix = shifted_box(1.0, -20, -20)  # the face's box starts left of and above the photo
    crop = native_crop(photo, matrix, SIZE)
    x0, y0, _ = crop_box(matrix, SIZE)
    left, top = (JPEG_BLOCK * round(c / JPEG_BLOCK) for c in (x0, y0))
    assert left < 0 and top < 0 and crop.shape == (SIZE, SIZE, 3)
    padded = np.pad(photo, ((-top, 0), (-left, 0), (0, 0)), mode="reflect")
    assert np.array_equal(crop, padded[:SIZE, :SIZE])


def test_native_crop_range_is_a_parameter():
    """``scale_range`` (the registry's ``router_native_range``) widens what is read natively; bad ranges refused."""
    import pytest

    from mofrr_core.router_view import check_native_range

    photo = np.random.default_rng(3).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    small = shifted_box(0.7, 40, 40)
    assert native_crop(photo, small, SIZE) is None
    assert np.array_equal(native_crop(photo, small, SIZE, (0.6, 1.3)), native_crop(photo, small, SIZE, (0.65, 0.75)))
    assert native_crop(photo, small, SIZE, (0.6, 1.3)).shape == (SIZE, SIZE, 3)
    assert native_crop(photo, shifted_box(0.55, 40, 40), SIZE, (0.6, 1.3)) is None
    assert check_native_range([0.6, 1.3], "x") == (0.6, 1.3)
    for bad in ([0.0, 1.0], [1.2, 1.1], "wide", [1.0]):
        with pytest.raises(ValueError, match="x: expected"):
            check_native_range(bad, "x")


def test_jpeg_grid_strength_tells_a_photo_as_saved_from_one_resized_after():
    """A JPEG as saved keeps its block grid (strength above JPEG_GRID_MIN, on the grid's phase only); resized after
    the JPEG, or an image that never was one, it has none."""
    import io

    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((224, 224))
    saved = io.BytesIO()
    photo.save(saved, format="JPEG", quality=85)
    jpeg = Image.open(saved).convert("RGB")
    assert jpeg_grid_strength(np.asarray(jpeg)) >= JPEG_GRID_MIN
    assert jpeg_grid_strength(np.asarray(jpeg)[3:, 3:]) < JPEG_GRID_MIN  # off the grid's phase
    assert jpeg_grid_strength(np.asarray(jpeg.resize((280, 280), Image.BICUBIC))) < JPEG_GRID_MIN
    assert abs(jpeg_grid_strength(np.asarray(photo)) - 1.0) < 0.1



def test_native_view_keeps_a_smaller_face_natively_only_where_its_grid_is():
    """``native_view``: a face in the native range is read ``native``; a smaller one in ``grid_range`` is read from
    the photo's own pixels (``native-grid``) only where that cut was saved as a JPEG at this size, else, like any
    face without ``grid_range``, it is to be read resized."""
    from PIL import Image
    from skimage import data

    from mofrr_core.jpeg_grid import SAVED_LATTICE_MIN, jpeg_lattice
    from mofrr_core.retouch.postprocess import jpeg_roundtrip
    from mofrr_core.router_view import native_view

    size = 224  # the router's view
    resized = np.asarray(Image.fromarray(data.astronaut()).resize((400, 400), Image.BICUBIC))  # never a JPEG so
    saved = jpeg_roundtrip(resized, 90)

    def face(scale: float) -> np.ndarray:
        return upright_alignment(template_points(size) * scale + 60, size)

    crop, view = native_view(saved, face(0.75), size, NATIVE_SCALE_RANGE, (0.6, 0.9))
    assert view == "native-grid" and np.array_equal(crop, native_crop(saved, face(0.75), size, (0.6, 0.9)))
    assert jpeg_lattice(crop) >= SAVED_LATTICE_MIN > jpeg_lattice(native_crop(resized, face(0.75), size, (0.6, 0.9)))
    assert native_view(resized, face(0.75), size, NATIVE_SCALE_RANGE, (0.6, 0.9)) == (None, "resized")
    assert native_view(saved, face(0.75), size, NATIVE_SCALE_RANGE) == (None, "resized")
    assert native_view(saved, face(0.55), size, NATIVE_SCALE_RANGE, (0.6, 0.9)) == (None, "resized")
    crop, view = native_view(resized, face(1.0), size, NATIVE_SCALE_RANGE, (0.6, 0.9))
    assert view == "native" and np.array_equal(crop, native_crop(resized, face(1.0), size))
