"""LEDs on gpiozero's mock PWM pins: pins from the configuration, levels, clamping, errors."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.config import ConfigError, HardwareConfig, load_config
from kiosk.hw.lights import Lights


@pytest.fixture
def factory():
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


def test_levels_drive_the_configured_pwm_pins(factory):
    cfg = HardwareConfig(led_left_pin=20, led_right_pin=21, led_fill_pin=16, led_frequency=1000)
    lights = Lights.from_config(cfg, factory)
    lights.set({"left": 0.25, "right": 0.75, "fill": 0.5})
    assert factory.pin(20).state == pytest.approx(0.25)
    assert factory.pin(21).state == pytest.approx(0.75)
    assert factory.pin(16).state == pytest.approx(0.5)
    assert factory.pin(20).frequency == 1000
    assert lights.levels == pytest.approx({"left": 0.25, "right": 0.75, "fill": 0.5})
    lights.set({"left": 3.0, "right": -1.0})  # out-of-range requests are clamped, never raise
    assert factory.pin(20).state == 1.0 and factory.pin(21).state == 0.0
    lights.off()
    assert all(v == 0.0 for v in lights.levels.values())
    with pytest.raises(ValueError, match="unknown LED 'top'"):
        lights.set({"top": 1.0})
    lights.close()


def test_pin_configuration_is_validated_with_the_key_named(tmp_path):
    bad = tmp_path / "k.toml"
    bad.write_text("[hardware]\nled_left_pin = 5\n")  # 5 is the accept button's default pin
    with pytest.raises(
        ConfigError,
        match="hardware.led_left_pin: pin 5 is already used by button_accept_pin"
        "|hardware.button_accept_pin: pin 5 is already used by led_left_pin",
    ):
        load_config(bad)
    bad.write_text("[hardware]\nled_fill_pin = 40\n")
    with pytest.raises(ConfigError, match="hardware.led_fill_pin: BCM pin must be between 0 and 27"):
        load_config(bad)
    bad.write_text('[hardware]\ncamera = "webcam"\n')
    with pytest.raises(ConfigError, match="hardware.camera: expected auto, sim, picamera2, v4l2 or file"):
        load_config(bad)


def test_the_pin_factory_is_passed_in_never_installed_globally():
    """Two stations in one process (tests, demo beside a service) keep their own pins, and gpiozero's
    global default factory is left as it was."""
    from gpiozero import Device

    from kiosk.hw.lights import pin_factory

    before = Device.pin_factory
    f1, f2 = pin_factory(sim=True), pin_factory(sim=True)
    a, b = Lights.from_config(HardwareConfig(), f1), Lights.from_config(HardwareConfig(), f2)
    try:
        assert Device.pin_factory is before
        a.set({"left": 1.0, "fill": 0.5})
        assert f1.pin(12).state == 1.0 and f2.pin(12).state == 0.0
        assert b.levels == {"left": 0.0, "right": 0.0, "fill": 0.0}
        assert a.levels == {"left": 1.0, "right": 0.0, "fill": 0.5}
        assert f1.pin(12).frequency == HardwareConfig().led_frequency
    finally:
        a.close()
        b.close()
