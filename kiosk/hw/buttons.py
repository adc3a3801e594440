"""The three push buttons (accept, retake, cancel) through gpiozero.

gpiozero calls back on its own thread: the callback only stamps the press and hands the button's
name to ``post`` (the session's event queue). Debouncing is done here, not with gpiozero's
bounce_time (which can drop events), and a press counts once however long the button is held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk.config import HardwareConfig

NAMES = ("accept", "retake", "cancel")


class Buttons:
    """Posts ``name`` once per press; contacts bouncing within ``debounce_s`` and a held button
    (however long, even if the driver repeats the edge) do not post again."""

    def __init__(
        self,
        pins: dict[str, int],
        post: Callable[[str], None],
        factory: Any,
        debounce_s: float = 0.06,
        clock: Callable[[], float] = time.monotonic,
    ):
        from gpiozero import Button

        self.post, self.debounce_s, self.clock = post, debounce_s, clock
        self._lock = threading.Lock()
        self._last_press: dict[str, float] = {}
        self._last_release: dict[str, float] = {}
        self._down: dict[str, bool] = {}
        self._buttons = {}
        for name, pin in pins.items():
            b = Button(pin, pull_up=True, bounce_time=None, pin_factory=factory)
            b.when_pressed = lambda _dev=None, n=name: self._edge(n, True)
            b.when_released = lambda _dev=None, n=name: self._edge(n, False)
            self._buttons[name] = b
        self.pins = dict(pins)

    @classmethod
    def from_config(cls, cfg: HardwareConfig, post: Callable[[str], None], factory: Any) -> Buttons:
        pins = {
            "accept": cfg.button_accept_pin,
            "retake": cfg.button_retake_pin,
            "cancel": cfg.button_cancel_pin,
        }
        return cls(pins, post, factory, cfg.button_debounce_ms / 1000.0)

    def _edge(self, name: str, pressed: bool) -> None:
        now = self.clock()
        with self._lock:
            was_down = self._down.get(name, False)
            self._down[name] = pressed
            if not pressed:
                if was_down:
                    self._last_release[name] = now
                return
            if was_down:
                return  # the driver repeating the edge of a held button
            quiet = min(now - self._last_press.get(name, -1e9), now - self._last_release.get(name, -1e9))
            if quiet < self.debounce_s:
                return  # contact chatter right after a press or a release
            self._last_press[name] = now
        self.post(name)

    def close(self) -> None:
        for b in self._buttons.values():
            b.close()
