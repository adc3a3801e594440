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
import threading
import time
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
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
    SCAN = "scan"  # a returning citizen holds the slip's code to the camera
    LOOKUP = "lookup"  # its number's review asked of the platform
    SCANNED = "scanned"  # the review state (or why it cannot be shown); a rejected photo: free retake
    CHOOSE = "choose"  # document and city
    CONSENT = "consent"  # privacy notice
    REQUIREMENTS = "requirements"  # what the photo needs (hat off, hair off the brows...), before the camera
    GUIDANCE = "guidance"
    COUNTDOWN = "countdown"
    CAPTURE = "capture"
    REVIEW = "review"
    HANDOVER = "handover"
    DONE = "done"
    FAILSAFE = "failsafe"


S = State
LOST_GRACE_S = 0.4  # a countdown survives a failing check this long (one bad frame is not a move)
HANDOVER_WAIT_S = 0.05  # the most one turn of the main loop waits for the hand-over's worker


class _Worker:
    """One call on its own thread; ``wait`` bounded, ``outcome`` its value or its exception."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(fn, args), name="hand-over", daemon=True).start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the session's thread
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def outcome(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

SORRY = pair("session.sorry")  # the failsafe screen, zh/en from the catalogue (kiosk/text)
CAMERA_SORRY = pair("session.camera_sorry")


@dataclass(frozen=True)
class Timer:
    """A state's time limit: after ``limit`` (a SessionConfig field, seconds) it fires ``trigger``."""

    limit: str
    trigger: str
    since: str = "entered"  # or "live": since the live phase began (failed photos do not extend it)
    warn: bool = False  # announced: "Need more time?" SessionConfig.warn_s before it fires ("more_time")


