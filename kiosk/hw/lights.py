"""The face lights: PWM LEDs (left, right, fill) through gpiozero, pins from the configuration.

Simulation and tests use gpiozero's mock pin factory with PWM pins, so the simulated camera reads
the very duty cycles that the lighting loop wrote. "left" is the LED that lights the left side of
the camera image.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kiosk.config import HardwareConfig

log = logging.getLogger("kiosk.hw.lights")

NAMES = ("left", "right", "fill")


def pin_factory(sim: bool) -> Any:
    """gpiozero's mock factory (with PWM pins) in simulation, else the board's default factory;
    a machine without GPIO falls back to the mock factory with a warning instead of failing."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    if not sim:
        try:
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        except Exception as exc:  # not a Pi, lgpio missing, no /dev/gpiochip
            log.warning(
                "no GPIO (%s): LEDs and buttons are simulated",
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory  # devices created without an explicit factory use it too
    return factory


class Lights:
    """Three PWM LEDs; levels are duty cycles 0..1, clamped."""

    def __init__(self, pins: dict[str, int], factory: Any, frequency: int = 800):
        from gpiozero import PWMLED

        missing = set(NAMES) - set(pins)
        if missing:
            raise ValueError(f"lights: no pin for {', '.join(sorted(missing))}")
        self._lock = threading.Lock()
        self._leds = {n: PWMLED(pins[n], pin_factory=factory, frequency=frequency) for n in NAMES}
        self.pins = {n: pins[n] for n in NAMES}

    @classmethod
    def from_config(cls, cfg: HardwareConfig, factory: Any) -> Lights:
        pins = {"left": cfg.led_left_pin, "right": cfg.led_right_pin, "fill": cfg.led_fill_pin}
        return cls(pins, factory, cfg.led_frequency)

    def set(self, levels: dict[str, float]) -> None:
        with self._lock:
            for name, value in levels.items():
                if name not in self._leds:
                    raise ValueError(f"lights: unknown LED {name!r}")
                self._leds[name].value = min(1.0, max(0.0, float(value)))

    @property
    def levels(self) -> dict[str, float]:
        with self._lock:
            return {n: float(led.value) for n, led in self._leds.items()}

    def off(self) -> None:
        self.set(dict.fromkeys(NAMES, 0.0))

    def close(self) -> None:
        with self._lock:
            for led in self._leds.values():
                led.close()
