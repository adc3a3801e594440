"""The session state machine: one citizen from the first touch to the receipt, and back to idle.

All transitions are in TRANSITIONS (plus two rules for every state: a timeout returns to idle,
an unexpected error goes to the failsafe state). The main loop calls ``step`` repeatedly; a state
never sleeps and never blocks on a person. Buttons and the UI only post events to the single
queue that ``step`` drains, so every decision is taken on the session's own thread. Leaving a
session (to idle) wipes the citizen's frames and photo from memory.
"""

from __future__ import annotations

import logging
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kiosk.capture.hub import Hub
from kiosk.capture.live import LiveLoop
from kiosk.capture.photo_adapter import PhotoResult
from kiosk.config import SessionConfig

log = logging.getLogger("kiosk.session")


class State(StrEnum):
    IDLE = "idle"
    CHOOSE = "choose"  # document and city
    CONSENT = "consent"  # privacy notice
    GUIDANCE = "guidance"
    COUNTDOWN = "countdown"
    CAPTURE = "capture"
    REVIEW = "review"
    HANDOVER = "handover"
    DONE = "done"
    FAILSAFE = "failsafe"


S = State
# Every transition of the session: (state, trigger) -> next state. Besides these, "timeout" leads
# from any state but idle to idle, and "error" from any state to failsafe.
TRANSITIONS: dict[tuple[State, str], State] = {
    (S.IDLE, "start"): S.CHOOSE,
    (S.CHOOSE, "choose"): S.CONSENT,
    (S.CHOOSE, "cancel"): S.IDLE,
    (S.CONSENT, "consent"): S.GUIDANCE,
    (S.CONSENT, "back"): S.CHOOSE,
    (S.CONSENT, "decline"): S.IDLE,
    (S.CONSENT, "cancel"): S.IDLE,
    (S.GUIDANCE, "steady"): S.COUNTDOWN,
    (S.GUIDANCE, "cancel"): S.IDLE,
    (S.COUNTDOWN, "lost"): S.GUIDANCE,
    (S.COUNTDOWN, "elapsed"): S.CAPTURE,
    (S.COUNTDOWN, "cancel"): S.IDLE,
    (S.CAPTURE, "photo_ok"): S.REVIEW,
    (S.CAPTURE, "photo_bad"): S.GUIDANCE,
    (S.REVIEW, "accept"): S.HANDOVER,
    (S.REVIEW, "retake"): S.GUIDANCE,
    (S.REVIEW, "cancel"): S.IDLE,
    (S.HANDOVER, "handed_over"): S.DONE,
    (S.DONE, "elapsed"): S.IDLE,
    (S.DONE, "accept"): S.IDLE,
    (S.FAILSAFE, "elapsed"): S.IDLE,
}
# What a physical button means in each state (the touchscreen posts triggers directly).
BUTTONS: dict[State, dict[str, str]] = {
    S.IDLE: {"accept": "start"},
    S.CHOOSE: {"accept": "choose", "cancel": "cancel"},
    S.CONSENT: {"accept": "consent", "cancel": "decline"},
    S.GUIDANCE: {"cancel": "cancel"},
    S.COUNTDOWN: {"cancel": "cancel"},
    S.REVIEW: {"accept": "accept", "retake": "retake", "cancel": "cancel"},
    S.DONE: {"accept": "accept"},
}
LIVE = (S.GUIDANCE, S.COUNTDOWN, S.REVIEW)  # states that read camera frames
LIT = (S.GUIDANCE, S.COUNTDOWN, S.CAPTURE, S.REVIEW)  # the face lights hold their levels through the still
LOST_GRACE_S = 0.4  # a countdown survives a failing check this long (one bad frame is not a move)

SORRY = {"zh": "抱歉，设备出现问题，请稍后再试", "en": "Sorry, something went wrong. Please try again."}
CAMERA_SORRY = {
    "zh": "抱歉，摄像头暂时不可用，请稍后再试",
    "en": "Sorry, the camera is unavailable. Please try again later.",
}


@dataclass(frozen=True)
class Event:
    """A request from a button, the touchscreen or the service API; ``name`` is a trigger or a button."""

    name: str
    source: str = "ui"  # ui | button | api
    data: dict[str, Any] = field(default_factory=dict)


