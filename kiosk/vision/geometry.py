"""Rotated square regions of interest and the affine maps between image and model crops.

Pure functions, pixel space (x right, y down). A rotation r > 0 turns the region clockwise on
screen, as MediaPipe's NormalizedRect.rotation does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Roi:
    """A rotated rectangle in image pixels."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0  # radians, clockwise on screen

    def corners(self) -> np.ndarray:
        """Top-left, top-right, bottom-right, bottom-left corners in image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        u = np.array([c, s]) * self.width / 2
        v = np.array([-s, c]) * self.height / 2
        ctr = np.array([self.cx, self.cy])
        return np.array([ctr - u - v, ctr + u - v, ctr + u + v, ctr - u + v])


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def rotation_from_points(p0: np.ndarray, p1: np.ndarray, target_degrees: float = 0.0) -> float:
    """MediaPipe's rule: the rotation that brings the p0→p1 vector to the target angle."""
    return normalize_radians(math.radians(target_degrees) - math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0]))


def square_roi(cx: float, cy: float, w: float, h: float, rotation: float, scale: float) -> Roi:
    """RectTransformation with square_long: a square on the long side, scaled."""
    side = max(w, h) * scale
    return Roi(cx, cy, side, side, rotation)


def crop_matrix(roi: Roi, out_w: int, out_h: int) -> np.ndarray:
    """2x3 affine that maps the ROI's corners onto the output's corners (0..W, 0..H)."""
    tl, tr, _, bl = roi.corners()
    src = np.float32([tl, tr, bl])
    dst = np.float32([[0, 0], [out_w, 0], [0, out_h]])
    return cv2.getAffineTransform(src, dst)


def crop(
    image: np.ndarray, roi: Roi, out_w: int, out_h: int, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """Sample the rotated ROI into an out_w x out_h image, bilinear."""
    m = crop_matrix(roi, out_w, out_h)
    return cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=border)


def crop_to_image(points: np.ndarray, roi: Roi, out_w: int, out_h: int) -> np.ndarray:
    """Map (N,2) points in crop pixels back to image pixels."""
    m = cv2.invertAffineTransform(crop_matrix(roi, out_w, out_h))
    return points @ m[:, :2].T + m[:, 2]
