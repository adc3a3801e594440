"""Buttons: one event per press into the session's queue, whatever the contacts and the thumb do."""

from __future__ import annotations

import queue

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.config import HardwareConfig
from kiosk.hw.buttons import Buttons


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rig():
    factory = MockFactory(pin_class=MockPWMPin)
    q: queue.Queue[str] = queue.Queue()
    clock = Clock()
    cfg = HardwareConfig()
    buttons = Buttons.from_config(cfg, q.put, factory)
    buttons.clock = clock
    yield factory, q, clock, cfg
    buttons.close()
    factory.reset()


def _drain(q) -> list[str]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def test_a_press_posts_the_button_name_once(rig):
    factory, q, clock, cfg = rig
    pin = factory.pin(cfg.button_retake_pin)
    pin.drive_low()
    clock.t += 0.2
    pin.drive_high()
    assert _drain(q) == ["retake"]


def test_bouncing_contacts_post_one_event(rig):
    factory, q, clock, cfg = rig
    pin = factory.pin(cfg.button_accept_pin)
    for _ in range(5):  # 5 ms chatter on the way down
        pin.drive_low()
        clock.t += 0.002
        pin.drive_high()
        clock.t += 0.003
    pin.drive_low()
    clock.t += 0.3
    pin.drive_high()
    for _ in range(3):  # and on release
        clock.t += 0.002
        pin.drive_low()
        clock.t += 0.002
        pin.drive_high()
    assert _drain(q) == ["accept"]
    clock.t += 0.5
    pin.drive_low()  # a real second press later counts
    assert _drain(q) == ["accept"]


def test_a_held_button_posts_once_even_if_the_edge_repeats(rig):
    factory, q, clock, cfg = rig
    b = factory.pin(cfg.button_cancel_pin)
    b.drive_low()
    for _ in range(10):  # held for 5 s; a driver that re-reports the level must not repeat the event
        clock.t += 0.5
        b.drive_low()
    assert _drain(q) == ["cancel"]
    b.drive_high()
    clock.t += 0.5
    b.drive_low()
    assert _drain(q) == ["cancel"]


def test_buttons_are_independent(rig):
    factory, q, clock, cfg = rig
    factory.pin(cfg.button_accept_pin).drive_low()
    factory.pin(cfg.button_cancel_pin).drive_low()  # within the debounce time of the other button
    assert _drain(q) == ["accept", "cancel"]
