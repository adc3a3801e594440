"""The session state machine: one citizen from the first touch to the receipt, and back to idle.

Each state has ONE spec in SPECS at the end of this module: its row of the transition table (trigger
-> next state), the buttons and UI events it takes, what it does on entry and on each frame, its
timers, and whether the camera is live and the face lights lit. Two rules hold for every state
(ANY_STATE): a timeout returns to idle, an unexpected error goes to the failsafe state. The main
loop calls ``step`` repeatedly; a state never sleeps and never blocks on a person. Buttons and the
UI only post events to the single queue that ``step`` drains, so every decision is taken on the
session's own thread. Leaving a session (to idle) wipes the citizen's frames and photo from memory.
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
from kiosk.capture.photo_adapter import CaptureResult
from kiosk.config import SessionConfig
from kiosk.receipt.cities import resolve as resolve_city
from kiosk.text import pair

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
LOST_GRACE_S = 0.4  # a countdown survives a failing check this long (one bad frame is not a move)

SORRY = pair("session.sorry")  # the failsafe screen, zh/en from the catalogue (kiosk/text)
CAMERA_SORRY = pair("session.camera_sorry")


@dataclass(frozen=True)
class Timer:
    """A state's time limit: after ``limit`` (a SessionConfig field, seconds) it fires ``trigger``."""

    limit: str
    trigger: str
    since: str = "entered"  # or "live": since the live phase began (failed photos do not extend it)