@dataclass(frozen=True)
class StateSpec:
    """Everything one state does; the session's code only reads these."""

    go: dict[str, State]  # trigger -> next state: this state's row of the transition table
    buttons: dict[str, str] = field(default_factory=dict)  # physical button -> trigger
    # UI/API event -> trigger, besides the triggers themselves
    events: dict[str, str] = field(default_factory=dict)
    # trigger -> may it fire now? (a guard may also take the event's data, like the choice)
    guards: dict[str, Callable[[Session, Event], bool]] = field(default_factory=dict)
    # events handled in the state without leaving it (a selection, "more time"): name -> handler
    actions: dict[str, Callable[[Session, Event], None]] = field(default_factory=dict)
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
        returning: Any | None = None,
    ):
        self.cfg, self.camera, self.live, self.photo_maker = cfg, camera, live, photo_maker
        self._hand_over, self.documents, self._thresholds = hand_over, documents, thresholds
        self.hub = hub or Hub()
        self.clock = clock
        self.reopen_camera = reopen_camera
        # asked before a citizen starts: None, or the {zh, en} reason no receipt can be issued now
        self.preflight = preflight
        # the returning citizen's service: lookup(number) -> review, retake(jpeg, profile, city, number,
        # attempt) -> result (kiosk.receipt.wiring.ReceiptService); None: scanning answers "no platform"
        self.returning = returning
        self.events: queue.Queue[Event] = queue.Queue()
        self.listeners: list[Callable[[State, State], None]] = []  # (old, new) after each transition
        self.state = S.IDLE
        self.entered = clock()
        self.lang = "zh"
        self.large_text = False  # large text + slower speech, switched on the idle screen, per session
        self.ended: dict[str, str] | None = None  # why the last session ended (a timeout), shown in idle
        self._ended_until = 0.0
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
        self._warned = False  # a "Need more time?" warning is showing
        self._prompt: str | None = None  # the guidance prompt shown, and since when (stuck hints)
        self._prompt_since: float | None = None
        self.staff_called = False
        self.scan: dict[str, Any] | None = None  # the returning citizen: number read, review or refusal
        self.retake_of: str | None = None  # a free retake of this number (same document, city, number)
        self._attempt = 0  # the platform's attempt the retake will be
        self._reader: Any = None
        self._lookup: _Worker | None = None
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
        if ev.name == "large_text":  # a toggle; it holds until the session ends
            self.large_text = not self.large_text
            self._publish()
            return
        shown = ev.data.get("on")  # the screen touched: a tap meant for a screen that is gone is dropped
        if ev.source == "ui" and shown is not None and shown != self.state.value:
            log.info("ignored %r touched on %s while in %s", ev.name, shown, self.state.value)
            return
        spec = SPECS[self.state]
        action = spec.actions.get(ev.name)
        if action is not None and ev.source != "button":
            action(self, ev)
            self._publish()
            return
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
        self._warned = False
        enter = SPECS[new].enter
        if enter is not None:
            enter(self, old, trigger)
        if trigger == "timeout":  # the idle screen says briefly why the last session ended
            self.ended = pair("session.ended.live_timeout" if SPECS[old].live else "session.ended.timeout")
            self._ended_until = now + self.cfg.ended_notice_s
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

    def _document(self, profile: str | None) -> dict[str, Any] | None:
        return next((d for d in self.documents if d["id"] == profile), None)

    def _city_for(self, doc: dict[str, Any], city: str) -> str | None:
        """The city id ``doc`` is issued in, as typed or said (深圳, 深圳市, Shenzhen: the one resolver
        of kiosk.receipt); "" for a document issued anywhere; None when this city does not serve it."""
        if not doc["cities"]:
            return ""
        names = doc.get("city_names") or {}
        return resolve_city(city, {c: names.get(c, {}) for c in doc["cities"]})

    def home_city(self) -> str:
        """The terminal's home city: the first city offered for the default document (home first)."""
        doc = self._document(self.cfg.default_profile) or (self.documents[0] if self.documents else None)
        if doc and doc["cities"]:
            return str(doc["cities"][0])
        return next((str(d["cities"][0]) for d in self.documents if d["cities"]), "")

    def _take_choice(self, ev: Event) -> bool:
        """Choose: a document on offer (the one selected, else the default) and a city it is issued in."""
        profile = ev.data.get("profile") or self.profile or self.cfg.default_profile
        doc = self._document(profile)
        if doc is None:
            log.info("ignored choice of unknown document %r", profile)
            return False
        city = self._city_for(doc, str(ev.data.get("city") or self.city or ""))
        if city is None:
            log.info("ignored choice of city %r for %s", ev.data.get("city") or self.city, profile)
            return False
        self.profile, self.city = profile, city
        return True

    def _select(self, ev: Event) -> None:
        """Choose screen: a city and/or a document selected, not yet confirmed. A city that does not
        serve the selected document leaves no document selected (the screen shows it disabled)."""
        self.entered = self.clock()  # a touch: the screen's time limit starts again
        self._warned = False
        city = ev.data.get("city")
        if city is not None:
            every = {c for d in self.documents for c in d["cities"]}
            names = {c: n for d in self.documents for c, n in (d.get("city_names") or {}).items()}
            chosen = resolve_city(str(city), {c: names.get(c, {}) for c in every})
            if chosen is None:
                log.info("ignored selection of city %r", city)
                return
            self.city = chosen
        profile = ev.data.get("profile")
        if profile is not None:
            doc = self._document(profile)
            if doc is None or self._city_for(doc, self.city) is None:
                log.info("ignored selection of %r in %r", profile, self.city)
                return
            self.profile = profile
        doc = self._document(self.profile)
        if doc is not None and self._city_for(doc, self.city) is None:
            self.profile = None

    def _more_time(self, ev: Event) -> None:
        """The citizen answered "Need more time?": the announced timers of this state start again."""
        now = self.clock()
        for timer in SPECS[self.state].timers:
            if timer.warn and timer.since == "live":
                self._live_since = now
            elif timer.warn:
                self.entered = now
        self._warned = False
        log.info("session: more time in %s", self.state.value)

    def _call_staff(self, ev: Event) -> None:
        """Guidance is stuck: the citizen asked for staff (the service status and the log say so)."""
        if not self.staff_called:
            log.warning("session: the citizen asked for staff during %s", self.state.value)
        self.staff_called = True

    def _may_retake(self, ev: Event) -> bool:
        if self.retakes >= self.cfg.max_retakes:
            log.info("retake refused: limit of %d reached", self.cfg.max_retakes)
            return False
        return True

    def _enter_idle(self, old: State, trigger: str) -> None:
        self._wipe_citizen()
        self.lang = "zh"  # the next citizen starts in the default language (and may switch in idle)
        self.large_text = False

    def _enter_choose(self, old: State, trigger: str) -> None:
        if old is S.IDLE:  # a new citizen: the home city and the default document, whatever came before
            self.sessions += 1
            self.ended = None
            self.city = self.home_city()
            doc = self._document(self.cfg.default_profile)
            self.profile = doc["id"] if doc and self._city_for(doc, self.city) is not None else None

    def _enter_guidance(self, old: State, trigger: str) -> None:
        if old is S.REVIEW:
            self.retakes += 1
        if old is S.REVIEW or old is S.CAPTURE:
            if self.photo is not None:
                self.photo.wipe()
            self.photo = None
            self.hub.set_photo(None)
        if old in (S.REQUIREMENTS, S.REVIEW, S.SCANNED):  # a new live phase; failed photos do not extend it
            self._live_since = self.clock()
        if old is not S.COUNTDOWN:
            self.live.start(self._thresholds(self.profile or self.cfg.default_profile))
            self._prompt, self._prompt_since = None, None
        if old in (S.REQUIREMENTS, S.REVIEW, S.SCANNED):
            self.message = None

    # --- the returning citizen: scan the slip, its review, the free retake -----------------------------

    def _enter_scan(self, old: State, trigger: str) -> None:
        from kiosk.capture.scan import SlipReader

        if old is S.IDLE:
            self.sessions += 1
            self.ended = None
        self._reader = SlipReader()
        self.scan = None
        self.message = None

    def _refuse_scan(self, why: str, **fields: Any) -> None:
        message = pair(f"returning.refused.{why}", **fields)
        self.scan = {**(self.scan or {}), "refused": why, "message": message}

    def _frame_scan(self) -> None:
        """A frame to the slip reader: a valid number of this province goes to the lookup; another
        province's, or a code that is no number, is refused at once (no platform asked)."""
        from kiosk.capture.scan import ScanRefused, check_number
        from kiosk.receipt.layouts import load_layouts

        frame = self._camera_frame()  # not shown: the slip carries a thumbnail of the citizen's photo
        number = self._reader.feed(frame.rgb)
        if number is None:
            hint = self.clock() - self.entered >= self.cfg.scan_hint_s
            if hint and not (self.scan or {}).get("hint"):
                self.scan = {"hint": pair("returning.refused.unreadable")}
                self._publish()
            return
        self.scan = {"number": number, "symbology": self._reader.symbology}
        try:
            check_number(number, load_layouts())
        except ScanRefused as exc:
            log.info("scanned slip refused: %s", exc)
            self._refuse_scan(exc.code)
            self.fire("refused")
            return
        self.fire("decoded")

    def _enter_scanned(self, old: State, trigger: str) -> None:
        if trigger == "unreadable":  # the scan's time ran out
            self._refuse_scan(self._reader.reason() if self._reader is not None else "unreadable")

    def _enter_lookup(self, old: State, trigger: str) -> None:
        assert self.scan is not None
        if self.returning is None:
            self._lookup = _Worker(_no_platform)
        else:
            self._lookup = _Worker(self.returning.lookup, self.scan["number"])

    def _frame_lookup(self) -> None:
        """The platform is asked on a worker thread (the client's one deadline bounds it)."""
        if self._lookup is None or not self._lookup.wait(HANDOVER_WAIT_S):
            return
        job, self._lookup = self._lookup, None
        try:
            review = job.outcome()
        except Exception as exc:  # noqa: BLE001 - every failure is a refusal the citizen reads
            code = str(getattr(exc, "code", None) or "")
            head = "returning.refused."
            why = code.removeprefix(head) if code.startswith(head) else "platform"
            log.info("returning lookup refused (%s): %s", why, exc)
            self._refuse_scan(why, **getattr(exc, "fields", {}))
            self.fire("looked_up")
            return
        self.scan = {**(self.scan or {}), "review": review}
        if review.get("limit"):
            self.scan["message"] = review["limit"]
        self.fire("looked_up")

    def _may_retake_free(self, ev: Event) -> bool:
        """The free retake: only for a rejected review under the limit; the same document and city."""
        review = (self.scan or {}).get("review") or {}
        if not review.get("retake"):
            return False
        self.profile, self.city = review["profile"], review["city"]
        self.retake_of, self._attempt = review["number"], int(review["attempts"]) + 1
        return True

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
        key = None if g.ready else (g.prompt or (g.failing[0] if g.failing else None))
        if key != self._prompt or self._prompt_since is None:  # progress: another prompt, or ready
            self._prompt, self._prompt_since = key, self.clock()
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

    _handover: _Worker | None = None

    def _frame_handover(self) -> None:
        """The hand-over (number, maybe from the platform, and the slip) runs on a worker thread: the
        main loop, and the watchdog it feeds, never waits on the network more than HANDOVER_WAIT_S a
        turn. Its failure is raised here, on the session's thread (-> failsafe)."""
        if self._handover is None:
            assert self.photo is not None and self.photo.jpeg is not None
            if self.retake_of is not None:  # the free retake: the new photo under the same number
                fn = self.returning.retake if self.returning is not None else _no_platform
                args = (self.photo.jpeg, self.profile or "", self.city, self.retake_of, self._attempt)
                self._handover = _Worker(fn, *args)
            else:
                self._handover = _Worker(self._hand_over, self.photo.jpeg, self.profile or "", self.city)
        if not self._handover.wait(HANDOVER_WAIT_S):
            return
        job, self._handover = self._handover, None
        if self.retake_of is None:
            self.result = job.outcome()
        else:
            try:
                self.result = job.outcome()
            except Exception as exc:  # noqa: BLE001 - a failed retake is told, the slip stays valid
                log.warning("free retake of a number failed: %s", exc)
                code, fields = getattr(exc, "code", None), getattr(exc, "fields", {})
                known = isinstance(code, str) and code.startswith("returning.")
                self.result = {
                    "number": self.retake_of, "retake": True, "printed": False, "failed": True,
                    "message": pair(code if known else "returning.retake.failed", **fields),
                }
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
            if self.ended is not None and self.state is S.IDLE and self.clock() >= self._ended_until:
                self.ended = None
                self._publish()
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
        """The first of this state's timers that has run out fires its trigger; an announced timer
        close to running out shows its warning (published once as it starts, the screen counts down)."""
        now = self.clock()
        for timer in SPECS[self.state].timers:
            since = self.entered if timer.since == "entered" else self._live_since
            if since is not None and now - since >= getattr(self.cfg, timer.limit):
                self.fire(timer.trigger)
                return
        if (self.warning() is not None) != self._warned:
            self._warned = not self._warned
            self._publish()

    def warning(self) -> dict[str, Any] | None:
        """"Need more time?": the seconds left on this state's announced timer, when within warn_s."""
        if self.cfg.warn_s <= 0:
            return None
        now = self.clock()
        for timer in SPECS[self.state].timers:
            since = self.entered if timer.since == "entered" else self._live_since
            if not timer.warn or since is None:
                continue
            left = getattr(self.cfg, timer.limit) - (now - since)
            if left <= self.cfg.warn_s:
                return {"remaining_s": round(max(0.0, left), 2), "warn_s": self.cfg.warn_s}
        return None

    def hint(self) -> dict[str, Any] | None:
        """Guidance stuck on one prompt for stuck_hint_s: which way (an arrow) and a specific sentence
        (kiosk/capture/hints.toml), and the offer to call staff."""
        if self.state is not S.GUIDANCE or self._prompt is None or self._prompt_since is None:
            return None
        if self.clock() - self._prompt_since < self.cfg.stuck_hint_s:
            return None
        g = self.live.last
        values = g.values if g is not None else {}
        arrow, text_id = stuck_hint(self._prompt, values)
        return {
            "prompt": self._prompt,
            "arrow": arrow,
            "text": pair(text_id) if text_id else None,
            "staff": True,
            "staff_called": self.staff_called,
        }

    # --- what the screen shows --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        g = self.live.last if self.state in (S.GUIDANCE, S.COUNTDOWN) else None
        snap: dict[str, Any] = {
            "state": self.state.value,
            "lang": self.lang,
            "large_text": self.large_text,
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
            "home_city": self.home_city(),
            "requirements": requirements_for(self._thresholds(self.profile or self.cfg.default_profile))
            if self.state is S.REQUIREMENTS
            else None,
            "warning": self.warning(),
            "hint": self.hint(),
            "ended": self.ended if self.state is S.IDLE else None,
            # the returning citizen: the review's state, document, city and dates; no photo, no person
            "scan": self.scan if self.state in (S.SCAN, S.LOOKUP, S.SCANNED) else None,
            "retake_of": self.retake_of,
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
            "staff_called": self.staff_called,
        }


