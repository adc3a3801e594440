"""Simulated camera: a scene composed from one face photo, with a subject that moves, turns, smiles
and follows prompts, lit by ambient light plus the kiosk's LEDs.

It is a real backend, not a test double: the session, the guidance and the lighting loop run on
its frames exactly as on a camera's. The face photo is cut out once (person segmentation) and
placed on a plain booth backdrop; per frame a 2.5-D warp built from the face mesh's depth turns
the head (yaw, pitch), a local warp closes the mouth, the eyelids close for blinks
(kiosk.sim.face_edit), a similarity places it (distance, offset, roll), and a shading model driven
by the LED levels lights the left and right side of the face.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from kiosk.config import HardwareConfig
from kiosk.errors import InputError
from kiosk.hw.camera import Camera, CameraError, Frame, LevelsSource
from kiosk.samples import sample_path
from kiosk.sim.face_edit import close_eyes
from kiosk.vision.mesh import (
    CHEEKS,
    CHIN,
    LIP_LOWER_INNER,
    LIP_UPPER_INNER,
    MOUTH_CORNERS,
    NOSE_BRIDGE,
)

log = logging.getLogger("kiosk.hw.camera")

FACE_FRACTION = 0.30  # face width / frame width at distance 1.0
BACKDROP = (232, 232, 228)  # booth backdrop colour (albedo), RGB

# Shading: gain = ambient*(1 - SIDE*tilt*s) + k_left*L*(1 - SIDE*s) + k_right*R*(1 + SIDE*s) + k_fill*F,
# s in [-1, 1] the side of the face (-1 image left). Constants chosen so that the LEDs can even out
# the ambient light the scripted subject starts with.
SIDE = 0.8
K_LEFT = K_RIGHT = 0.9
K_FILL = 0.6
ALBEDO = 0.8  # the face photo is brightly lit: as a surface it reflects a bit less


@dataclass
class Scene:
    """What the camera sees; the subject's pose is relative to the pose in the face photo."""

    x: float = 0.0  # face centre offset from the frame centre, fraction of the frame width (+: image right)
    y: float = 0.0  # fraction of the frame height (+: down)
    distance: float = 1.0  # face size is proportional to 1/distance
    roll: float = 0.0  # degrees, + clockwise on screen
    yaw: float = 0.0  # degrees, + face turns toward image right
    pitch: float = 0.0  # degrees, + chin up
    mouth: float = 1.0  # 1: as in the photo, 0: closed
    eyes: float = 1.0  # 1: as in the photo, 0: shut (blinks drive this when the subject blinks)
    ambient: float = 0.35  # ambient light level
    tilt: float = 0.0  # ambient unevenness -1..1, +: brighter on the image-left side of the face
    present: bool = True  # someone stands in front of the camera


# How a person who understands a prompt moves: scene field, direction (0: towards own neutral), rate /s.
# "move_left" is the citizen's own left, which is the camera image's right (the camera is not a mirror).
REACTIONS: dict[str, tuple[str, int, float]] = {
    "move_left": ("x", +1, 0.12),
    "move_right": ("x", -1, 0.12),
    "move_up": ("y", -1, 0.12),
    "move_down": ("y", +1, 0.12),
    "come_closer": ("distance", -1, 0.5),
    "step_back": ("distance", +1, 0.5),
    "straighten_head": ("roll", 0, 12.0),
    "face_camera": ("yaw", 0, 15.0),
    "chin_up": ("pitch", +1, 8.0),
    "chin_down": ("pitch", -1, 8.0),
    "close_mouth": ("mouth", -1, 2.0),
    "open_eyes": ("eyes", +1, 4.0),
}
LIMITS = {
    "x": (-0.45, 0.45),
    "y": (-0.4, 0.4),
    "distance": (0.5, 3.0),
    "roll": (-40, 40),
    "yaw": (-40, 40),
    "pitch": (-35, 35),
    "mouth": (0.0, 1.0),
    "eyes": (0.0, 1.0),
}
SWAY = {"x": 0.003, "y": 0.002, "distance": 0.006, "roll": 0.25, "yaw": 0.25, "pitch": 0.2}  # per-step noise
SWAY_REVERT = 0.1  # per step
# A blink: lids close, touch and reopen (seconds); spontaneous blinks come every few seconds.
BLINK_CLOSE_S, BLINK_SHUT_S, BLINK_OPEN_S = 0.05, 0.03, 0.07
# A slip held up to the camera: its width as a share of the frame's, how far it is turned and tilted,
# and where along its length the middle of the view is (the QR code sits at about 60 % of the slip).
SLIP_WIDTH_SHARE, SLIP_TURN_DEG, SLIP_TILT, SLIP_CODE_AT = 0.5, 8.0, 0.06, 0.6
BAD_START = Scene(x=-0.14, y=0.06, distance=1.7, roll=10.0, yaw=24.0, pitch=-4.0, mouth=1.0, tilt=0.5)