@dataclass(frozen=True)
class StateSpec:
    """Everything one state does; the session's code only reads these."""

    go: dict[str, State]  # trigger -> next state: this state's row of the transition table
    buttons: dict[str, str] = field(default_factory=dict)  # physical button -> trigger
    # UI/API event -> trigger, besides the triggers themselves
    events: dict[str, str] = field(default_factory=dict)
    # trigger -> may it fire now? (a guard may also take the event's data, like the choice)
    guards: dict[str, Callable[[Session, Event], bool]] = field(default_factory=dict)
    enter: Callable[[Session, State, str], None] | None = None  # (session, old state, trigger)
    frame: Callable[[Session], None] | None = None  # each turn of the main loop
    timers: tuple[Timer, ...] = ()  # checked in order; the first that has run out fires
    live: bool = False  # reads camera frames
    lit: bool = False  # the face lights hold their levels (leaving the lit states stops the live loop)


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
        if isinstance(photo, CaptureResult):
            photo.wipe()
        self.photo: CaptureResult | None = None
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
        spec = SPECS[self.state]
        if ev.source == "button":
            trigger = spec.buttons.get(ev.name)
        else:
            trigger = spec.events.get(ev.name, ev.name)
        if trigger is None or trigger not in spec.go:
            return
        guard = spec.guards.get(trigger)
        if guard is not None and not guard(self, ev):
            return
        self.fire(trigger)

    # --- transitions --------------------------------------------------------------------------------

    def fire(self, trigger: str) -> bool:
        """Apply a trigger; False (and nothing happens) when this state has no such transition."""
        new = SPECS[self.state].go.get(trigger)
        if new is None and trigger in ANY_STATE and not (trigger == "timeout" and self.state is S.IDLE):
            new = ANY_STATE[trigger]
        if new is None:
            return False
        old = self.state
        now = self.clock()
        self.history.append((now, new.value, trigger))
        del self.history[:-200]
        if SPECS[old].lit and not SPECS[new].lit:
            self.live.stop()
        self.state, self.entered = new, now
        enter = SPECS[new].enter
        if enter is not None:
            enter(self, old, trigger)
        log.info("session: %s --%s--> %s", old.value, trigger, new.value)
        self._publish()
        for fn in self.listeners:
            fn(old, new)
        return True

    # --- what the states do (wired to the states in SPECS below) ------------------------------------

    def _may_start(self, ev: Event) -> bool:
        """Idle -> start: only when a receipt can be issued now (else the refusal is shown)."""
        if self.preflight is None:
            return True
        refusal = self.preflight()
        self.message = refusal
        if refusal is not None:
            log.info("start refused before the session: %s", refusal.get("en"))
            self._publish()
            return False
        return True

    def _take_choice(self, ev: Event) -> bool:
        """Choose: a document on offer (the default for the button) and a city it is issued in."""
        profile = ev.data.get("profile") or self.cfg.default_profile
        doc = next((d for d in self.documents if d["id"] == profile), None)
        if doc is None:
            log.info("ignored choice of unknown document %r", profile)
            return False
        city = str(ev.data.get("city") or "")
        if doc["cities"]:  # as typed or said (深圳, 深圳市, Shenzhen): the one resolver of kiosk.receipt
            names = doc.get("city_names") or {}
            chosen = resolve_city(city, {c: names.get(c, {}) for c in doc["cities"]})
            if chosen is None:
                log.info("ignored choice of city %r for %s", city, profile)
                return False
            city = chosen
        self.profile, self.city = profile, city
        return True

    def _may_retake(self, ev: Event) -> bool:
        if self.retakes >= self.cfg.max_retakes:
            log.info("retake refused: limit of %d reached", self.cfg.max_retakes)
            return False
        return True

    def _enter_idle(self, old: State, trigger: str) -> None:
        self._wipe_citizen()
        self.lang = "zh"  # the next citizen starts in the default language (and may switch in idle)

    def _enter_choose(self, old: State, trigger: str) -> None:
        if old is S.IDLE:
            self.sessions += 1

    def _enter_guidance(self, old: State, trigger: str) -> None:
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

    def _enter_countdown(self, old: State, trigger: str) -> None:
        self._lost_since = None

    def _enter_capture(self, old: State, trigger: str) -> None:
        self.timings["capture_start"] = self.clock()

    def _camera_frame(self) -> Any:
        if self.camera_failed and self.reopen_camera is not None:
            self.camera = self.reopen_camera()
            self.camera_failed = False
        frame = self.camera.frame()
        self.frame = frame
        return frame

    def _guide(self) -> Any:
        """One frame through the live loop (pose, prompt, lights); the frame goes to the screen."""
        frame = self._camera_frame()
        g = self.live.process(frame.rgb, self.clock())
        self.hub.publish_frame(frame.rgb)
        return g

    def _frame_guidance(self) -> None:
        g = self._guide()
        if g.ready and g.steady_s >= self.cfg.steady_s:
            self.fire("steady")
            return
        self._publish()

    def _frame_countdown(self) -> None:
        g = self._guide()
        if g.ready:
            self._lost_since = None
        else:
            self._lost_since = self._lost_since if self._lost_since is not None else self.clock()
            if self.clock() - self._lost_since >= LOST_GRACE_S:
                self.fire("lost")
                return
        self._publish()

    def _frame_review(self) -> None:
        """The live picture next to the final one; no guidance."""
        self.hub.publish_frame(self._camera_frame().rgb)

    def _frame_capture(self) -> None:
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
            self.message = result.reason or pair("session.photo_refused")
            self.fire("photo_bad")

    def _frame_handover(self) -> None:
        assert self.photo is not None and self.photo.jpeg is not None
        self.result = self._hand_over(self.photo.jpeg, self.profile or "", self.city)
        self.fire("handed_over")

    # --- the loop -------------------------------------------------------------------------------------

    def step(self) -> None:
        """One turn of the main loop; never raises (errors go to the failsafe state)."""
        try:
            self._drain()
            frame = SPECS[self.state].frame
            if frame is not None:
                frame(self)
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

    def _timers(self) -> None:
        """The first of this state's timers that has run out fires its trigger."""
        now = self.clock()
        for timer in SPECS[self.state].timers:
            since = self.entered if timer.since == "entered" else self._live_since
            if since is not None and now - since >= getattr(self.cfg, timer.limit):
                self.fire(timer.trigger)
                return

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
                "checks": [c.to_json() for c in self.photo.checks],
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


# --- the states: one spec each, its transitions first -------------------------------------------------

ANY_STATE: dict[str, State] = {"timeout": S.IDLE, "error": S.FAILSAFE}  # from every state (timeout: but idle)
IDLE_TIMEOUT = Timer("idle_timeout_s", "timeout")  # nobody touched the screen
LIVE_TIMEOUT = Timer("guidance_timeout_s", "timeout", since="live")  # no photo in the live phase
ACCEPT = "accept"  # every screen with a way forward takes the Accept button and the UI event "accept"

