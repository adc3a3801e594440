"""The lighting loop: measure the left and right halves of the face every frame and steer the
LEDs until the face is evenly lit at the target exposure.

Integral control of two quantities — the left/right difference and the common level — so it
needs no model of the LEDs: each frame corrects what the previous correction left. The same
skin region as the photo checks (below the brows, without eyes and lips) is measured, split at
the nose bridge, so a turned head still compares cheek with cheek.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kiosk.photo.measures import face_region, luminance
from kiosk.vision.mesh import NOSE_BRIDGE
from kiosk.vision.types import Face


@dataclass(frozen=True)
class LightMeasure:
    left: float  # mean luminance of the image-left half of the face skin, 0-255
    right: float
    mean: float

    @property
    def balance(self) -> float:
        """(left - right) / (left + right): 0 even, + brighter on the image left."""
        return (self.left - self.right) / max(self.left + self.right, 1e-6)


def measure_light(rgb: np.ndarray, face: Face) -> LightMeasure | None:
    """Left/right face luminance on the face's bounding region only (cheap enough for every frame)."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = face.box
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(np.ceil(x1)) + 1, w), min(int(np.ceil(y1)) + 1, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    lm = face.landmarks[:, :2] - (x0, y0)
    mask = face_region(lm, (x1 - x0, y1 - y0))
    y = luminance(rgb[y0:y1, x0:x1])
    split = lm[NOSE_BRIDGE, 0]
    cols = np.arange(x1 - x0)[None, :]
    left, right = mask & (cols < split), mask & (cols >= split)
    if left.sum() < 20 or right.sum() < 20:
        return None
    return LightMeasure(float(y[left].mean()), float(y[right].mean()), float(y[mask].mean()))


class LightingLoop:
    """Levels for the 'left', 'right' and 'fill' LEDs from one LightMeasure per frame."""

    def __init__(self, params: dict[str, float]):
        self.p = params
        self.reset()

    def reset(self) -> dict[str, float]:
        """Back to the start levels (new face, new session)."""
        self.level = self.p["start"]  # common level
        self.diff = 0.0  # right minus left, halved
        self.last: LightMeasure | None = None
        return self.levels()

    def idle(self) -> dict[str, float]:
        self.reset()
        return dict.fromkeys(("left", "right", "fill"), self.p["idle"])

    def levels(self) -> dict[str, float]:
        clip = lambda v: float(min(1.0, max(0.0, v)))  # noqa: E731
        return {
            "left": clip(self.level - self.diff),
            "right": clip(self.level + self.diff),
            "fill": clip(self.level),
        }

    def update(self, m: LightMeasure | None) -> dict[str, float]:
        """One control step; no face: hold the levels."""
        self.last = m
        if m is None:
            return self.levels()
        self.diff += self.p["gain_balance"] * m.balance
        self.diff = float(np.clip(self.diff, -1.0, 1.0))
        err = (self.p["target"] - m.mean) / self.p["target"]
        self.level = float(np.clip(self.level + self.p["gain_exposure"] * err, 0.0, 1.0))
        return self.levels()

    @property
    def converged(self) -> bool:
        m = self.last
        if m is None:
            return False
        return (
            abs(m.balance) <= self.p["tolerance_balance"]
            and abs(self.p["target"] - m.mean) / self.p["target"] <= self.p["tolerance_exposure"]
        )
