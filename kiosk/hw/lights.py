"""The face lights: three PWM LEDs (left, right, fill) as one gpiozero ``LEDBoard(pwm=True)``.

The pin factory is always passed in, never installed as gpiozero's global default: simulation and
tests use a mock factory with PWM pins (so the simulated camera reads the very duty cycles that the
lighting loop wrote) and several stations may live in one process. "left" is the LED that lights
the left side of the camera image.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from kiosk.config import HardwareConfig

log = logging.getLogger("kiosk.hw.lights")

NAMES = ("left", "right", "fill")


def pin_factory(sim: bool) -> Any:
    """gpiozero's mock factory (with PWM pins) in simulation, else the board's lgpio factory; a
    machine without GPIO falls back to the mock factory with a warning instead of failing. The
    caller hands it to every device it makes (lights, buttons)."""
    from gpiozero.pins.mock import MockFactory

    if not sim:
        try:
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        except Exception as exc:  # not a Pi, lgpio missing, no /dev/gpiochip
            log.warning(
                "no GPIO (%s): LEDs and buttons are simulated",
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
    return MockFactory(pin_class=_mock_pwm_pin())


MOCK_PIN_HISTORY = 64  # states a simulated pin remembers (gpiozero's tests read them back)


@lru_cache(maxsize=1)
def _mock_pwm_pin() -> type:
    """gpiozero's mock PWM pin, remembering only its last states: gpiozero keeps every state a mock
    pin was ever set to, and the lighting loop sets three LEDs per frame (444 states per session,
    the Python heap of `kiosk run --sim` grew by 0.1 MB per session; tracemalloc, issue 20)."""
    from gpiozero.pins.mock import MockPWMPin

    class BoundedMockPWMPin(MockPWMPin):
        def _change_state(self, value: Any) -> bool:
            changed = super()._change_state(value)
            del self.states[:-MOCK_PIN_HISTORY]
            return bool(changed)

    return BoundedMockPWMPin


class Lights:
    """Levels are duty cycles 0..1, clamped; one lock so a console test and the lighting loop
    never interleave a set of three values."""

    def __init__(self, pins: dict[str, int], factory: Any, frequency: int = 800):
        from gpiozero import LEDBoard

        missing = set(NAMES) - set(pins)
        if missing:
            raise ValueError(f"lights: no pin for {', '.join(sorted(missing))}")
        self._lock = threading.Lock()
        self.board = LEDBoard(pwm=True, pin_factory=factory, _order=NAMES, **{n: pins[n] for n in NAMES})
        for led in self.board:
            led.pin.frequency = frequency  # LEDBoard has no frequency argument; PWMLED sets it the same way
        self.pins = {n: pins[n] for n in NAMES}

    @classmethod
    def from_config(cls, cfg: HardwareConfig, factory: Any) -> Lights:
        pins = {"left": cfg.led_left_pin, "right": cfg.led_right_pin, "fill": cfg.led_fill_pin}
        return cls(pins, factory, cfg.led_frequency)

    def set(self, levels: Mapping[str, float]) -> None:
        unknown = set(levels) - set(NAMES)
        if unknown:
            raise ValueError(f"lights: unknown LED {sorted(unknown)[0]!r}")
        with self._lock:
            for name, value in levels.items():
                getattr(self.board, name).value = min(1.0, max(0.0, float(value)))

    @property
    def levels(self) -> dict[str, float]:
        with self._lock:
            return dict(zip(NAMES, map(float, self.board.value), strict=True))

    def off(self) -> None:
        with self._lock:
            self.board.off()

    def close(self) -> None:
        with self._lock:
            self.board.close()