SPECS: dict[State, StateSpec] = {
    S.IDLE: StateSpec(
        go={"start": S.CHOOSE},
        buttons={ACCEPT: "start"},
        guards={"start": Session._may_start},
        enter=Session._enter_idle,
    ),
    S.CHOOSE: StateSpec(  # document and city
        go={"choose": S.CONSENT, "cancel": S.IDLE},
        buttons={ACCEPT: "choose", "cancel": "cancel"},
        guards={"choose": Session._take_choice},
        enter=Session._enter_choose,
        timers=(IDLE_TIMEOUT,),
    ),
    S.CONSENT: StateSpec(  # privacy notice
        go={"consent": S.GUIDANCE, "back": S.CHOOSE, "decline": S.IDLE, "cancel": S.IDLE},
        buttons={ACCEPT: "consent", "cancel": "decline"},
        events={ACCEPT: "consent"},
        timers=(IDLE_TIMEOUT,),
    ),
    S.GUIDANCE: StateSpec(
        go={"steady": S.COUNTDOWN, "cancel": S.IDLE},
        buttons={"cancel": "cancel"},
        enter=Session._enter_guidance,
        frame=Session._frame_guidance,
        timers=(LIVE_TIMEOUT,),
        live=True,
        lit=True,
    ),
    S.COUNTDOWN: StateSpec(
        go={"lost": S.GUIDANCE, "elapsed": S.CAPTURE, "cancel": S.IDLE},
        buttons={"cancel": "cancel"},
        enter=Session._enter_countdown,
        frame=Session._frame_countdown,
        timers=(Timer("countdown_s", "elapsed"), LIVE_TIMEOUT),
        live=True,
        lit=True,
    ),
    S.CAPTURE: StateSpec(
        go={"photo_ok": S.REVIEW, "photo_bad": S.GUIDANCE},
        enter=Session._enter_capture,
        frame=Session._frame_capture,
        lit=True,  # the lights hold their levels through the still
    ),
    S.REVIEW: StateSpec(
        go={ACCEPT: S.HANDOVER, "retake": S.GUIDANCE, "cancel": S.IDLE},
        buttons={ACCEPT: ACCEPT, "retake": "retake", "cancel": "cancel"},
        guards={"retake": Session._may_retake},
        frame=Session._frame_review,
        timers=(IDLE_TIMEOUT,),
        live=True,
        lit=True,
    ),
    S.HANDOVER: StateSpec(
        go={"handed_over": S.DONE},
        frame=Session._frame_handover,
    ),
    S.DONE: StateSpec(
        go={"elapsed": S.IDLE, ACCEPT: S.IDLE},
        buttons={ACCEPT: ACCEPT},
        timers=(Timer("done_s", "elapsed"),),
    ),
    S.FAILSAFE: StateSpec(
        go={"elapsed": S.IDLE},
        timers=(Timer("failsafe_s", "elapsed"),),
    ),
}

# Views of SPECS for readers and other modules.
TRANSITIONS: dict[tuple[State, str], State] = {
    (s, t): n for s, spec in SPECS.items() for t, n in spec.go.items()
}
BUTTONS: dict[State, dict[str, str]] = {s: spec.buttons for s, spec in SPECS.items() if spec.buttons}
LIVE = tuple(s for s, spec in SPECS.items() if spec.live)  # states that read camera frames
LIT = tuple(s for s, spec in SPECS.items() if spec.lit)


def check_specs(specs: dict[State, StateSpec]) -> None:
    """Every state has a spec, and every button, event, guard and timer names a trigger of its row."""
    from dataclasses import fields as dc_fields

    limits = {f.name for f in dc_fields(SessionConfig)}
    missing = set(State) - set(specs)
    if missing:
        raise ValueError(f"session: no spec for {sorted(missing)}")
    for state, spec in specs.items():
        row = set(spec.go) | set(ANY_STATE)
        for what, triggers in (
            ("button", spec.buttons.values()),
            ("event", spec.events.values()),
            ("guard", spec.guards),
            ("timer", [t.trigger for t in spec.timers]),
        ):
            for trigger in triggers:
                if trigger not in row:
                    raise ValueError(f"session: {state.value}: {what} trigger {trigger!r} leads nowhere")
        for t in spec.timers:
            if t.limit not in limits or t.since not in ("entered", "live"):
                raise ValueError(f"session: {state.value}: bad timer {t}")


check_specs(SPECS)
