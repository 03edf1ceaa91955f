"""Alignment to the training template and feathered paste-back (mofrr_core.faces)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from mofrr_core.faces import (
    TEMPLATE_224,
    TEMPLATE_SIZE,
    align_face,
    alignment_scale,
    crop_box,
    estimate_alignment,
    face_alignment,
    face_mask,
    full_paste_mask,
    measure_template,
    paste_back,
    points5_from_landmarks,
    template_points,
    upright_alignment,
)
from mofrr_core.utils.image import to_uint8, uint8_to_tensor
from tests.robustness.helpers import astronaut_with_landmarks

SIZE = 64


@pytest.fixture(scope="module")
def astronaut():
    image, landmarks = astronaut_with_landmarks()
    return image, landmarks, estimate_alignment(points5_from_landmarks(landmarks), SIZE)


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_template_is_the_mean_of_the_shared_data_landmarks():
    folder = Path(os.environ["MOFRR_DATA"])
    shards = sorted(folder.glob("*.tar"))
    if not shards:
        pytest.skip(f"shared face data not found in {folder} (set MOFRR_DATA)")
    arrays = []
    for shard in shards:
        with tarfile.open(shard) as tar:
            arrays += [np.load(io.BytesIO(tar.extractfile(m).read())) for m in tar if m.name.endswith(".landmarks.npy")]
    assert len(arrays) > 1000
    np.testing.assert_allclose(measure_template(arrays), TEMPLATE_224, atol=0.006)


def test_alignment_recovers_a_known_similarity():
    truth = similarity(-23.0, 0.37, 12.0, -5.0)  # photo -> crop
    inverse = cv2.invertAffineTransform(truth)
    photo_points = template_points(SIZE) @ inverse[:, :2].T + inverse[:, 2]
    matrix = estimate_alignment(photo_points, SIZE)
    np.testing.assert_allclose(matrix, truth, atol=1e-9)
    assert alignment_scale(matrix) == pytest.approx(0.37)


def test_alignment_rejects_degenerate_points():
    with pytest.raises(ValueError, match="collapsed"):
        estimate_alignment(np.full((5, 2), 10.0), SIZE)
    with pytest.raises(ValueError, match="finite"):
        estimate_alignment(np.array([[np.nan, 0]] * 5), SIZE)


def test_points5_from_each_landmark_scheme(astronaut):
    _, landmarks, _ = astronaut
    five = points5_from_landmarks(landmarks)
    np.testing.assert_allclose(five, landmarks[[468, 473, 1, 61, 291]], atol=1e-5)
    no_iris = points5_from_landmarks(landmarks[:468])  # eye-contour centres instead of the iris
    assert np.abs(no_iris[:2] - five[:2]).max() < 4.0 and np.array_equal(no_iris[2:], five[2:])
    dlib = np.zeros((68, 2))
    dlib[36:42], dlib[42:48], dlib[30], dlib[48], dlib[54] = (10, 20), (50, 20), (30, 40), (15, 55), (45, 55)
    np.testing.assert_allclose(points5_from_landmarks(dlib), [[10, 20], [50, 20], [30, 40], [15, 55], [45, 55]])
    with pytest.raises(ValueError, match="17 landmarks"):
        points5_from_landmarks(np.zeros((17, 2)))


def test_aligned_astronaut_lands_on_the_template(astronaut):
    _, landmarks, matrix = astronaut
    mapped = points5_from_landmarks(landmarks) @ matrix[:, :2].T + matrix[:, 2]
    # a real face fits the mean template up to its own proportions: a few percent of the crop
    assert np.abs(mapped - template_points(SIZE)).max() < 0.05 * SIZE


def test_upside_down_photo_gives_the_same_crop(astronaut):
    image, landmarks, matrix = astronaut
    h, w = image.shape[:2]
    flipped = np.ascontiguousarray(image[::-1, ::-1])
    flipped_points = np.array([w - 1, h - 1]) - landmarks  # 180 degree rotation keeps point order
    upside = align_face(flipped, estimate_alignment(points5_from_landmarks(flipped_points), SIZE), SIZE)
    upright = align_face(image, matrix, SIZE)
    assert np.abs(upside.astype(int) - upright).mean() < 1.0


def test_shrinking_a_large_photo_matches_the_small_one(astronaut):
    image, landmarks, matrix = astronaut
    large = cv2.resize(image, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    large_points = (landmarks + 0.5) * 4 - 0.5
    from_large = align_face(large, estimate_alignment(points5_from_landmarks(large_points), SIZE), SIZE)
    from_small = align_face(image, matrix, SIZE)
    assert np.abs(from_large.astype(int) - from_small).mean() < 2.5


def test_face_mask_is_feathered_and_zero_at_the_border():
    mask = face_mask(SIZE)
    assert mask.dtype == np.float32 and mask.shape == (SIZE, SIZE)
    assert mask[SIZE // 2, SIZE // 2] == pytest.approx(1.0, abs=1e-3)
    assert mask[0].max() == 0 and mask[-1].max() == 0 and mask[:, 0].max() == 0 and mask[:, -1].max() == 0
    assert ((mask > 0.05) & (mask < 0.95)).sum() > 2 * SIZE  # a soft edge, not a hard cut-out


def test_paste_back_changes_nothing_outside_the_mask(astronaut):
    image, _, matrix = astronaut
    crop = align_face(image, matrix, SIZE)
    out = paste_back(image, 255 - crop, matrix, crop=crop)  # a restorer that changes everything
    mask = full_paste_mask(matrix, SIZE, image.shape)
    change = np.abs(out.astype(int) - image).max(axis=2)
    assert (mask == 0).mean() > 0.8
    assert change[mask == 0].max() == 0  # < 1/255: bit-identical
    assert change[mask > 0.9].mean() > 60  # and the face itself did change
    assert out.dtype == np.uint8 and out.shape == image.shape


def test_identity_restorer_round_trip_changes_nothing(astronaut):
    image, _, matrix = astronaut
    crop = align_face(image, matrix, SIZE)
    assert np.array_equal(paste_back(image, crop, matrix), image)  # crop recomputed, residual 0
    through_tensors = to_uint8(uint8_to_tensor(crop))  # what the pipeline's conversions do
    out = paste_back(image, through_tensors, matrix, crop=crop)
    assert np.abs(out.astype(int) - image).max() <= 1


def test_paste_back_puts_the_residual_where_the_face_is(astronaut):
    image, landmarks, matrix = astronaut
    crop = align_face(image, matrix, SIZE)
    restored = crop.astype(np.int16)
    nose_x, nose_y = np.round(template_points(SIZE)[2]).astype(int)
    restored[nose_y - 1:nose_y + 2, nose_x - 1:nose_x + 2] += 100  # a bright dot on the template nose tip
    out = paste_back(image, np.clip(restored, 0, 255).astype(np.uint8), matrix, crop=crop)
    change = np.abs(out.astype(int) - image).sum(axis=2)
    y, x = np.unravel_index(np.argmax(change), change.shape)
    nose = landmarks[1]
    # the template nose tip is ~3 crop px from this face's own nose tip: 1 crop px = 1/scale photo px
    assert np.hypot(x - nose[0], y - nose[1]) < 4 / alignment_scale(matrix)


def test_face_outside_the_image_is_refused():
    image = np.zeros((100, 100, 3), np.uint8)
    matrix = estimate_alignment(template_points(SIZE) + 5000, SIZE)
    with pytest.raises(ValueError, match="outside"):
        align_face(image, matrix, SIZE)


def test_training_crops_align_to_almost_a_plain_resize():
    """On FairFace crops (what the networks saw) the alignment is close to resizing the crop as it is."""
    shard = Path(os.environ["MOFRR_DATA"]) / "faces-00000.tar"
    if not shard.is_file():
        pytest.skip(f"shared face data not found: {shard} (set MOFRR_DATA)")
    with tarfile.open(shard) as tar:
        arrays = [np.load(io.BytesIO(tar.extractfile(m).read())) for m in tar if m.name.endswith(".landmarks.npy")]
    scales, angles, shifts = [], [], []
    for landmarks in arrays[:300]:
        matrix = estimate_alignment(points5_from_landmarks(landmarks.astype(np.float32)), TEMPLATE_SIZE)
        scales.append(alignment_scale(matrix))
        angles.append(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
        centre = np.array([111.5, 111.5])
        shifts.append(np.hypot(*(matrix[:, :2] @ centre + matrix[:, 2] - centre)))
    assert abs(np.median(scales) - 1) < 0.05
    assert abs(np.median(angles)) < 2 and np.percentile(np.abs(angles), 90) < 15
    assert np.median(shifts) < 0.05 * TEMPLATE_SIZE


def test_upright_alignment_cuts_a_box_of_whole_pixels():
    """No rotation, no resampling when the box is the crop's size: the crop is the photo's own pixels."""
    photo = np.random.default_rng(0).integers(0, 256, (300, 280, 3), dtype=np.uint8)
    truth = similarity(0.0, 1.0, -37.0, -51.0)  # the face 37 px right and 51 px down of the template
    inverse = cv2.invertAffineTransform(truth)
    points = template_points(SIZE) @ inverse[:, :2].T + inverse[:, 2] + 0.3  # and a subpixel offset
    matrix = upright_alignment(points, SIZE)
    assert crop_box(matrix, SIZE) == (37, 51, SIZE)
    assert np.array_equal(align_face(photo, matrix, SIZE), photo[51:51 + SIZE, 37:37 + SIZE])
    assert np.array_equal(paste_back(photo, photo[51:51 + SIZE, 37:37 + SIZE], matrix), photo)
    # a larger face: a box of whole pixels, shrunk; its alignment maps the points near the template
    big = template_points(SIZE) * 1.6 + 20
    matrix = upright_alignment(big, SIZE)
    x0, y0, side = crop_box(matrix, SIZE)
    assert side == round(SIZE * 1.6) and matrix[0, 1] == matrix[1, 0] == 0
    mapped = big @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - template_points(SIZE)).max() < 1.0
    assert crop_box(estimate_alignment(big @ similarity(10, 1, 0, 0)[:, :2].T, SIZE), SIZE) is None


def test_upright_alignment_rotates_only_strongly_rolled_faces():
    rolled = template_points(SIZE) @ similarity(35.0, 1.0, 0, 0)[:, :2].T + 100
    assert np.array_equal(upright_alignment(rolled, SIZE), estimate_alignment(rolled, SIZE))
    slight = template_points(SIZE) @ similarity(8.0, 1.0, 0, 0)[:, :2].T + 100
    assert crop_box(upright_alignment(slight, SIZE), SIZE) is not None
    assert np.array_equal(face_alignment(slight, SIZE, "upright"), upright_alignment(slight, SIZE))
    with pytest.raises(ValueError, match="alignment: expected one of similarity, upright, got 'affine'"):
        face_alignment(slight, SIZE, "affine")


def test_upright_box_at_the_border_is_reflected(astronaut):
    """A box leaving the photo: the crop is that of the photo padded by reflection (as the warp pads)."""
    image, landmarks, _ = astronaut
    points = points5_from_landmarks(landmarks) - [170, 90]  # the face near the top-left corner
    shifted = np.ascontiguousarray(image[90:, 170:])
    x0, y0, side = crop_box(upright_alignment(points, SIZE), SIZE)
    assert x0 < 0 and y0 < 0
    padded = cv2.copyMakeBorder(shifted, 100, 100, 100, 100, cv2.BORDER_REFLECT_101)
    scale = SIZE / side  # the same box, 100 px further right and down, in the padded photo
    moved = np.array([[scale, 0, (0.5 - x0 - 100) * scale - 0.5], [0, scale, (0.5 - y0 - 100) * scale - 0.5]])
    assert crop_box(moved, SIZE) == (x0 + 100, y0 + 100, side)
    assert np.array_equal(align_face(shifted, upright_alignment(points, SIZE), SIZE), align_face(padded, moved, SIZE))