@dataclass
class SimSubject:
    """A citizen who follows prompts after a reaction time, sways while waiting, and settles when
    asked to hold still. Deterministic for a given seed."""

    scene: Scene = field(default_factory=lambda: replace(BAD_START))
    seed: int = 0
    reaction_s: float = 0.25
    heard: list[tuple[float, str | None]] = field(default_factory=list)
    calm: float = 1.0  # sway amplitude factor
    t: float = 0.0
    # mean seconds between spontaneous blinks (drawn 0.5x-1.5x); 0: never blinks (the demo's default)
    blink_every_s: float = 0.0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        # blinks draw from their own stream: switching them on leaves the sway of a seed unchanged
        self._blink_rng = np.random.default_rng([self.seed, 1])
        self._start = replace(self.scene)
        self._sway: dict[str, float] = {}
        self._blink_at = self._next_blink(0.0)

    def _next_blink(self, now: float) -> float:
        if self.blink_every_s <= 0:
            return math.inf
        return now + self.blink_every_s * float(self._blink_rng.uniform(0.5, 1.5))

    def blink_closure(self, t: float) -> float:
        """How far a blink that started at _blink_at has shut the eyes at time t (0..1)."""
        d = t - self._blink_at
        if d < 0:
            return 0.0
        if d < BLINK_CLOSE_S:
            return d / BLINK_CLOSE_S
        d -= BLINK_CLOSE_S
        if d < BLINK_SHUT_S:
            return 1.0
        d -= BLINK_SHUT_S
        return max(0.0, 1.0 - d / BLINK_OPEN_S)

    @property
    def blink_s(self) -> float:
        return BLINK_CLOSE_S + BLINK_SHUT_S + BLINK_OPEN_S

    def eyes_now(self) -> float:
        """The eyes as the camera sees them: the held eyes, shut further by a blink in progress."""
        return self.scene.eyes * (1.0 - self.blink_closure(self.t))

    def hear(self, prompt: str | None) -> None:
        """The prompt on screen now (None when there is none)."""
        if not self.heard or self.heard[-1][1] != prompt:
            self.heard.append((self.t, prompt))
            del self.heard[:-8]

    def arrive(self, scene: Scene | None = None) -> None:
        """A new citizen steps in front of the camera."""
        self.scene = replace(scene or self._start, present=True)
        self.heard.clear()
        self.calm = 1.0
        self._sway.clear()
        self._blink_at = self._next_blink(self.t)

    def leave(self) -> None:
        self.scene.present = False
        self.heard.clear()

    def acting_on(self) -> str | None:
        prompt = None
        for t, p in self.heard:
            if self.t - t >= self.reaction_s:
                prompt = p
        return prompt

    def step(self, dt: float) -> None:
        self.t += dt
        if self.t - self._blink_at > self.blink_s:
            self._blink_at = self._next_blink(self.t)
        prompt = self.acting_on()
        if prompt == "hold_still":
            self.calm = max(0.15, self.calm - 2.0 * dt)
        else:
            self.calm = min(1.0, self.calm + 0.05 * dt)  # once asked, people stay fairly still
        s = self.scene
        if prompt in REACTIONS:
            name, direction, rate = REACTIONS[prompt]
            v = getattr(s, name)
            if direction == 0:
                v = v - math.copysign(min(abs(v - self._sway.get(name, 0.0)), rate * dt), v)
            else:
                v = v + direction * rate * dt
            lo, hi = LIMITS[name]
            setattr(s, name, float(np.clip(v, lo, hi)))
        for name, amp in SWAY.items():  # sway: mean-reverting around the pose the person holds
            old = self._sway.get(name, 0.0)
            new = old * (1.0 - SWAY_REVERT) + self.rng.normal(0.0, amp * self.calm)
            self._sway[name] = new
            setattr(s, name, float(np.clip(getattr(s, name) + new - old, *LIMITS[name])))


