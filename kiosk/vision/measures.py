"""Measures from the 468-point mesh: openness ratios, eye centres, chin, crown. Pure functions.

Index sets are MediaPipe face-mesh indices. "Image-left" is the subject's right.
"""

from __future__ import annotations

import numpy as np

# eyelid pairs (upper, lower) and eye corners (outer, inner), image-left eye then image-right eye
EYE_LIDS = (((160, 144), (159, 145), (158, 153)), ((385, 380), (386, 374), (387, 373)))
EYE_CORNERS = ((33, 133), (263, 362))
EYE_RINGS = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
)
LIPS_INNER = (13, 14)  # upper and lower inner lip, centre
MOUTH_CORNERS = (61, 291)
CHIN = 152
FOREHEAD = 10  # top of the mesh, near the hairline
# Chin-to-skull-top over chin-to-mesh-top; adult anthropometry (menton-vertex ~ 1.3 x menton-
# forehead-top) — the photo module refines the crown with the person mask where it can.
CROWN_RATIO = 1.32


# index arrays, built once: these run on every video frame
_LID_UP = np.array([[u for u, _ in eye] for eye in EYE_LIDS])  # (2, 3)
_LID_DOWN = np.array([[d for _, d in eye] for eye in EYE_LIDS])
_CORNER_A = np.array([a for a, _ in EYE_CORNERS])
_CORNER_B = np.array([b for _, b in EYE_CORNERS])
_RINGS = np.array(EYE_RINGS)  # (2, 16)


def _dist(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    d = p[..., :2] - q[..., :2]
    return np.sqrt((d * d).sum(axis=-1))


def eye_openness(lm: np.ndarray) -> tuple[float, float]:
    """Mean eyelid gap over eye width, per eye (about 0.25-0.35 open, < 0.1 closed)."""
    gaps = _dist(lm[_LID_UP], lm[_LID_DOWN]).mean(axis=1)
    widths = np.maximum(_dist(lm[_CORNER_A], lm[_CORNER_B]), 1e-6)
    ratio = gaps / widths
    return float(ratio[0]), float(ratio[1])


def mouth_openness(lm: np.ndarray) -> float:
    """Inner-lip gap over mouth width (about 0 closed, > 0.1 clearly open)."""
    width = max(float(_dist(lm[MOUTH_CORNERS[0]], lm[MOUTH_CORNERS[1]])), 1e-6)
    return float(_dist(lm[LIPS_INNER[0]], lm[LIPS_INNER[1]])) / width


def eye_centers(lm: np.ndarray, iris: np.ndarray | None = None) -> np.ndarray:
    """(2,2) eye centres, image-left first: the iris centres when known, else the eye-ring means."""
    if iris is not None:
        return np.array([iris[0, 0], iris[1, 0]], dtype=np.float64)
    return lm[_RINGS, :2].mean(axis=1)


def chin(lm: np.ndarray) -> tuple[float, float]:
    return float(lm[CHIN, 0]), float(lm[CHIN, 1])


def crown(lm: np.ndarray) -> tuple[float, float]:
    """Estimated top of the skull: beyond the mesh top, along the chin→forehead axis."""
    c, f = lm[CHIN, :2], lm[FOREHEAD, :2]
    top = c + (f - c) * CROWN_RATIO
    return float(top[0]), float(top[1])


def landmark_box(lm: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
