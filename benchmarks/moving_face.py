"""Synthetic camera stream of a real face settling in front of the kiosk, for tracker benchmarks.

Why: video-mode face mesh (detect once, then track from the previous landmarks) has to be timed and
compared on a stream whose motion is smooth and known. This cuts the astronaut's head and shoulders
from tests/fixtures/faces/astronaut.png (NASA, public domain) and moves it over a softly textured
background: drifting in from off-centre, coming a little closer, rolling a few degrees, with a
small sway and mild sensor noise. Everything is a function of (n, size, seed): deterministic.

Pure numpy + OpenCV so it imports from the project venv (numpy 2) and the MediaPipe reference venv
(numpy 1.26) alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

SOURCE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faces" / "astronaut.png"
FACE_CENTRE = (224.0, 130.0)  # face centre in astronaut.png (MediaPipe detection box centre)
FACE_WIDTH = 95.0  # face detection box width in astronaut.png, pixels
CROP = (94, 0, 354, 330)  # x0, y0, x1, y1 of the head-and-shoulders cut-out in astronaut.png
NOISE_SIGMA = 2.0  # grey levels of per-frame sensor noise


@lru_cache(maxsize=1)
def _cutout() -> tuple[np.ndarray, np.ndarray]:
    """The head-and-shoulders crop (float32 RGB) and a feathered elliptic alpha mask for it."""
    bgr = cv2.imread(str(SOURCE), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(SOURCE)
    x0, y0, x1, y1 = CROP
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[y0:y1, x0:x1].astype(np.float32)
    h, w = rgb.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    centre = (int(FACE_CENTRE[0] - x0), int(FACE_CENTRE[1] - y0 + 45))
    cv2.ellipse(alpha, centre, (112, 150), 0, 0, 360, 1.0, thickness=-1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 9)
    return rgb, alpha


def _background(size: tuple[int, int], seed: int) -> np.ndarray:
    """A beige booth wall: vertical light gradient plus low-contrast blotchy texture, float32 RGB."""
    w, h = size
    rng = np.random.default_rng([seed, 1])
    texture = rng.standard_normal((h // 8 + 1, w // 8 + 1), dtype=np.float32)
    texture = cv2.resize(cv2.GaussianBlur(texture, (0, 0), 1.5), (w, h), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(1.08, 0.88, h, dtype=np.float32)[:, None]
    base = np.array([186.0, 176.0, 160.0], np.float32)
    return np.clip(base * (ramp + 0.04 * texture)[:, :, None], 0, 255).astype(np.float32)


def poses(n: int = 300, size: tuple[int, int] = (640, 480), seed: int = 0) -> np.ndarray:
    """Per-frame (n, 2, 3) affine maps from astronaut.png coordinates to frame coordinates.

    Continuous pixel coordinates on both sides (pixel i spans [i, i+1)), as landmarks are, so
    ``poses()[k] @ [x, y, 1]`` is where a point of astronaut.png lands in frame k. The ground truth
    for comparing trackers.
    """
    w, h = size
    rng = np.random.default_rng([seed, 0])
    start = rng.uniform(-1.0, 1.0, 2) * [0.22 * w, 0.10 * h]  # where the person steps in, off-centre
    phase = rng.uniform(0.0, 2.0 * math.pi, 3)
    t = np.arange(n, dtype=np.float64)
    settle = np.exp(-t / 70.0)  # about 2.3 s to settle at 30 fps
    sway = np.sin(2.0 * math.pi * t / 97.0 + phase[0])
    cx = w / 2 + start[0] * settle * np.cos(t / 45.0) + 0.015 * w * sway
    cy = 0.42 * h + start[1] * settle + 0.01 * h * np.sin(2.0 * math.pi * t / 61.0 + phase[1])
    face_px = 0.27 * h * (1.0 - 0.22 * settle) * (1.0 + 0.02 * sway)  # comes closer, breathes
    roll = 6.0 * np.sin(2.0 * math.pi * t / 150.0 + phase[2]) * (0.5 + 0.5 * settle)  # degrees

    out = np.empty((n, 2, 3))
    for k in range(n):
        s = face_px[k] / FACE_WIDTH
        a = math.radians(roll[k])
        rot = s * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # + = CCW on screen
        out[k, :, :2] = rot
        out[k, :, 2] = [cx[k], cy[k]] - rot @ np.array(FACE_CENTRE)
    return out


def frames(n: int = 300, size: tuple[int, int] = (640, 480), seed: int = 0) -> Iterator[np.ndarray]:
    """Yield ``n`` RGB uint8 frames of shape (h, w, 3) for ``size=(w, h)``; see poses() for the motion."""
    w, h = size
    crop, alpha = _cutout()
    background = _background(size, seed)
    x0, y0 = CROP[0], CROP[1]
    for k, m in enumerate(poses(n, size, seed)):
        # crop pixel index -> astronaut continuous -> frame continuous -> frame pixel index
        to_src = np.array([[1.0, 0.0, x0 + 0.5], [0.0, 1.0, y0 + 0.5], [0.0, 0.0, 1.0]])
        m_idx = m @ to_src
        m_idx[:, 2] -= 0.5
        fg = cv2.warpAffine(crop, m_idx, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        a = cv2.warpAffine(alpha, m_idx, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        img = background + a[:, :, None] * (fg - background)
        noise = np.random.default_rng([seed, 2, k]).standard_normal((h, w, 3), dtype=np.float32)
        img += NOISE_SIGMA * noise
        yield np.clip(img + 0.5, 0, 255).astype(np.uint8)


if __name__ == "__main__":
    import sys

    # Write a contact sheet of every 30th frame to the path given, for a look by eye.
    sheet = [f for i, f in enumerate(frames()) if i % 30 == 0]
    grid = np.vstack([np.hstack(sheet[r : r + 5]) for r in range(0, len(sheet), 5)])
    cv2.imwrite(
        sys.argv[1] if len(sys.argv) > 1 else "moving_face.jpg",
        cv2.cvtColor(cv2.resize(grid, None, fx=0.4, fy=0.4), cv2.COLOR_RGB2BGR),
    )