def _no_platform(*args: Any) -> Any:
    """The returning citizen's calls on a session built without the receipts' service."""
    from kiosk.errors import KioskError

    raise KioskError("no platform for returning citizens", code="returning.refused.no_platform")


HINTS_FILE = Path(__file__).with_name("hints.toml")
REQUIREMENTS_FILE = Path(__file__).with_name("requirements.toml")


@lru_cache(maxsize=1)
def _requirements() -> list[dict[str, str]]:
    with REQUIREMENTS_FILE.open("rb") as f:
        return list(tomllib.load(f)["requirement"])


def requirements_for(thresholds: dict[str, Any]) -> list[str]:
    """The requirement ids the screen shows for a profile (its thresholds decide the optional ones)."""
    return [r["id"] for r in _requirements() if not r.get("threshold") or r["threshold"] in thresholds]


@lru_cache(maxsize=1)
def _hints() -> dict[str, Any]:
    with HINTS_FILE.open("rb") as f:
        return tomllib.load(f)["prompt"]


def stuck_hint(prompt: str, values: dict[str, float]) -> tuple[str, str | None]:
    """(arrow, text id) for a prompt that has not gone away: from kiosk/capture/hints.toml, the sign
    of the measure choosing the way where the prompt alone does not say it (turn, tilt)."""
    rule = _hints().get(prompt)
    if rule is None:
        return "none", "session.hint.generic"
    measure = rule.get("measure")
    if measure is not None and measure in values:
        rule = rule["positive"] if values[measure] > 0 else rule["negative"]
    elif measure is not None:
        rule = rule.get("unknown", {"arrow": "none", "text": "session.hint.generic"})
    return str(rule.get("arrow", "none")), rule.get("text")


