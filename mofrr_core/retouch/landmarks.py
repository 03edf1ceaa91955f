"""Face landmarks for the retouching engine: 478 MediaPipe face-mesh points or 68 dlib points.

:class:`FaceLandmarks` wraps the points and exposes the regions the retouching ops need (face
oval, eyes, brows, lips, jaw, cheeks, centres and sizes). "left" and "right" are in *image*
coordinates (``left_eye()`` is the eye with the smaller x), whatever the scheme's own naming.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

MEDIAPIPE = "mediapipe478"
DLIB = "dlib68"
SCHEMES = {478: MEDIAPIPE, 468: MEDIAPIPE, 68: DLIB}

# MediaPipe face-mesh indices (canonical order; 468..477 are the iris points of refine_landmarks).
# "LEFT"/"RIGHT" below are in image coordinates for an upright, non-mirrored face.
MP_FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
MP_LEFT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
MP_RIGHT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
MP_LEFT_IRIS = [468, 469, 470, 471, 472]
MP_RIGHT_IRIS = [473, 474, 475, 476, 477]
MP_LEFT_BROW = [46, 53, 52, 65, 55, 70, 63, 105, 66, 107]
MP_RIGHT_BROW = [276, 283, 282, 295, 285, 300, 293, 334, 296, 336]
MP_LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
MP_NOSE = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 129, 358, 49, 279]
MP_NOSE_TIP = 1
MP_CHIN = 152
# Lower face contour from the left ear lobe round the chin to the right one (image coordinates).
MP_JAW = [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454]
MP_LEFT_CHEEK = [123, 50, 36, 205, 187, 147, 116, 117, 118, 101]
MP_RIGHT_CHEEK = [352, 280, 266, 425, 411, 376, 345, 346, 347, 330]

# dlib 68-point indices (iBUG 300-W order).
DLIB_JAW = list(range(0, 17))
DLIB_LEFT_BROW = list(range(17, 22))
DLIB_RIGHT_BROW = list(range(22, 27))
DLIB_NOSE = list(range(27, 36))
DLIB_LEFT_EYE = list(range(36, 42))
DLIB_RIGHT_EYE = list(range(42, 48))
DLIB_LIPS = list(range(48, 60))
DLIB_NOSE_TIP = 30
DLIB_CHIN = 8


class FaceLandmarks:
    """Landmarks of one face: ``points`` float32 ``[P, 2]`` pixel (x, y) and their ``scheme``.

    ``scheme`` is ``"mediapipe478"`` (478 or 468 face-mesh points) or ``"dlib68"``; it is
    inferred from ``P`` when not given. Region helpers return float32 ``[K, 2]`` arrays.
    """

    def __init__(self, points: np.ndarray | FaceLandmarks, scheme: str | None = None) -> None:
        if isinstance(points, FaceLandmarks):
            scheme = scheme or points.scheme
            points = points.points
        array = np.asarray(points, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != 2:
            raise ValueError(f"landmarks must be an array [P, 2] of pixel (x, y), got shape {array.shape}")
        if scheme is None:
            if array.shape[0] not in SCHEMES:
                raise ValueError(f"cannot infer the landmark scheme from {array.shape[0]} points "
                                 f"(known: 478/468 MediaPipe, 68 dlib); pass scheme=")
            scheme = SCHEMES[array.shape[0]]
        if scheme not in (MEDIAPIPE, DLIB):
            raise ValueError(f"unknown landmark scheme {scheme!r} (known: {MEDIAPIPE!r}, {DLIB!r})")
        needed = 468 if scheme == MEDIAPIPE else 68
        if array.shape[0] < needed:
            raise ValueError(f"scheme {scheme!r} needs at least {needed} points, got {array.shape[0]}")
        self.points = array
        self.scheme = scheme

    def __len__(self) -> int:
        return len(self.points)

    def __repr__(self) -> str:
        x0, y0, x1, y1 = self.bbox()
        return f"FaceLandmarks({len(self.points)} points, {self.scheme}, bbox=({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}))"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.points if dtype is None else self.points.astype(dtype)

    @property
    def is_mediapipe(self) -> bool:
        return self.scheme == MEDIAPIPE

    def _take(self, indices: list[int]) -> np.ndarray:
        return self.points[indices]

    # -- regions ---------------------------------------------------------------------------
    def face_oval(self) -> np.ndarray:
        """Closed contour of the face (forehead, temples, jaw, chin), in drawing order."""
        if self.is_mediapipe:
            return self._take(MP_FACE_OVAL)
        jaw = self._take(DLIB_JAW)
        brows = self._take(DLIB_LEFT_BROW + DLIB_RIGHT_BROW)
        # dlib has no forehead: lift the brows by ~0.6 of the brow-to-nose-tip height.
        lift = 0.6 * (self.points[DLIB_NOSE_TIP, 1] - brows[:, 1].mean())
        forehead = brows[::-1] - np.array([0.0, lift], dtype=np.float32)
        return np.concatenate([jaw, forehead]).astype(np.float32)

    def jaw(self) -> np.ndarray:
        """Lower face contour from the left ear round the chin to the right ear."""
        return self._take(MP_JAW if self.is_mediapipe else DLIB_JAW)

    def chin(self) -> np.ndarray:
        """The chin point ``[2]``."""
        return self.points[MP_CHIN if self.is_mediapipe else DLIB_CHIN].copy()

    def left_cheek(self) -> np.ndarray:
        """Points on the (image-)left cheek."""
        if self.is_mediapipe:
            return self._take(MP_LEFT_CHEEK)
        return self._cheek_dlib(DLIB_JAW[1:6], DLIB_LEFT_EYE)

    def right_cheek(self) -> np.ndarray:
        """Points on the (image-)right cheek."""
        if self.is_mediapipe:
            return self._take(MP_RIGHT_CHEEK)
        return self._cheek_dlib(DLIB_JAW[11:16], DLIB_RIGHT_EYE)

    def _cheek_dlib(self, jaw: list[int], eye: list[int]) -> np.ndarray:
        # halfway between the jaw contour and the eye/nose: where the cheek bone is
        nose = self.points[DLIB_NOSE_TIP]
        eye_centre = self.points[eye].mean(axis=0)
        anchor = (eye_centre + nose) / 2
        return (0.5 * self.points[jaw] + 0.5 * anchor).astype(np.float32)

    def left_eye(self) -> np.ndarray:
        """Contour of the (image-)left eye."""
        return self._take(MP_LEFT_EYE if self.is_mediapipe else DLIB_LEFT_EYE)

    def right_eye(self) -> np.ndarray:
        """Contour of the (image-)right eye."""
        return self._take(MP_RIGHT_EYE if self.is_mediapipe else DLIB_RIGHT_EYE)

    def eyes(self) -> list[np.ndarray]:
        """``[left_eye(), right_eye()]``."""
        return [self.left_eye(), self.right_eye()]

    def eye_centres(self) -> np.ndarray:
        """``[2, 2]``: (image-)left then right eye centre (the iris centre when available)."""
        if self.is_mediapipe and len(self.points) >= 478:
            return self.points[[MP_LEFT_IRIS[0], MP_RIGHT_IRIS[0]]].copy()
        return np.stack([self.left_eye().mean(axis=0), self.right_eye().mean(axis=0)]).astype(np.float32)

    def eye_sizes(self) -> np.ndarray:
        """``[2, 2]``: (width, height) of the left and right eye openings in pixels."""
        return np.stack([np.ptp(eye, axis=0) for eye in self.eyes()]).astype(np.float32)

    def left_brow(self) -> np.ndarray:
        return self._take(MP_LEFT_BROW if self.is_mediapipe else DLIB_LEFT_BROW)

    def right_brow(self) -> np.ndarray:
        return self._take(MP_RIGHT_BROW if self.is_mediapipe else DLIB_RIGHT_BROW)

    def brows(self) -> list[np.ndarray]:
        """``[left_brow(), right_brow()]``."""
        return [self.left_brow(), self.right_brow()]

    def lips(self) -> np.ndarray:
        """Outer lip contour."""
        return self._take(MP_LIPS if self.is_mediapipe else DLIB_LIPS)

    def nose(self) -> np.ndarray:
        """Nose bridge and base points."""
        return self._take(MP_NOSE if self.is_mediapipe else DLIB_NOSE)

    def nose_tip(self) -> np.ndarray:
        return self.points[MP_NOSE_TIP if self.is_mediapipe else DLIB_NOSE_TIP].copy()

    # -- geometry --------------------------------------------------------------------------
    def face_centre(self) -> np.ndarray:
        """``[2]``: centre of the face (between the eye centres and the nose tip, towards the nose)."""
        eyes = self.eye_centres().mean(axis=0)
        return (0.4 * eyes + 0.6 * self.nose_tip()).astype(np.float32)

    def interocular(self) -> float:
        """Distance between the eye centres in pixels."""
        left, right = self.eye_centres()
        return float(np.hypot(*(right - left)))

    def face_size(self) -> float:
        """A robust face scale in pixels: the larger of the oval's width and 2.2x the interocular distance."""
        width = float(np.ptp(self.face_oval()[:, 0]))
        return max(width, 2.2 * self.interocular())

    def bbox(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of all points."""
        x0, y0 = self.points.min(axis=0)
        x1, y1 = self.points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    # -- transforms ------------------------------------------------------------------------
    def scaled(self, sx: float, sy: float | None = None) -> FaceLandmarks:
        """The landmarks of the image resized by ``(sx, sy)`` (pixel-centre convention)."""
        sy = sx if sy is None else sy
        scale = np.array([sx, sy], dtype=np.float32)
        return FaceLandmarks((self.points + 0.5) * scale - 0.5, self.scheme)

    def translated(self, dx: float, dy: float) -> FaceLandmarks:
        """The landmarks of the image shifted by ``(dx, dy)`` pixels (e.g. after a crop: negative offsets)."""
        return FaceLandmarks(self.points + np.array([dx, dy], dtype=np.float32), self.scheme)

    def is_valid(self, shape: tuple[int, ...] | None = None) -> bool:
        """Finite, not collapsed (face at least 4 px wide) and, given an image ``shape``, overlapping it."""
        if not np.isfinite(self.points).all():
            return False
        try:
            if self.interocular() < 2 or self.face_size() < 4:
                return False
        except ValueError:
            return False
        if shape is not None:
            h, w = shape[:2]
            cx, cy = self.face_centre()
            if not (0 <= cx < w and 0 <= cy < h):
                return False
        return True


def load_landmarks(path_or_array: str | PathLike | np.ndarray | FaceLandmarks | list) -> FaceLandmarks:
    """Landmarks from a ``.npy`` file, an array ``[P, 2]`` (any float dtype) or a :class:`FaceLandmarks`."""
    if isinstance(path_or_array, FaceLandmarks):
        return path_or_array
    if isinstance(path_or_array, (str, PathLike)):
        path = Path(path_or_array)
        if not path.is_file():
            raise FileNotFoundError(f"landmark file not found: {path}")
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{path}: not a numpy .npy landmark array ({error})") from error
        try:
            return FaceLandmarks(array)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
    return FaceLandmarks(np.asarray(path_or_array))