def _splat(points: np.ndarray, values: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth dense field through scattered values (normalised convolution)."""
    acc = np.zeros(shape, np.float32)
    wgt = np.zeros(shape, np.float32)
    xy = np.round(points).astype(int)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < shape[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < shape[0])
    np.add.at(acc, (xy[ok, 1], xy[ok, 0]), values[ok])
    np.add.at(wgt, (xy[ok, 1], xy[ok, 0]), 1.0)
    acc = cv2.GaussianBlur(acc, (0, 0), sigma)
    wgt = cv2.GaussianBlur(wgt, (0, 0), sigma)
    return acc / np.maximum(wgt, 1e-6)


class SimCamera(Camera):
    """Renders frames of a SimSubject; time advances 1/fps per frame (wall-clock paced if realtime)."""

    name = "sim"

    def __init__(
        self,
        face_rgb: np.ndarray,
        landmarks: np.ndarray,
        person: np.ndarray | None = None,
        size: tuple[int, int] = (640, 480),
        still_size: tuple[int, int] = (1920, 1440),
        fps: int = 30,
        levels: LevelsSource | None = None,
        subject: SimSubject | None = None,
        realtime: bool = False,
        source: str = "face image",
    ):
        self.size, self.still_size, self.fps = size, still_size, fps
        self.levels = levels or (lambda: {})
        self.subject = subject or SimSubject()
        self.realtime = realtime
        self.source = source
        self.index = 0
        self.failure: str | None = None  # set by tests: the next frame raises CameraError
        self.slip: np.ndarray | None = None  # a slip held up to the camera (grey), instead of the face
        self._wall0 = time.monotonic()
        self._prepare(face_rgb, landmarks.astype(np.float32), person)

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        cfg: HardwareConfig,
        levels: LevelsSource | None = None,
        analyzer: object | None = None,
        realtime: bool = True,
        subject: SimSubject | None = None,
    ) -> SimCamera:
        from kiosk.vision.imageio import load_image

        path = Path(cfg.sim_face) if cfg.sim_face else _sample()
        rgb = load_image(path)
        return cls.from_image(
            rgb,
            analyzer=analyzer,
            size=(cfg.frame_width, cfg.frame_height),
            still_size=(cfg.still_width, cfg.still_height),
            fps=cfg.fps,
            levels=levels,
            realtime=realtime,
            subject=subject,
            source=path.name,
        )

    @classmethod
    def from_image(cls, rgb: np.ndarray, analyzer: object | None = None, **kwargs) -> SimCamera:
        """Analyse the face photo once (landmarks, person mask) and build the scene from it."""
        from kiosk.vision import FaceAnalyzer
        from kiosk.vision.segmentation import PersonSegmenter

        analyzer = analyzer or FaceAnalyzer()
        faces = analyzer.analyze(rgb, iris=False).faces
        if not faces:
            raise InputError("simulated camera: no face in the face image")
        person = PersonSegmenter().mask(rgb)
        return cls(rgb, faces[0].landmarks, person, **kwargs)

    def _prepare(self, rgb: np.ndarray, lm: np.ndarray, person: np.ndarray | None) -> None:
        h, w = rgb.shape[:2]
        a, b = lm[CHEEKS[0], :2], lm[CHEEKS[1], :2]
        self.face_width = float(np.hypot(*(b - a)))
        pad = int(max(h, w)) // 2  # room for the view at the largest distance
        self.pad = pad
        if person is None:
            alpha = np.ones((h, w), np.float32)
        else:
            alpha = np.clip((person.astype(np.float32) - 0.2) / 0.6, 0, 1)
        # cut out on the backdrop at the photo's size (small temporaries), then pad: the body
        # continues below the photo; above and beside it there is only the backdrop
        backdrop = np.asarray(BACKDROP, np.float32)
        cut = (rgb.astype(np.float32) - backdrop) * alpha[..., None] + backdrop
        cut = np.clip(cut * ALBEDO + 0.5, 0, 255).astype(np.uint8)
        dim = tuple(int(round(v * ALBEDO)) for v in BACKDROP)
        img = cv2.copyMakeBorder(cut, pad, 0, pad, pad, cv2.BORDER_CONSTANT, value=dim)
        img = cv2.copyMakeBorder(img, 0, pad, 0, 0, cv2.BORDER_REPLICATE)
        lm = lm.copy()
        lm[:, :2] += pad
        self.lm = lm
        cx = float((lm[CHEEKS[0], 0] + lm[CHEEKS[1], 0]) / 2)
        cy = float(lm[[CHEEKS[0], CHEEKS[1], NOSE_BRIDGE], 1].mean())
        self.center = (cx, cy)
        # side of the face for shading, -1 (image left) .. +1, as a 4th channel so it warps along
        xs = np.arange(img.shape[1], dtype=np.float32)
        d = (xs - cx) / (0.6 * self.face_width)
        side = np.clip(d, -1, 1) * (0.4 + 0.6 * np.clip(3.0 - np.abs(d), 0, 1))  # the wall: less directional
        side_img = np.broadcast_to(((side + 1) * 127.5)[None, :], img.shape[:2])
        self.canvas = np.dstack([img, side_img.astype(np.uint8)])
        self.empty = self.canvas.copy()
        self.empty[..., :3] = dim
        # the region the 2.5-D warp may change: the head with a margin
        fw = self.face_width
        x0, x1 = int(cx - 1.2 * fw), int(cx + 1.2 * fw)
        y0, y1 = int(cy - 1.6 * fw), int(cy + 1.6 * fw)
        self.roi = (max(x0, 0), max(y0, 0), min(x1, img.shape[1]), min(y1, img.shape[0]))
        rx0, ry0, rx1, ry1 = self.roi
        self.base_roi = self.canvas[ry0:ry1, rx0:rx1].copy()
        self.open_roi = self.base_roi
        shape = (ry1 - ry0, rx1 - rx0)
        pts = lm[:, :2] - (rx0, ry0)
        self.roi_lm = pts
        self._eyes_key: float | None = 1.0
        # depth towards the camera, 0 at the face outline; dense, fading out beyond the face
        z = lm[:, 2]
        edge = float(np.percentile(z, 90))
        depth = _splat(pts, np.maximum(edge - z, 0).astype(np.float32), shape, 0.06 * fw)
        gy, gx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
        ex, ey = cx - rx0, cy - ry0 + 0.1 * fw
        r = np.sqrt(((gx - ex) / (0.62 * fw)) ** 2 + ((gy - ey) / (0.85 * fw)) ** 2)
        fade = np.clip((1.45 - r) / 0.45, 0, 1)
        self.depth = depth * (fade * fade * (3 - 2 * fade))
        self.grid = (gx, gy)
        # mouth: lower lip pulled up to the upper one, fading towards the chin and the corners
        yu, yl = float(pts[LIP_UPPER_INNER, 1]), float(pts[LIP_LOWER_INNER, 1])
        gap = max(yl - yu, 0.0)
        mx = float(pts[list(MOUTH_CORNERS), 0].mean())
        mw = float(abs(pts[MOUTH_CORNERS[1], 0] - pts[MOUTH_CORNERS[0], 0]))
        below = max(float(pts[CHIN, 1]) - yl, 4.0)
        ramp = np.clip((gy - yu + 0.1 * gap) / max(0.3 * gap, 1e-3), 0, 1)  # teeth and gap: all covered
        fall = np.where(gy > yl, np.exp(-(((gy - yl) / (0.6 * below)) ** 2)), 1.0)
        across = np.exp(-(((gx - mx) / (0.75 * mw + 1e-3)) ** 4))  # flat across the smile
        self.mouth_field = (1.3 * gap * ramp * fall * across).astype(np.float32)
        self._warp_key: tuple | None = None

    # --- rendering ---------------------------------------------------------------------------

    def _update_head(self, s: Scene) -> None:
        eyes = round(self.subject.eyes_now(), 2)
        key = (round(s.yaw, 2), round(s.pitch, 2), round(s.mouth, 3), eyes)
        if key == self._warp_key:
            return
        if eyes != self._eyes_key:  # the lids first, on the photo's own geometry; the head warp follows
            shut = 1.0 - eyes
            self.base_roi = close_eyes(self.open_roi, self.roi_lm, shut) if shut > 0 else self.open_roi
            self._eyes_key = eyes
        gx, gy = self.grid
        sy, sp = math.sin(math.radians(s.yaw)), math.sin(math.radians(s.pitch))
        mx = gx - self.depth * sy
        my = gy + self.depth * sp + self.mouth_field * (1.0 - s.mouth)
        warped = cv2.remap(self.base_roi, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        rx0, ry0, rx1, ry1 = self.roi
        self.canvas[ry0:ry1, rx0:rx1] = warped
        self._warp_key = key

    def _matrix(self, s: Scene, size: tuple[int, int]) -> np.ndarray:
        w, h = size
        scale = FACE_FRACTION * w / max(s.distance, 1e-3) / self.face_width
        m = cv2.getRotationMatrix2D(self.center, -s.roll, scale)
        m[0, 2] += w / 2 + s.x * w - self.center[0]
        m[1, 2] += h / 2 + s.y * h - self.center[1]
        return m

    def _gain(self, side: np.ndarray, s: Scene) -> np.ndarray:
        lv = self.levels()
        left, right, fill = (float(lv.get(k, 0.0)) for k in ("left", "right", "fill"))
        g0 = s.ambient + K_LEFT * left + K_RIGHT * right + K_FILL * fill
        g1 = SIDE * (-s.ambient * s.tilt - K_LEFT * left + K_RIGHT * right)
        return g0 + g1 * (side.astype(np.float32) * (1.0 / 127.5) - 1.0)

    def show_slip(self, slip: bytes | np.ndarray | None) -> None:
        """A returning citizen holds a slip (PNG bytes or a grey/RGB array) up to the camera; None:
        the slip is put away and the face is seen again."""
        if slip is None or isinstance(slip, np.ndarray):
            img = slip
        else:
            img = cv2.imdecode(np.frombuffer(slip, np.uint8), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise InputError("simulated camera: the slip is not a readable image")
        if img is not None and img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        self.slip = img

    def _render_slip(self, size: tuple[int, int]) -> np.ndarray:
        """The slip held flat about 20 cm away, a little turned and tilted, its middle (where the
        QR code is) in view, lit by the hall's light and the LEDs."""
        assert self.slip is not None
        w, h = size
        slip = self.slip
        scale = SLIP_WIDTH_SHARE * w / slip.shape[1]
        sw, sh = slip.shape[1] * scale, slip.shape[0] * scale
        src = np.float32([[0, 0], [slip.shape[1], 0], [slip.shape[1], slip.shape[0]], [0, slip.shape[0]]])
        dx = SLIP_TILT * sw / 2
        x0, x1, y0, y1 = -sw / 2, sw / 2, -sh / 2, sh / 2
        dst = np.float32([[x0 + dx, y0], [x1 - dx, y0], [x1, y1], [x0, y1]])
        a = math.radians(SLIP_TURN_DEG)
        rot = np.float32([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        dst = dst @ rot.T + np.float32([w / 2, h / 2 - (SLIP_CODE_AT - 0.5) * sh])
        m = cv2.getPerspectiveTransform(src, dst)
        dim = int(round(BACKDROP[0] * ALBEDO))
        img = cv2.warpPerspective(slip, m, size, flags=cv2.INTER_AREA, borderValue=dim).astype(np.float32)
        lv = self.levels()
        gain = self.subject.scene.ambient + sum(float(lv.get(k, 0.0)) for k in ("left", "right", "fill")) / 3
        grey = np.clip(img * min(gain * 1.6, 1.0) + 0.5, 0, 255).astype(np.uint8)
        return np.dstack([grey] * 3)

    def render(self, size: tuple[int, int]) -> np.ndarray:
        if self.slip is not None:
            return self._render_slip(size)
        s = self.subject.scene
        if s.present:
            self._update_head(s)
            src = self.canvas
        else:
            src = self.empty
        m = self._matrix(s, size)
        out = cv2.warpAffine(src, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        rgb = np.empty((size[1], size[0], 3), np.uint8)
        for y in range(0, size[1], 256):  # in strips: a full-resolution still needs no large float copies
            part = out[y : y + 256]
            gain = self._gain(part[..., 3], s)
            lit = part[..., :3].astype(np.float32) * gain[..., None]
            rgb[y : y + 256] = np.clip(lit + 0.5, 0, 255).astype(np.uint8)
        return rgb

    # --- Camera ------------------------------------------------------------------------------

    def frame(self) -> Frame:
        if self.failure:
            raise CameraError(self.failure)
        dt = 1.0 / self.fps
        if self.index > 0:
            self.subject.step(dt)
        t = self.index * dt
        if self.realtime:
            delay = self._wall0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:  # fell behind (slow machine): do not try to catch up in a burst
                self._wall0 = time.monotonic() - t
        rgb = self.render(self.size)
        frame = Frame(rgb, t, self.index)
        self.index += 1
        return frame

    def still(self) -> np.ndarray:
        if self.failure:
            raise CameraError(self.failure)
        return self.render(self.still_size)

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "source": self.source,
            "size": list(self.size),
            "still_size": list(self.still_size),
            "fps": self.fps,
        }


def _sample() -> Path:
    return sample_path()
