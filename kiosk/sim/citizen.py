"""The simulated citizen's side of a session: steps up when a session starts, leaves when it ends,
and reads the prompt on screen after every step. Also the simulated clock the demo advances.

The session never knows any of this: kiosk.station attaches a SimCitizen as a transition listener.
"""

from __future__ import annotations

from typing import Any


class SimClock:
    """Simulated seconds, advanced by the demo loop one frame at a time."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class SimCitizen:
    """Drives the SimSubject of whatever simulated camera the session holds now (a reopened camera
    brings a new subject, so it is looked up every time, never kept)."""

    LIVE_PROMPTS = ("guidance", "countdown")  # states whose screen shows a guidance prompt

    def __init__(self, session: Any) -> None:
        self.session = session
        self.slip: bytes | None = None  # a returning citizen's slip (PNG), held up when the scan starts

    def _subject(self) -> Any:
        return getattr(self.session.camera, "subject", None)

    def on_transition(self, old: Any, new: Any) -> None:
        """A session listener: a citizen arrives when the choose screen opens, leaves at idle."""
        subject = self._subject()
        if subject is None:
            return
        if new.value == "choose" and old.value == "idle":
            subject.arrive()
        elif new.value == "scan" and old.value == "idle":
            subject.arrive()
            self._hold_slip(self.slip)
        elif new.value == "guidance" and old.value == "scanned":  # the free retake: the slip put away
            subject.arrive()
        elif new.value == "idle":
            subject.leave()
        if old.value == "scan" and new.value != "scan":
            self._hold_slip(None)

    def _hold_slip(self, slip: bytes | None) -> None:
        show = getattr(self.session.camera, "show_slip", None)
        if show is not None:
            show(slip)

    def camera_opened(self, camera: Any) -> None:
        """A freshly (re)opened simulated camera: nobody stands there unless a session runs."""
        subject = getattr(camera, "subject", None)
        if subject is not None and self.session_idle():
            subject.leave()

    def session_idle(self) -> bool:
        state = getattr(self.session, "state", None)
        return state is None or state.value == "idle"

    def prompt(self) -> str | None:
        """The guidance prompt on screen now, or None."""
        s = self.session
        g = s.live.last if s.state.value in self.LIVE_PROMPTS else None
        return g.prompt if g is not None else None

    def after_step(self) -> None:
        """The citizen reads the screen (reacting after their reaction time)."""
        subject = self._subject()
        if subject is not None:
            subject.hear(self.prompt())
