"""Built-in plugin: face landmark providers (MediaPipe face mesh, dlib), each an optional extra.

The optional dependency is imported inside ``factory()``: an ``ImportError`` there means "not
installed" (:func:`mofrr_core.restore.face_detector` then tries the next provider).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import numpy as np

from mofrr_core.hookspecs import hookimpl
from mofrr_core.spec import LandmarkProviderSpec

# MediaPipe declares jax & co. as dependencies; the face mesh needs none of them.
MEDIAPIPE_INSTALL = "pip install 'mofrr[landmarks]' && pip install --no-deps mediapipe==0.10.21"


MESH_CROP = 2.2
"""The landmark crop around a detected face box: this many times the box's longer side."""
MESH_SIDE = 256
"""Side (px) the landmark crop is resized to before the face mesh sees it."""
WHOLE_PHOTO_SIDE = 512
"""Photos up to this side also go whole to the landmarker (face crops, small photos)."""
DLIB_FIRST_SCALE = 0.5
"""dlib's HOG needs faces of 80 px (40 px of a window upsampled once): its finest level is half the photo."""
MAX_FACES = 64
"""At most this many faces (the largest) get landmarks per photo."""
FIND_CONFIDENCE, MESH_CONFIDENCE = 0.5, 0.7
"""Score thresholds of the full-range search and of the face mesh's own (short-range) detector on the
crop. The second stage confirms each face: on composed test photos true faces scored 0.87-0.93 there
and the full-range detector's false positives on textures 0.5-0.6."""
QUIET_ENV = "MOFRR_NATIVE_LOGS"
"""Set to 1 to see the native (TensorFlow Lite / MediaPipe / absl) log lines that are silenced."""


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
    from mofrr_core.io import check_image_size

    if reason := check_image_size(image.shape[1], image.shape[0], min_side=1):
        raise ValueError(reason)  # before any native call: OpenCV aborts the process on extreme sizes
    return np.ascontiguousarray(image)


@contextmanager
def quiet_native_logs():
    """Send file descriptor 2 to /dev/null meanwhile: TensorFlow Lite and MediaPipe log from C++ threads
    ("Created TensorFlow Lite XNNPACK delegate", absl warnings), which Python cannot filter."""
    if os.environ.get(QUIET_ENV) == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _nearest_to_centre(faces: list[np.ndarray], side: int) -> np.ndarray | None:
    centre = np.array([side / 2, side / 2])
    return min(faces, key=lambda f: float(np.linalg.norm(f.mean(axis=0) - centre)), default=None)


def distinct_faces(faces: list) -> list:
    """The faces found once: drop a face whose eyes lie within a quarter eye distance of an earlier face's, or
    whose landmarks' box overlaps an earlier face's as two finds of one face do (:func:`~mofrr_core.faces.same_face`:
    a face cut by the photo's border, found whole and in a crop, can get landmarks whose eyes differ by more)."""
    from mofrr_core.faces import points5_from_landmarks, same_face

    kept, eyes, boxes = [], [], []
    for face in faces:
        left, right = points5_from_landmarks(face)[:2]
        tolerance = 0.25 * max(float(np.linalg.norm(right - left)), 1.0)
        points = np.asarray(getattr(face, "points", face))
        box = (*points.min(axis=0), *points.max(axis=0))
        if all(np.linalg.norm(left - a) > tolerance or np.linalg.norm(right - b) > tolerance for a, b in eyes) \
                and not any(same_face(box, other) for other in boxes):
            kept.append(face)
            eyes.append((left, right))
            boxes.append(box)
    return kept


def two_stage_detector(detect_boxes, landmarks_in_crop, scheme: str, max_faces: int = MAX_FACES,
                       landmarks_in_photo=None, first_scale: float | None = None):
    """``detect(image)``: faces of any size anywhere (:func:`~mofrr_core.faces.find_face_boxes` with
    ``detect_boxes``), then ``landmarks_in_crop(crop) -> [P, 2] arrays`` on a ``MESH_SIDE`` crop around
    each box (the face nearest the crop centre is kept). A photo of at most ``WHOLE_PHOTO_SIDE`` px is
    also given whole to ``landmarks_in_photo`` (default ``landmarks_in_crop``) first: a face that fills
    it, or is cut by its border, gets better landmarks than from a crop padded with black. Faces
    found twice are kept once. ``first_scale``: the pyramid's finest level (default
    :data:`~mofrr_core.faces.SEARCH_FIRST_SCALE`)."""
    from mofrr_core.faces import SEARCH_FIRST_SCALE, find_face_boxes, square_crop
    from mofrr_core.retouch.landmarks import FaceLandmarks

    whole = landmarks_in_photo or landmarks_in_crop

    def detect(image: np.ndarray) -> list[FaceLandmarks]:
        image = _rgb(image)
        boxes = find_face_boxes(image, detect_boxes, first=first_scale or SEARCH_FIRST_SCALE)
        boxes = sorted(boxes, key=lambda b: -max(b[2] - b[0], b[3] - b[1]))[:max_faces]
        faces = []
        if max(image.shape[:2]) <= WHOLE_PHOTO_SIDE:  # a small photo: the landmarker sees it whole first
            faces += [FaceLandmarks(points.astype(np.float32), scheme) for points in whole(image)]
        for box in boxes:
            crop, x0, y0, scale = square_crop(image, box, MESH_CROP, MESH_SIDE)
            points = _nearest_to_centre(landmarks_in_crop(crop), MESH_SIDE)
            if points is not None:
                faces.append(FaceLandmarks(((points + 0.5) / scale - 0.5 + [x0, y0]).astype(np.float32), scheme))
        return distinct_faces(faces)

    return detect


