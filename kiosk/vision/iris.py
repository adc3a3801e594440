"""Iris landmarks on each eye (MediaPipe iris model): the eyelid contour, pupil centres and gaze.

Eye ROIs as MediaPipe's iris graph builds them: from the two eye corners, squared on their
horizontal extent and scaled by 2.3; the second eye is mirrored so the model sees a left eye.
The model's 71-point eye contour follows the eyelids (the 468-point mesh does not: it keeps an
open almond on closed eyes), so the eye state is measured on it.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from kiosk.vision.geometry import crop_matrix, rotation_from_points, square_roi
from kiosk.vision.mesh import IRIS_EYES as EYES
from kiosk.vision.runtime import Model, models_dir

INPUT_SIZE = 64
ROI_SCALE = 2.3
CONTOUR_POINTS = 71


class EyeLandmarks(NamedTuple):
    contours: np.ndarray  # (2, 71, 2) eye contour (lid margin first, see mesh.CONTOUR_*), pixels
    iris: np.ndarray  # (2, 5, 2) iris centre and 4 boundary points, pixels


class IrisModel:
    def __init__(self, num_threads: int = 2):
        self.model = Model(models_dir() / "iris_landmark.tflite", num_threads)

    def run(self, rgb: np.ndarray, landmarks: np.ndarray) -> EyeLandmarks:
        """Both eyes' contour and iris points, image-left eye first, in image pixels."""
        contours = np.zeros((2, CONTOUR_POINTS, 2))
        irises = np.zeros((2, 5, 2))
        for i in range(2):
            contours[i], irises[i] = self.run_eye(rgb, landmarks, i)
        return EyeLandmarks(contours, irises)

    def run_eye(self, rgb: np.ndarray, landmarks: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
        """One eye (0: image-left): its (71, 2) contour and (5, 2) iris points in image pixels."""
        a, b, mirrored = EYES[i]
        p0, p1 = landmarks[a, :2], landmarks[b, :2]
        lo, hi = np.minimum(p0, p1), np.maximum(p0, p1)
        roi = square_roi(*(lo + hi) / 2, *(hi - lo), rotation_from_points(p0, p1), ROI_SCALE)
        m = crop_matrix(roi, INPUT_SIZE, INPUT_SIZE)  # once: the crop and the way back share it
        patch = cv2.warpAffine(
            rgb, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        contour, iris = self.model.run_uint8(cv2.flip(patch, 1) if mirrored else patch, 1.0 / 255.0)
        pts = np.empty((CONTOUR_POINTS + 5, 2))
        pts[:CONTOUR_POINTS] = contour.reshape(CONTOUR_POINTS, 3)[:, :2]
        pts[CONTOUR_POINTS:] = iris.reshape(5, 3)[:, :2]
        if mirrored:
            pts[:, 0] = INPUT_SIZE - pts[:, 0]
        back = cv2.invertAffineTransform(m)
        pts = pts @ back[:, :2].T + back[:, 2]
        return pts[:CONTOUR_POINTS], pts[CONTOUR_POINTS:]


def carry(
    points: np.ndarray, before: tuple[np.ndarray, np.ndarray], now: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Move points measured against two eye corners (before) onto where those corners are now.

    A similarity (shift, rotation, scale): a lid aperture, a ratio, is unchanged by it.
    """
    (a0, b0), (a1, b1) = before, now
    d0, d1 = b0 - a0, b1 - a1
    z = complex(*d1) / (complex(*d0) or 1.0)
    m = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return (points - a0) @ m.T + a1


def gaze(landmarks: np.ndarray, iris: np.ndarray) -> tuple[float, float]:
    """Mean iris offset from the eye's centre, in eye widths, in the eye line's frame.

    (0, 0) looks at the camera; x > 0 the irises sit towards image right, y > 0 downwards.
    """
    offsets = []
    for i, (a, b, _) in enumerate(EYES):
        p0, p1 = landmarks[a, :2], landmarks[b, :2]
        axis = p1 - p0
        width = float(np.hypot(*axis)) or 1.0
        ux = axis / width
        uy = np.array([-ux[1], ux[0]])
        d = iris[i, 0] - (p0 + p1) / 2
        offsets.append((float(d @ ux) / width, float(d @ uy) / width))
    ox, oy = np.mean(offsets, axis=0)
    return float(ox), float(oy)