class Session:
    """Owns the flow; gets the camera, the live loop, the photo maker and the hand-over injected."""

    def __init__(
        self,
        cfg: SessionConfig,
        camera: Any,
        live: LiveLoop,
        photo_maker: Any,
        hand_over: Callable[[bytes, str, str], dict[str, Any]],
        documents: list[dict[str, Any]],
        thresholds: Callable[[str], dict[str, Any]],
        hub: Hub | None = None,
        clock: Callable[[], float] = time.monotonic,
        reopen_camera: Callable[[], Any] | None = None,
        preflight: Callable[[], dict[str, str] | None] | None = None,
    ):
        self.cfg, self.camera, self.live, self.photo_maker = cfg, camera, live, photo_maker
        self._hand_over, self.documents, self._thresholds = hand_over, documents, thresholds
        self.hub = hub or Hub()
        self.clock = clock
        self.reopen_camera = reopen_camera
        # asked before a citizen starts: None, or the {zh, en} reason no receipt can be issued now
        self.preflight = preflight
        self.events: queue.Queue[Event] = queue.Queue()
        self.listeners: list[Callable[[State, State], None]] = []  # (old, new) after each transition
        self.state = S.IDLE
        self.entered = clock()
        self.lang = "zh"
        self.sessions = 0
        self.history: list[tuple[float, str, str]] = []  # (t, state, trigger) for the demo and tests
        self.timings: dict[str, float] = {}
        self._wipe_citizen()
        self._publish()

    # --- the citizen's data ---------------------------------------------------------------------

    def _wipe_citizen(self) -> None:
        """Forget everything about the citizen: choice, frames, still, photo, messages."""
        photo = getattr(self, "photo", None)
        if isinstance(photo, PhotoResult):
            photo.wipe()
        self.photo: PhotoResult | None = None
        self.still = None
        self.frame = None
        self.profile: str | None = None
        self.city: str = ""
        self.retakes = 0
        self.message: dict[str, str] | None = None
        self.result: dict[str, Any] | None = None
        self._live_since: float | None = None
        self._lost_since: float | None = None
        self.hub.set_photo(None)
        self.hub.publish_frame(None)

    # --- input ----------------------------------------------------------------------------------

    def post(self, name: str, source: str = "ui", **data: Any) -> None:
        """Thread-safe: any thread may post; only ``step`` acts."""
        self.events.put(Event(name, source, data))

    def _drain(self) -> None:
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return
            self._handle(ev)

    def _handle(self, ev: Event) -> None:
        if ev.name == "readiness":  # the service's periodic check: shown on the idle screen
            if self.state is S.IDLE and ev.data.get("message") != self.message:
                self.message = ev.data.get("message")
                self._publish()
            return
        if ev.name == "lang":
            if ev.data.get("lang") in ("zh", "en"):
                self.lang = ev.data["lang"]
                self._publish()
            return
        trigger = BUTTONS.get(self.state, {}).get(ev.name) if ev.source == "button" else ev.name
        if trigger is None:
            return
        if trigger == "start" and self.state is S.IDLE and self.preflight is not None:
            refusal = self.preflight()
            self.message = refusal
            if refusal is not None:
                log.info("start refused before the session: %s", refusal.get("en"))
                self._publish()
                return
        if trigger == "choose":
            profile = ev.data.get("profile") or self.cfg.default_profile
            doc = next((d for d in self.documents if d["id"] == profile), None)
            if doc is None:
                log.info("ignored choice of unknown document %r", profile)
                return
            city = str(ev.data.get("city") or "")
            if doc["cities"] and city not in doc["cities"]:
                log.info("ignored choice of city %r for %s", city, profile)
                return
            self.profile, self.city = profile, city
        if trigger == "retake" and self.retakes >= self.cfg.max_retakes:
            log.info("retake refused: limit of %d reached", self.cfg.max_retakes)
            return
        self.fire(trigger)

    # --- transitions --------------------------------------------------------------------------------

    def fire(self, trigger: str) -> bool:
        """Apply a trigger; False (and nothing happens) when this state has no such transition."""
        if trigger == "error":
            new = S.FAILSAFE
        elif trigger == "timeout" and self.state is not S.IDLE:
            new = S.IDLE
        else:
            new = TRANSITIONS.get((self.state, trigger))
            if new is None:
                return False
        old = self.state
        now = self.clock()
        self.history.append((now, new.value, trigger))
        del self.history[:-200]
        self._exit(old, new, trigger)
        self.state, self.entered = new, now
        self._enter(new, old, trigger)
        log.info("session: %s --%s--> %s", old.value, trigger, new.value)
        self._publish()
        for fn in self.listeners:
            fn(old, new)
        return True

    def _exit(self, old: State, new: State, trigger: str) -> None:
        if old in LIT and new not in LIT:
            self.live.stop()

    def _enter(self, new: State, old: State, trigger: str) -> None:
        if new is S.IDLE:
            self._wipe_citizen()
            self.lang = "zh"  # the next citizen starts in the default language (and may switch in idle)
        elif new is S.CHOOSE and old is S.IDLE:
            self.sessions += 1
        elif new is S.GUIDANCE:
            if old is S.REVIEW:
                self.retakes += 1
            if old is S.REVIEW or old is S.CAPTURE:
                if self.photo is not None:
                    self.photo.wipe()
                self.photo = None
                self.hub.set_photo(None)
            if old is S.CONSENT or old is S.REVIEW:  # a new live phase; failed photos do not extend it
                self._live_since = self.clock()
            if old is not S.COUNTDOWN:
                self.live.start(self._thresholds(self.profile or self.cfg.default_profile))
            if old is S.CONSENT or old is S.REVIEW:
                self.message = None
        elif new is S.COUNTDOWN:
            self._lost_since = None
        elif new is S.CAPTURE:
            self.timings["capture_start"] = self.clock()

    # --- the loop -------------------------------------------------------------------------------------

    def step(self) -> None:
        """One turn of the main loop; never raises (errors go to the failsafe state)."""
        try:
            self._drain()
            if self.state in LIVE:
                self._live_frame()
            elif self.state is S.CAPTURE:
                self._capture()
            elif self.state is S.HANDOVER:
                self._handover()
            self._timers()
        except Exception as exc:  # noqa: BLE001 - the failsafe is the point
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        from kiosk.hw.camera import CameraError

        camera = isinstance(exc, CameraError)
        if camera:
            log.error("session: camera failure: %s", exc)
        else:
            log.error("session: unexpected error: %s\n%s", exc, traceback.format_exc())
        self.message = dict(CAMERA_SORRY if camera else SORRY)
        self.message["detail"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.camera_failed = camera
        if self.state is S.FAILSAFE:
            self.entered = self.clock()
            self._publish()
            return
        try:
            self.fire("error")
        except Exception:  # the failsafe itself must not fail
            self.state, self.entered = S.FAILSAFE, self.clock()

    camera_failed = False

    def _live_frame(self) -> None:
        if self.camera_failed and self.reopen_camera is not None:
            self.camera = self.reopen_camera()
            self.camera_failed = False
        frame = self.camera.frame()
        self.frame = frame
        if self.state is S.REVIEW:  # live picture next to the final one; no guidance
            self.hub.publish_frame(frame.rgb)
            return
        g = self.live.process(frame.rgb, self.clock())
        self.hub.publish_frame(frame.rgb)
        if self.state is S.GUIDANCE:
            if g.ready and g.steady_s >= self.cfg.steady_s:
                self.fire("steady")
                return
        elif self.state is S.COUNTDOWN:
            if g.ready:
                self._lost_since = None
            else:
                self._lost_since = self._lost_since if self._lost_since is not None else self.clock()
                if self.clock() - self._lost_since >= LOST_GRACE_S:
                    self.fire("lost")
                    return
        self._publish()

    def _capture(self) -> None:
        still = self.camera.still()
        self.still = still
        result = self.photo_maker.make(still, self.profile or self.cfg.default_profile)
        self.still = None  # the still is not kept once the photo is made
        if result.compliant and result.jpeg:
            self.photo = result
            self.hub.set_photo(result.jpeg)
            self.message = None
            self.fire("photo_ok")
            self.timings["photo_published"] = self.clock()
        else:
            result.wipe()
            self.message = result.reason or {
                "zh": "照片不合格，请重拍",
                "en": "The photo does not pass, let's retake it",
            }
            self.fire("photo_bad")

    def _handover(self) -> None:
        assert self.photo is not None and self.photo.jpeg is not None
        self.result = self._hand_over(self.photo.jpeg, self.profile or "", self.city)
        self.fire("handed_over")

    def _timers(self) -> None:
        now = self.clock()
        age = now - self.entered
        st = self.state
        if st is S.COUNTDOWN and age >= self.cfg.countdown_s:
            self.fire("elapsed")
        elif st is S.DONE and age >= self.cfg.done_s:
            self.fire("elapsed")
        elif st is S.FAILSAFE and age >= self.cfg.failsafe_s:
            self.fire("elapsed")
        elif st in (S.CHOOSE, S.CONSENT, S.REVIEW) and age >= self.cfg.idle_timeout_s:
            self.fire("timeout")
        elif (
            st in (S.GUIDANCE, S.COUNTDOWN)
            and self._live_since is not None
            and now - self._live_since >= self.cfg.guidance_timeout_s
        ):
            self.fire("timeout")

    # --- what the screen shows --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        g = self.live.last if self.state in (S.GUIDANCE, S.COUNTDOWN) else None
        snap: dict[str, Any] = {
            "state": self.state.value,
            "lang": self.lang,
            "session": self.sessions,
            "documents": self.documents,
            "profile": self.profile,
            "city": self.city,
            "retakes_left": max(0, self.cfg.max_retakes - self.retakes),
            "message": self.message,
            "guidance": g.to_json() if g is not None else None,
            "countdown": max(0.0, self.cfg.countdown_s - (now - self.entered))
            if self.state is S.COUNTDOWN
            else None,
            "photo": None,
            "result": self.result if self.state is S.DONE else None,
        }
        if self.state is S.REVIEW and self.photo is not None:
            snap["photo"] = {
                "url": f"/photo.jpg?s={self.sessions}&r={self.retakes}",
                "compliant": self.photo.compliant,
                "checks": self.photo.checks,
            }
        return snap

    def _publish(self) -> None:
        self.hub.publish(self.snapshot())

    def status(self) -> dict[str, Any]:
        """For the service API: no personal data."""
        return {
            "state": self.state.value,
            "since_s": round(self.clock() - self.entered, 1),
            "sessions": self.sessions,
            "profile": self.profile,
            "retakes": self.retakes,
        }
