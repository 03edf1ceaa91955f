"""Landmark providers: registered, report "not installed" cleanly, convert detections to FaceLandmarks."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest

from mofrr_core.builtin import landmark_providers as providers
from mofrr_core.plugins import get_landmark_providers
from mofrr_core.retouch import FaceLandmarks


def test_both_providers_are_registered():
    found = get_landmark_providers()
    assert found["mediapipe"].scheme == "mediapipe478" and found["dlib"].scheme == "dlib68"
    assert found["mediapipe"].priority > found["dlib"].priority
    assert found["mediapipe"].distribution == "mofrr"


@pytest.mark.parametrize("name,module", [("mediapipe", "mediapipe"), ("dlib", "dlib")])
def test_missing_dependency_is_an_import_error_saying_not_installed(name, module, monkeypatch):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(ImportError, match="not installed"):
        get_landmark_providers()[name].factory()


def test_face_detector_explains_when_no_provider_is_installed(monkeypatch):
    if any(importlib.util.find_spec(m) for m in ("mediapipe", "dlib")):
        pytest.skip("a landmark provider is installed here")
    from mofrr_core.restore import face_detector

    with pytest.raises(RuntimeError, match=r"mediapipe: .*not installed.*dlib: .*not installed"):
        face_detector()


def test_mediapipe_detections_become_pixel_landmarks(monkeypatch):
    """A stand-in mediapipe module: normalised (x, y) -> pixel FaceLandmarks of 478 points."""
    normalised = np.random.default_rng(0).uniform(0.2, 0.8, size=(478, 2))
    calls = {}

    class FaceMesh:
        def __init__(self, **kwargs):
            calls.update(kwargs)

        def process(self, image):
            landmark = [types.SimpleNamespace(x=x, y=y, z=0.0) for x, y in normalised]
            return types.SimpleNamespace(multi_face_landmarks=[types.SimpleNamespace(landmark=landmark)])

    class FaceDetection:  # the full-range search finds nothing: a small photo also goes whole to the mesh
        def __init__(self, **kwargs):
            assert kwargs["model_selection"] == 1

        def process(self, image):
            return types.SimpleNamespace(detections=[])

    fake = types.ModuleType("mediapipe")
    fake.solutions = types.SimpleNamespace(face_mesh=types.SimpleNamespace(FaceMesh=FaceMesh),
                                           face_detection=types.SimpleNamespace(FaceDetection=FaceDetection))
    monkeypatch.setitem(sys.modules, "mediapipe", fake)
    detect = providers.mediapipe_factory()
    assert calls["static_image_mode"] is True and calls["refine_landmarks"] is True
    faces = detect(np.zeros((100, 200, 3), np.uint8))
    assert len(faces) == 1 and isinstance(faces[0], FaceLandmarks) and faces[0].scheme == "mediapipe478"
    np.testing.assert_allclose(faces[0].points, normalised * [200, 100], rtol=1e-5)
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        detect(np.zeros((100, 200), np.uint8))


def test_dlib_detections_become_68_points(monkeypatch):
    points = np.random.default_rng(1).integers(10, 90, size=(68, 2))

    class Shape:
        def parts(self):
            return [types.SimpleNamespace(x=int(x), y=int(y)) for x, y in points]

    fake_dlib = types.ModuleType("dlib")
    # a face in the (small) photo itself; none in the search windows and crops
    fake_dlib.get_frontal_face_detector = lambda: (lambda image, upsample: ["rect"] if image.shape[0] == 100 else [])
    fake_dlib.shape_predictor = lambda path: (lambda image, rect: Shape())
    fake_models = types.ModuleType("face_recognition_models")
    fake_models.pose_predictor_model_location = lambda: "shape_predictor_68_face_landmarks.dat"
    monkeypatch.setitem(sys.modules, "dlib", fake_dlib)
    monkeypatch.setitem(sys.modules, "face_recognition_models", fake_models)
    faces = providers.dlib_factory()(np.zeros((100, 100, 3), np.uint8))
    assert len(faces) == 1 and faces[0].scheme == "dlib68"
    np.testing.assert_array_equal(faces[0].points, points.astype(np.float32))


def test_a_face_found_twice_is_kept_once():
    """The same face found whole and in a crop with eyes apart by more than a quarter eye distance (a face cut by
    the photo's border) overlaps itself as one face: kept once, the first find; a face beside it stays."""
    from mofrr_core.faces import points5_from_landmarks
    from tests.robustness.helpers import astronaut_with_landmarks

    _, points = astronaut_with_landmarks()
    first = FaceLandmarks(points)
    moved = points.copy()
    eyes = float(np.linalg.norm(points[468] - points[473]))
    moved[[33, 133, 362, 263, 468, 473]] += [0.4 * eyes, 0.0]  # the second find's eyes land elsewhere
    width = float(np.ptp(points[:, 0]))
    beside = FaceLandmarks(points + [1.2 * width, 0.0])
    kept = providers.distinct_faces([first, FaceLandmarks(moved), beside])
    assert len(kept) == 2 and kept[0] is first and kept[1] is beside
    # the eye rule alone would have kept the moved find: its eyes are more than a quarter eye distance away
    shift = np.abs(points5_from_landmarks(FaceLandmarks(moved))[:2] - points5_from_landmarks(first)[:2]).max()
    assert shift > 0.25 * eyes
