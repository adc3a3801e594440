"""Per-face measures from the 468-point mesh and the iris model's eye contour: eye aperture and state,
mouth openness, eye centres, chin, crown. Pure functions.

Index sets live in kiosk.vision.mesh. "Image-left" is the subject's right.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kiosk.vision.mesh import (
    CHIN,
    CONTOUR_INNER,
    CONTOUR_LIDS,
    CONTOUR_OUTER,
    EYE_CORNERS,
    EYE_LIDS,
    EYE_RINGS,
    FOREHEAD,
    LIPS_INNER,
    MOUTH_CORNERS,
)

EYES_DATA = Path(__file__).parent / "data" / "eyes.toml"

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
    """Mean eyelid gap over eye width from the 468-point mesh, per eye.

    A fallback only (no iris model run): the mesh keeps the lids apart on real closed eyes
    (0.19-0.27), so it cannot tell a closed eye; ``eyelid_aperture`` can.
    """
    gaps = _dist(lm[_LID_UP], lm[_LID_DOWN]).mean(axis=1)
    widths = np.maximum(_dist(lm[_CORNER_A], lm[_CORNER_B]), 1e-6)
    ratio = gaps / widths
    return float(ratio[0]), float(ratio[1])


_C_UP = np.array([u for u, _ in CONTOUR_LIDS])
_C_DOWN = np.array([d for _, d in CONTOUR_LIDS])


def eyelid_aperture(contours: np.ndarray) -> tuple[float, float]:
    """Mean upper-to-lower lid gap over eye width on the iris model's eye contours, per eye.

    ``contours`` is (2, 71, 2). Real closed eyes read 0.02-0.16, open ones 0.17-0.44. An eye
    narrower than ``wink_below`` and than ``wink_ratio`` of its partner is a wink's closed eye: a
    person's two eyes have one shape, so the partner is the scale (eyes.toml); it is reported at
    ``closed_below / wink_below`` of its gap, below the limit, so every reader (the check, live
    guidance, the eye state) sees it closed with one measure and one limit.
    """
    return _wink_scaled(*lid_gaps(contours))


def lid_gaps(contours: np.ndarray) -> tuple[float, float]:
    """Each eye's own lid gap over eye width, before the wink rule (``eyelid_aperture``)."""
    gaps = _dist(contours[:, _C_UP], contours[:, _C_DOWN]).mean(axis=1)
    widths = np.maximum(_dist(contours[:, CONTOUR_OUTER], contours[:, CONTOUR_INNER]), 1e-6)
    ratio = gaps / widths
    return float(ratio[0]), float(ratio[1])


def _wink_scaled(a: float, b: float) -> tuple[float, float]:
    lim = eye_limits()
    scale = lim.closed_below / lim.wink_below
    out = [a, b]
    for i, (v, other) in enumerate(((a, b), (b, a))):
        if v < lim.wink_below and v < lim.wink_ratio * other:
            out[i] = v * scale
    return out[0], out[1]


class EyesDataError(ValueError):
    """kiosk/vision/data/eyes.toml is malformed (a clear message, no traceback for the user)."""


@dataclass(frozen=True)
class EyeLimits:
    closed_below: float  # an eye whose aperture reads below this is closed
    wink_below: float  # ... and one below this that is also under wink_ratio x its partner's
    wink_ratio: float


def parse_eye_limits(data: dict) -> EyeLimits:
    """eyes.toml, checked: schema 1; three numbers in (0, 1) with closed_below <= wink_below."""
    if data.get("schema_version") != 1:
        raise EyesDataError("eyes.toml: schema_version must be 1")
    values = {}
    for name in ("closed_below", "wink_below", "wink_ratio"):
        v = data.get(name)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < 1:
            raise EyesDataError(f"eyes.toml: {name}: expected a number between 0 and 1")
        values[name] = float(v)
    unknown = set(data) - {"schema_version", *values}
    if unknown:
        raise EyesDataError(f"eyes.toml: {sorted(unknown)[0]}: unknown key")
    if values["closed_below"] > values["wink_below"]:
        raise EyesDataError("eyes.toml: wink_below must be at least closed_below")
    return EyeLimits(**values)


@lru_cache(maxsize=1)
def eye_limits() -> EyeLimits:
    """The eye-state limits (data: kiosk/vision/data/eyes.toml)."""
    return parse_eye_limits(tomllib.loads(EYES_DATA.read_text("utf-8")))


def eye_closed_below() -> float:
    """The aperture under which an eye is closed (data: kiosk/vision/data/eyes.toml)."""
    return eye_limits().closed_below


def eye_state(aperture: float, closed_below: float | None = None) -> str:
    """"open" or "closed" for one eye's lid aperture; a squint that still shows the pupil is open."""
    limit = eye_closed_below() if closed_below is None else closed_below
    return "closed" if aperture < limit else "open"


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
