"""Built-in plugin: face landmark providers (MediaPipe face mesh, dlib), each an optional extra.

The optional dependency is imported inside ``factory()``: an ``ImportError`` there means "not
installed" (:func:`mofrr_core.restore.face_detector` then tries the next provider).
"""

from __future__ import annotations

import numpy as np

from mofrr_core.hookspecs import hookimpl
from mofrr_core.spec import LandmarkProviderSpec

# MediaPipe declares jax & co. as dependencies; the face mesh needs none of them.
MEDIAPIPE_INSTALL = "pip install 'mofrr[landmarks]' && pip install --no-deps mediapipe==0.10.21"


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def mediapipe_factory(max_faces: int = 8):
    """``detect(image) -> list[FaceLandmarks]`` with MediaPipe face mesh (478 points, pixel x, y)."""
    try:
        import mediapipe as mp
    except ImportError as error:
        raise ImportError(f"mediapipe is not installed ({MEDIAPIPE_INSTALL})") from error
    from mofrr_core.retouch.landmarks import FaceLandmarks

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                           max_num_faces=max_faces, min_detection_confidence=0.5)

    def detect(image: np.ndarray) -> list[FaceLandmarks]:
        image = _rgb(image)
        h, w = image.shape[:2]
        result = mesh.process(image)
        faces = []
        for face in result.multi_face_landmarks or []:
            points = np.array([[p.x * w, p.y * h] for p in face.landmark], dtype=np.float32)
            faces.append(FaceLandmarks(points, "mediapipe478"))
        return faces

    return detect


def dlib_factory(upsample: int = 1):
    """``detect(image) -> list[FaceLandmarks]`` with dlib's HOG detector and 68-point shape predictor."""
    try:
        import dlib
        import face_recognition_models
    except ImportError as error:
        raise ImportError("dlib / face_recognition_models are not installed (pip install 'mofrr[eval]')") from error
    from mofrr_core.retouch.landmarks import FaceLandmarks

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def detect(image: np.ndarray) -> list[FaceLandmarks]:
        image = _rgb(image)
        faces = []
        for rect in detector(image, upsample):
            shape = predictor(image, rect)
            points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
            faces.append(FaceLandmarks(points, "dlib68"))
        return faces

    return detect


@hookimpl
def register_landmark_providers(register):
    register(LandmarkProviderSpec(name="mediapipe", factory=mediapipe_factory, scheme="mediapipe478",
                                  priority=10,
                                  description="MediaPipe 0.10.21 face mesh, 478 points "
                                              f"({MEDIAPIPE_INSTALL})"))
    register(LandmarkProviderSpec(name="dlib", factory=dlib_factory, scheme="dlib68", priority=5,
                                  description="dlib HOG detector + 68-point predictor (pip install 'mofrr[eval]')"))
