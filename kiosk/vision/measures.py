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


def _dist(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.hypot(*(p[:2] - q[:2])))


def eye_openness(lm: np.ndarray) -> tuple[float, float]:
    """Mean eyelid gap over eye width, per eye (about 0.25-0.35 open, < 0.1 closed)."""
    out = []
    for lids, (a, b) in zip(EYE_LIDS, EYE_CORNERS, strict=True):
        width = _dist(lm[a], lm[b]) or 1.0
        out.append(float(np.mean([_dist(lm[u], lm[d]) for u, d in lids]) / width))
    return out[0], out[1]


def mouth_openness(lm: np.ndarray) -> float:
    """Inner-lip gap over mouth width (about 0 closed, > 0.1 clearly open)."""
    width = _dist(lm[MOUTH_CORNERS[0]], lm[MOUTH_CORNERS[1]]) or 1.0
    return _dist(lm[LIPS_INNER[0]], lm[LIPS_INNER[1]]) / width


def eye_centers(lm: np.ndarray, iris: np.ndarray | None = None) -> np.ndarray:
    """(2,2) eye centres, image-left first: the iris centres when known, else the eye-ring means."""
    if iris is not None:
        return np.array([iris[0, 0], iris[1, 0]], dtype=np.float64)
    return np.array([lm[list(r), :2].mean(axis=0) for r in EYE_RINGS])


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
