"""468-point face mesh on a rotated ROI, and the ROI rules that let video track instead of detect.

ROI rules follow MediaPipe's face_landmark graphs: from a detection, the eye keypoints set the
rotation and the box is squared and scaled by 1.5; from landmarks, points 33 and 263 set the
rotation and the landmarks' bounding box is squared and scaled by 1.5.
"""

from __future__ import annotations

import math

import numpy as np

from kiosk.vision.geometry import Roi, crop, rotation_from_points, square_roi
from kiosk.vision.mesh import EYE_CORNER_LEFT, EYE_CORNER_RIGHT
from kiosk.vision.runtime import Model, models_dir
from kiosk.vision.types import Detection

INPUT_SIZE = 192
ROI_SCALE = 1.5


def roi_from_detection(det: Detection) -> Roi:
    x0, y0, x1, y1 = det.box
    rotation = rotation_from_points(det.keypoints[0], det.keypoints[1])
    return square_roi((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rotation, ROI_SCALE)


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    xy = landmarks[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    rotation = rotation_from_points(xy[EYE_CORNER_RIGHT], xy[EYE_CORNER_LEFT])
    return square_roi(
        (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[0] - lo[0], hi[1] - lo[1], rotation, ROI_SCALE
    )


class FaceMesh:
    """Runs the face-landmark model on one ROI; returns image-pixel landmarks and presence."""

    def __init__(self, num_threads: int = 2):
        self.model = Model(models_dir() / "face_landmark.tflite", num_threads)

    def run(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        patch = crop(rgb, roi, INPUT_SIZE, INPUT_SIZE)
        raw, flag = self.model.run_uint8(patch, 1.0 / 255.0)
        pts = raw.reshape(-1, 3).astype(np.float64) / INPUT_SIZE  # [0,1] of the crop, z like x
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(flag.reshape(-1)[0], -100, 100))))
        # LandmarkProjection: rotate about the crop centre, scale by the (square) ROI side
        c, s = math.cos(roi.rotation), math.sin(roi.rotation)
        x, y = pts[:, 0] - 0.5, pts[:, 1] - 0.5
        out = np.empty_like(pts)
        out[:, 0] = (c * x - s * y) * roi.width + roi.cx
        out[:, 1] = (s * x + c * y) * roi.height + roi.cy
        out[:, 2] = pts[:, 2] * roi.width
        return out, presence