# --- the states: one spec each, its transitions first -------------------------------------------------

ANY_STATE: dict[str, State] = {"timeout": S.IDLE, "error": S.FAILSAFE}  # from every state (timeout: but idle)
IDLE_TIMEOUT = Timer("idle_timeout_s", "timeout", warn=True)  # nobody touched the screen
LIVE_TIMEOUT = Timer("guidance_timeout_s", "timeout", since="live", warn=True)  # no photo in the live phase
MORE_TIME = {"more_time": Session._more_time}  # the answer to "Need more time?"
ACCEPT = "accept"  # every screen with a way forward takes the Accept button and the UI event "accept"

SPECS: dict[State, StateSpec] = {
    S.IDLE: StateSpec(
        go={"start": S.CHOOSE, "scan": S.SCAN},
        buttons={ACCEPT: "start"},
        guards={"start": Session._may_start},
        enter=Session._enter_idle,
    ),
    S.SCAN: StateSpec(  # "Have a slip? Scan it": the slip's code to the camera
        go={"decoded": S.LOOKUP, "refused": S.SCANNED, "unreadable": S.SCANNED, "cancel": S.IDLE},
        buttons={"cancel": "cancel"},
        enter=Session._enter_scan,
        frame=Session._frame_scan,
        timers=(Timer("scan_timeout_s", "unreadable"),),
        live=True,
    ),
    S.LOOKUP: StateSpec(  # the platform asked (bounded by the client's deadline)
        go={"looked_up": S.SCANNED},
        enter=Session._enter_lookup,
        frame=Session._frame_lookup,
    ),
    S.SCANNED: StateSpec(  # the review: pending / approved / rejected (free retake), or why not
        go={"retake": S.GUIDANCE, "again": S.SCAN, ACCEPT: S.IDLE, "cancel": S.IDLE},
        buttons={ACCEPT: ACCEPT, "retake": "retake", "cancel": "cancel"},
        guards={"retake": Session._may_retake_free},
        actions=MORE_TIME,
        enter=Session._enter_scanned,
        timers=(IDLE_TIMEOUT,),
    ),
    S.CHOOSE: StateSpec(  # document and city
        go={"choose": S.CONSENT, "cancel": S.IDLE},
        buttons={ACCEPT: "choose", "cancel": "cancel"},
        events={ACCEPT: "choose"},
        guards={"choose": Session._take_choice},
        actions={"select": Session._select, **MORE_TIME},
        enter=Session._enter_choose,
        timers=(IDLE_TIMEOUT,),
    ),
    S.CONSENT: StateSpec(  # privacy notice
        go={"consent": S.REQUIREMENTS, "back": S.CHOOSE, "decline": S.IDLE, "cancel": S.IDLE},
        buttons={ACCEPT: "consent", "cancel": "decline"},
        events={ACCEPT: "consent"},
        actions=MORE_TIME,
        timers=(IDLE_TIMEOUT,),
    ),
    S.REQUIREMENTS: StateSpec(  # the profile's requirements with drawn examples, just before the camera
        go={"ready": S.GUIDANCE, "back": S.CONSENT, "cancel": S.IDLE},
        buttons={ACCEPT: "ready", "cancel": "cancel"},
        events={ACCEPT: "ready"},
        actions=MORE_TIME,
        timers=(IDLE_TIMEOUT,),
    ),
    S.GUIDANCE: StateSpec(
        go={"steady": S.COUNTDOWN, "cancel": S.IDLE},
        buttons={"cancel": "cancel"},
        actions={**MORE_TIME, "call_staff": Session._call_staff},
        enter=Session._enter_guidance,
        frame=Session._frame_guidance,
        timers=(LIVE_TIMEOUT,),
        live=True,
        lit=True,
    ),
    S.COUNTDOWN: StateSpec(
        go={"lost": S.GUIDANCE, "elapsed": S.CAPTURE, "cancel": S.IDLE},
        buttons={"cancel": "cancel"},
        actions=MORE_TIME,
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
        actions=MORE_TIME,
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
