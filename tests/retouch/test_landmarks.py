"""FaceLandmarks: schemes, regions, transforms, loading."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mofrr_core.retouch import landmarks as L
from mofrr_core.retouch.landmarks import FaceLandmarks, load_landmarks


def resample(contour: np.ndarray, n: int) -> np.ndarray:
    """``n`` points evenly spaced (by arc length) along an open polyline."""
    steps = np.r_[0, np.cumsum(np.linalg.norm(np.diff(contour, axis=0), axis=1))]
    where = np.linspace(0, steps[-1], n)
    return np.stack([np.interp(where, steps, contour[:, i]) for i in (0, 1)], axis=1)


def mesh_to_dlib68(points: np.ndarray) -> np.ndarray:
    """An iBUG 68-point layout built from MediaPipe mesh points (for testing the dlib68 scheme)."""
    p = np.asarray(points, np.float32)
    jaw = resample(p[L.MP_JAW], 17)
    brows = [resample(p[[46, 53, 52, 65, 55]], 5), resample(p[[285, 295, 282, 283, 276]], 5)]
    nose = np.concatenate([resample(p[[168, 6, 197, 4]], 4), p[[98, 97, 2, 326, 327]]])
    left_eye = p[[33, 160, 158, 133, 153, 144]]
    right_eye = p[[362, 385, 387, 263, 373, 380]]
    mouth = p[[61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178]]
    out = np.concatenate([jaw, *brows, nose, left_eye, right_eye, mouth]).astype(np.float32)
    assert out.shape == (68, 2)
    return out


def test_scheme_is_inferred_and_checked(data_face):
    points = data_face[2].points
    assert FaceLandmarks(points).scheme == "mediapipe478"
    assert FaceLandmarks(points[:468]).scheme == "mediapipe478"
    assert FaceLandmarks(mesh_to_dlib68(points)).scheme == "dlib68"
    assert FaceLandmarks(points.astype(np.float16)).points.dtype == np.float32
    with pytest.raises(ValueError, match="cannot infer the landmark scheme from 10 points"):
        FaceLandmarks(points[:10])
    with pytest.raises(ValueError, match=r"\[P, 2\]"):
        FaceLandmarks(points.ravel())
    with pytest.raises(ValueError, match="needs at least 468"):
        FaceLandmarks(points[:68], scheme="mediapipe478")


@pytest.mark.parametrize("scheme", ["mediapipe478", "dlib68"])
def test_regions_are_where_they_belong(scheme, data_face):
    mesh = data_face[2]
    face = mesh if scheme == "mediapipe478" else FaceLandmarks(mesh_to_dlib68(mesh.points))
    left, right = face.eye_centres()
    assert left[0] < right[0]  # image coordinates
    assert face.left_eye()[:, 0].mean() < face.right_eye()[:, 0].mean()
    assert face.left_brow()[:, 1].mean() < left[1] and face.right_brow()[:, 1].mean() < right[1]
    assert face.lips()[:, 1].mean() > face.nose_tip()[1] > left[1]
    assert face.chin()[1] > face.lips()[:, 1].max()
    oval = cv2.convexHull(face.face_oval())
    for point in [left, right, face.face_centre(), face.nose_tip(), face.lips().mean(axis=0),
                  face.left_cheek().mean(axis=0), face.right_cheek().mean(axis=0)]:
        assert cv2.pointPolygonTest(oval, tuple(map(float, point)), False) > 0
    for width, height in face.eye_sizes():
        assert 0 < height < width < face.interocular()
    assert 1.5 * face.interocular() < face.face_size() < 6 * face.interocular()
    assert len(face.jaw()) >= 17 and len(face.brows()) == 2


def test_dlib_and_mesh_agree_on_face_geometry(data_face):
    mesh = data_face[2]
    dlib = FaceLandmarks(mesh_to_dlib68(mesh.points))
    scale = mesh.interocular()
    assert np.linalg.norm(dlib.face_centre() - mesh.face_centre()) < 0.1 * scale
    assert dlib.face_size() == pytest.approx(mesh.face_size(), rel=0.2)


def test_scaled_and_translated(data_face):
    face = data_face[2]
    doubled = face.scaled(2.0)
    np.testing.assert_allclose(doubled.points, (face.points + 0.5) * 2 - 0.5, rtol=1e-6)
    assert doubled.face_size() == pytest.approx(2 * face.face_size(), rel=1e-5)
    assert doubled.scheme == face.scheme
    squeezed = face.scaled(0.5, 0.25)
    np.testing.assert_allclose(squeezed.points[:, 1], (face.points[:, 1] + 0.5) * 0.25 - 0.5, rtol=1e-6)
    moved = face.translated(-10, 5)
    np.testing.assert_allclose(moved.points - face.points, np.broadcast_to([-10, 5], face.points.shape), atol=1e-4)
    np.testing.assert_allclose(moved.face_centre(), face.face_centre() + [-10, 5], atol=1e-4)


def test_load_landmarks(tmp_path, data_face):
    face = data_face[2]
    path = tmp_path / "face.landmarks.npy"
    np.save(path, face.points.astype(np.float16))
    loaded = load_landmarks(path)
    np.testing.assert_allclose(loaded.points, face.points, atol=0.25)  # float16 storage
    assert load_landmarks(str(path)).scheme == "mediapipe478"
    assert load_landmarks(face) is face
    assert load_landmarks(face.points.tolist()).points.shape == (478, 2)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        load_landmarks(tmp_path / "missing.npy")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="bad.npy"):
        load_landmarks(bad)


def test_validity(data_face):
    face = data_face[2]
    assert face.is_valid((224, 224, 3))
    assert not face.translated(500, 0).is_valid((224, 224, 3))
    assert not FaceLandmarks(np.zeros((478, 2))).is_valid()
