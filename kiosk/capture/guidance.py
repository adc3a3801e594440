"""Live guidance: one prompt at a time, in the fixed priority order of guidance.toml, with value
hysteresis (enter/exit bands) and time hysteresis (a check must fail for confirm_s before it is
shown), plus the steady timer that tells the session when every check has held long enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kiosk.capture.lighting import LightMeasure
from kiosk.capture.rules import Band, Rules
from kiosk.vision.mesh import CHEEKS, FACE_OVAL
from kiosk.vision.types import Face


@dataclass
class FrameMeasures:
    """What guidance reads from one analysed frame; None where not measurable (no face)."""

    faces: int
    width: int
    height: int
    face: Face | None = None
    light: LightMeasure | None = None
    values: dict[str, float] = field(default_factory=dict)


def measure_frame(
    faces: int,
    face: Face | None,
    size: tuple[int, int],
    light: LightMeasure | None,
    target_eye_y: float,
    covered: bool | None = None,
    glasses: bool | None = None,
    glare: float | None = None,
) -> FrameMeasures:
    """Measures of the tracked face; ``faces`` is the detector's count (several people in view),
    ``covered`` whether a hat covers the forehead, ``glasses`` whether glasses are seen and
    ``glare`` their lenses' glare (only given with glasses; None: not measured)."""
    w, h = size
    m = FrameMeasures(
        faces=faces if face is None else max(faces, 1), width=w, height=h, face=face, light=light
    )
    m.values["faces"] = float(m.faces)
    if face is None:
        return m
    lm = face.landmarks
    a, b = lm[CHEEKS[0], :2], lm[CHEEKS[1], :2]
    m.values.update(
        face_width=float(np.hypot(*(b - a))) / w,
        offset_x=float((a[0] + b[0]) / 2) / w - 0.5,
        offset_y=float(face.eye_centers[:, 1].mean()) / h - target_eye_y,
        roll=face.pose.roll,
        yaw=face.pose.yaw,
        pitch=face.pose.pitch,
        eyes=float(min(face.eye_openness)),
        mouth=float(face.mouth_openness),
    )
    if light is not None:
        m.values.update(balance=light.balance, exposure=light.mean)
    if covered is not None:
        m.values["covered"] = 1.0 if covered else 0.0
    if glasses is not None:  # the stuck hint of open_eyes names glasses only when seen (hints.toml)
        m.values["glasses"] = 1.0 if glasses else -1.0
    if glasses and glare is not None:
        m.values["glare"] = glare
    return m


def _fails(band: Band, v: float, failing: bool) -> bool:
    """Whether the band fails, given whether it failed before (hysteresis)."""
    if band.kind == "abs":
        v = abs(v)
    if band.kind == "low":
        return v < band.exit if failing else v < band.enter
    return v > band.exit if failing else v > band.enter


@dataclass
class Guidance:
    """The guidance result of one frame, as the session and the UI see it."""

    prompt: str | None  # the one prompt shown (None: nothing to say yet, e.g. during confirm_s)
    text: dict[str, str] | None
    failing: list[str]  # check ids failing now (value hysteresis), in priority order
    ready: bool  # no check failing
    steady_s: float  # how long `ready` has held
    values: dict[str, float]
    outline: list[list[float]] | None  # face outline, fractions of the frame
    target: dict[str, float]  # where the face should be: centre and size, fractions of the frame

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "text": self.text,
            "failing": self.failing,
            "ready": self.ready,
            "steady_s": round(self.steady_s, 2),
            "values": {k: round(v, 3) for k, v in self.values.items()},
            "outline": self.outline,
            "target": self.target,
        }


class Guide:
    """Feeds on FrameMeasures in time order; one instance per session (``reset`` between)."""

    def __init__(self, rules: Rules):
        self.rules = rules
        widths = [b for c in rules.checks if c.measure == "face_width" for b in c.bands]
        lo = next((b.exit for b in widths if b.kind == "low"), 0.25)
        hi = next((b.exit for b in widths if b.kind == "high"), 0.4)
        self.target = {"x": 0.5, "eye_y": rules.target_eye_y, "face_width": round((lo + hi) / 2, 3)}
        self.reset()

    def reset(self) -> None:
        self._failing: dict[str, str] = {}  # check id -> band kind failing
        self._since: dict[str, float] = {}  # check id -> time it started failing
        self._ready_since: float | None = None
        self._prev: tuple[float, float, float] | None = None  # t, x, y of the face centre
        self._motion = 0.0
        self._shown: str | None = None

    def _motion_value(self, m: FrameMeasures, t: float) -> float | None:
        if m.face is None:
            self._prev = None
            return None
        x, y = m.values["offset_x"], m.values["offset_y"] * m.height / m.width
        if self._prev is not None and t > self._prev[0]:
            speed = float(np.hypot(x - self._prev[1], y - self._prev[2])) / (t - self._prev[0])
            k = self.rules.motion_smoothing
            self._motion = (1 - k) * self._motion + k * speed
        self._prev = (t, x, y)
        return self._motion

    def update(self, m: FrameMeasures, t: float) -> Guidance:
        values = dict(m.values)
        motion = self._motion_value(m, t)
        if motion is not None:
            values["motion"] = motion
        failing: list[str] = []
        shown: str | None = None
        for check in self.rules.checks:
            v = values.get(check.measure)
            if v is None:  # not measurable: only "no face" speaks then
                self._failing.pop(check.id, None)
                self._since.pop(check.id, None)
                continue
            was = self._failing.get(check.id)
            now = None
            for band in check.bands:
                if _fails(band, v, was == band.kind):
                    now = band
                    break
            if now is None:
                self._failing.pop(check.id, None)
                self._since.pop(check.id, None)
                continue
            if was != now.kind:
                self._since[check.id] = t
            self._failing[check.id] = now.kind
            failing.append(check.id)
            if shown is None and t - self._since[check.id] >= self.rules.confirm(check):
                shown = now.prompt
        ready = not failing and m.face is not None
        if shown is None and failing and self._shown is not None:
            # a new failure still within confirm_s: keep the prompt on screen if it still applies
            still = self._shown == "perfect" or any(
                b.prompt == self._shown and self._failing.get(c.id) == b.kind
                for c in self.rules.checks
                for b in c.bands
            )
            shown = self._shown if still else None
        if ready:
            if self._ready_since is None:
                self._ready_since = t
            shown = "perfect"
        else:
            self._ready_since = None
        steady = t - self._ready_since if self._ready_since is not None else 0.0
        self._shown = shown
        outline = None
        if m.face is not None:
            pts = m.face.landmarks[list(FACE_OVAL), :2] / (m.width, m.height)
            outline = [[round(float(x), 4), round(float(y), 4)] for x, y in pts]
        return Guidance(shown, self.rules.text(shown), failing, ready, steady, values, outline, self.target)
