"""Whole photos with small and many faces: the real MediaPipe provider on composed photos.

Photos are composed from skimage's astronaut (a head pasted at several sizes onto large textured
canvases); each found face must match a pasted one within 10 % of its eye distance, none missed,
none invented. CI installs MediaPipe (README test command); elsewhere these tests skip without it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from mofrr_core.faces import find_face_boxes, points5_from_landmarks, pyramid_scales, window_starts
from tests.robustness.helpers import astronaut_with_landmarks, composed_photo

if os.environ.get("CI"):
    import mediapipe  # noqa: F401 - CI must run these tests, not skip them
else:
    pytest.importorskip("mediapipe", reason="needs the landmarks extra: pip install --no-deps mediapipe==0.10.21")


@pytest.fixture(scope="module")
def detect():
    from mofrr_core.builtin.landmark_providers import mediapipe_factory

    return mediapipe_factory()


def assert_found(found, expected, tolerance=0.1) -> None:
    """Every expected face found once (5 points within ``tolerance`` eye distances), nothing else."""
    got = [points5_from_landmarks(face) for face in found]
    assert len(got) == len(expected), f"found {len(got)} faces, expected {len(expected)}"
    for face in expected:
        five = points5_from_landmarks(face)
        eyes = np.linalg.norm(five[0] - five[1])
        errors = [np.abs(g - five).max() / eyes for g in got]
        assert min(errors) < tolerance, f"face at {five[0].round()} missed (best error {min(errors):.2f} eye distances)"


@pytest.mark.parametrize("height,width,faces", [
    (3000, 4000, [(1234, 1777, 48)]),                                   # one small face, 12 MP
    (4000, 3000, [(1000, 2500, 52)]),                                   # portrait
    (1500, 2000, [(100, 500, 48), (900, 200, 200)]),                    # two, 4x apart in size
    (3000, 4000, [(200, 300, 48), (900, 250, 70), (1700, 400, 110), (2300, 1300, 300), (400, 1800, 160)]),
], ids=["one-small-4000x3000", "one-portrait", "two-sizes", "five-sizes"])
def test_every_face_of_a_composed_photo_is_found(detect, height, width, faces):
    photo, expected = composed_photo(height, width, faces)
    assert_found(detect(photo), expected)


def test_the_issue_reproductions_are_found(detect):
    image, landmarks = astronaut_with_landmarks()
    canvas = np.full((768, 1024, 3), 100, np.uint8)  # the astronaut pasted into a larger canvas
    canvas[100:612, 300:812] = image
    assert_found(detect(canvas), [landmarks + [300, 100]])
    pair = np.concatenate([image, image], axis=1)  # two astronauts side by side, 1024x512
    assert_found(detect(pair), [landmarks, landmarks + [512, 0]])
    import cv2

    for side in (400, 1000, 1500, 3000):  # the whole astronaut photo at several sizes in 4000x3000
        photo = np.full((3000, 4000, 3), 100, np.uint8)
        photo[:side, 500:500 + side] = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        assert_found(detect(photo), [(landmarks + 0.5) * side / 512 - 0.5 + [500, 0]])


def test_a_photo_without_faces_gives_none(detect):
    photo, _ = composed_photo(1500, 2000, [])
    assert detect(photo) == []


def test_whole_photo_cli_restores_every_face_and_prints_only_its_line(tmp_path, capfd, pipeline_dir):
    """Real detector, tiny pipeline: both faces change, and stderr (the file descriptor, where the
    native TensorFlow Lite / MediaPipe logs would go) stays empty."""
    from PIL import Image

    from mofrr_core.cli import main

    photo, faces = composed_photo(1200, 1600, [(150, 300, 50), (900, 200, 120)])
    Image.fromarray(photo).save(tmp_path / "group.png")
    capfd.readouterr()
    code = main(["restore", str(tmp_path / "group.png"), "-o", str(tmp_path / "out"), "--pipeline", str(pipeline_dir)])
    out, err = capfd.readouterr()
    assert code == 0 and err == "", err
    assert "2 faces" in out
    restored = np.asarray(Image.open(tmp_path / "out" / "group.png")).astype(int)
    for face in faces:
        x, y = points5_from_landmarks(face)[2].round().astype(int)  # the nose tip changed
        assert np.abs(restored[y - 3:y + 4, x - 3:x + 4] - photo[y - 3:y + 4, x - 3:x + 4]).max() > 0


# -- the search itself, with a stand-in detector (no MediaPipe needed) ---------------------------------
def test_pyramid_windows_cover_every_face_size():
    """At some level every face of 128 px .. the whole photo is 1/8 .. 1/2 of a window and lies whole in one."""
    for height, width in [(3000, 4000), (128, 4096), (768, 1024), (200, 200), (16384, 5000)]:
        scales = pyramid_scales(height, width)
        assert scales[-1] * max(height, width) == pytest.approx(256)
        for scale in scales[:-1]:
            level = round(width * scale)
            starts = window_starts(level, 256)
            assert starts[0] == 0 and starts[-1] + 256 >= level and np.diff(starts).max(initial=0) <= 128
        for face in np.geomspace(128, max(128, min(height, width)), 12):
            assert any(31.99 <= face * s <= 128.01 for s in scales[:-1]) or face * scales[-1] >= 31.99


def test_find_face_boxes_maps_windows_back_and_merges_duplicates():
    """A stand-in detector that sees a bright square when it is whole inside a window and at least
    1/8 of it: the square comes back once, in photo pixels."""
    photo = np.zeros((3000, 4000, 3), np.uint8)
    photo[1100:1300, 2100:2300] = 255
    calls = []

    def bright_squares(tile):
        calls.append(tile.shape)
        rows, cols = np.nonzero(tile[..., 0] > 128)
        if rows.size == 0 or rows.min() == 0 or cols.min() == 0 or rows.max() == tile.shape[0] - 1 \
                or cols.max() == tile.shape[1] - 1 or rows.max() - rows.min() < 256 / 8:
            return []
        return [(cols.min(), rows.min(), cols.max() + 1, rows.max() + 1, 0.9)]

    boxes = find_face_boxes(photo, bright_squares)
    assert len(boxes) == 1
    np.testing.assert_allclose(boxes[0][:4], [2100, 1100, 2300, 1300], atol=8)
    assert max(max(shape[:2]) for shape in calls) <= 256  # the detector never sees more than a window
    assert len(calls) < 60


def test_dlib_provider_finds_small_and_large_faces_too():
    """The alternative provider (dlib HOG, 68 points) uses the same two stages; slower, so one photo."""
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from mofrr_core.builtin.landmark_providers import dlib_factory

    photo, expected = composed_photo(1500, 2000, [(100, 500, 48), (900, 200, 200)])
    assert_found(dlib_factory()(photo), expected)