def mediapipe_factory(max_faces: int = MAX_FACES):
    """``detect(image) -> list[FaceLandmarks]`` (478 points, pixel x, y) for faces of any size.

    MediaPipe's full-range face detector (BlazeFace, shipped in the wheel) searches windows of a
    pyramid of the photo; the face mesh then runs on a crop around each face found. Neither ever
    sees more than 256x256 pixels, whatever the photo's size.
    """
    try:
        import mediapipe as mp
    except ImportError as error:
        raise ImportError(f"mediapipe is not installed ({MEDIAPIPE_INSTALL})") from error

    with quiet_native_logs():
        finder = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                            min_detection_confidence=FIND_CONFIDENCE)
        meshes = [mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                                  max_num_faces=count, min_detection_confidence=confidence)
                  for count, confidence in ((3, MESH_CONFIDENCE), (max_faces, 0.5))]
        blank = np.zeros((64, 64, 3), np.uint8)  # the graphs log from their threads when first run
        for graph in (finder, *meshes):
            graph.process(blank)

    def detect_boxes(tile: np.ndarray) -> list[tuple[float, ...]]:
        h, w = tile.shape[:2]
        with quiet_native_logs():
            found = finder.process(tile).detections or []
        boxes = []
        for detection in found:
            box = detection.location_data.relative_bounding_box
            boxes.append((box.xmin * w, box.ymin * h, (box.xmin + box.width) * w, (box.ymin + box.height) * h,
                          float(detection.score[0]) if detection.score else 0.0))
        return boxes

    def landmarks(mesh):
        def run(crop: np.ndarray) -> list[np.ndarray]:
            h, w = crop.shape[:2]
            with quiet_native_logs():
                result = mesh.process(crop)
            return [np.array([[p.x * w, p.y * h] for p in face.landmark], dtype=np.float64)
                    for face in result.multi_face_landmarks or []]
        return run

    return two_stage_detector(detect_boxes, landmarks(meshes[0]), "mediapipe478", max_faces, landmarks(meshes[1]))


def dlib_factory(upsample: int = 1, max_faces: int = MAX_FACES):
    """``detect(image) -> list[FaceLandmarks]`` (68 points) with dlib's HOG detector and shape predictor.

    The same two stages as MediaPipe (:func:`two_stage_detector`): HOG on the pyramid's 256 px
    windows (upsampled ``upsample`` times: faces from about 40 px of a window), then HOG and the
    68-point predictor on a crop around each face; a photo of at most 512 px is also searched whole.
    """
    try:
        import dlib
        import face_recognition_models
    except ImportError as error:
        raise ImportError("dlib / face_recognition_models are not installed (pip install 'mofrr[eval]')") from error

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def detect_boxes(tile: np.ndarray) -> list[tuple[float, ...]]:
        return [(r.left(), r.top(), r.right() + 1, r.bottom() + 1, 1.0) for r in detector(tile, upsample)]

    def landmarks_in_crop(crop: np.ndarray) -> list[np.ndarray]:
        return [np.array([[p.x, p.y] for p in predictor(crop, rect).parts()], dtype=np.float64)
                for rect in detector(crop, upsample)]

    return two_stage_detector(detect_boxes, landmarks_in_crop, "dlib68", max_faces, first_scale=DLIB_FIRST_SCALE)


@hookimpl
def register_landmark_providers(register):
    register(LandmarkProviderSpec(name="mediapipe", factory=mediapipe_factory, scheme="mediapipe478",
                                  priority=10,
                                  description="MediaPipe 0.10.21 face mesh, 478 points "
                                              f"({MEDIAPIPE_INSTALL})"))
    register(LandmarkProviderSpec(name="dlib", factory=dlib_factory, scheme="dlib68", priority=5,
                                  description="dlib HOG detector + 68-point predictor (pip install 'mofrr[eval]')"))
