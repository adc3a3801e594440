"""The terminal's wall clock, and whether it can be trusted yet.

A Raspberry Pi has no battery-backed clock: after a power cut it boots at the time it last saved
and only NTP puts it right. Wall time goes into image numbers, slips, certificate checks and TUF
expiry, so until the clock is synchronised no number is issued. Durations (timeouts, countdowns)
never use this clock: they use ``time.monotonic``, which a step of the wall clock does not move.

The signal: systemd-timesyncd's ``/run/systemd/timesync/synchronized`` flag (what
``systemd-time-wait-sync.service`` waits for; /run is emptied at boot, so a stale flag cannot
survive a power cut), or the kernel's own "NTP synchronised" state (``adjtimex``: STA_UNSYNC
cleared), which chrony or ntpd set too. A platform ``Date`` header is not used as the source: it
arrives over a TLS connection whose certificate check already needs the right time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from kiosk.errors import KioskError

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
# Nothing this software issues can be dated before it was written: a clock reading earlier than
# this is wrong whatever any flag says (the Pi's fake-hwclock after a long shelf life, a flat RTC).
NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


class ClockNotSet(KioskError):
    """The wall clock is not known to be right: nothing that carries a date may be issued."""


class WallClock(Protocol):
    """What needs the date asks this (injectable: tests set the clock back and forward)."""

    def now(self) -> float:
        """Seconds since the epoch (UTC)."""

    def problem(self) -> str | None:
        """None when the wall time can be trusted, else why not (one line, for technicians)."""


def _floor_problem(t: float) -> str | None:
    if t < NOT_BEFORE:
        when = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"the clock reads {when}, before this software was made"
    return None


def kernel_synchronised() -> bool:
    """The kernel's NTP state (what ``timedatectl``'s NTPSynchronized shows): STA_UNSYNC clear."""

    class Timex(ctypes.Structure):
        _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                    ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                    ("_rest", ctypes.c_long * 32)]  # the remaining fields; only status is read

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        tx = Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return False
    sta_unsync = 0x0040
    time_error = 5
    return state not in (-1, time_error) and not tx.status & sta_unsync


class SynchronisedClock:
    """Production: the system clock, trusted once NTP has set it (timesyncd's flag or the kernel)."""

    def __init__(
        self,
        flag: Path = TIMESYNC_FLAG,
        kernel: Callable[[], bool] = kernel_synchronised,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.flag, self._kernel, self._now = flag, kernel, now

    def now(self) -> float:
        return self._now()

    def problem(self) -> str | None:
        floor = _floor_problem(self._now())
        if floor:
            return floor
        if self.flag.exists() or self._kernel():
            return None
        return "the clock is not synchronised yet (no NTP time: systemd-timesyncd has not set it)"


class SystemClock:
    """The system clock taken as right (simulation and demos on a development machine)."""

    def now(self) -> float:
        return time.time()

    def problem(self) -> str | None:
        return _floor_problem(time.time())


class SetClock:
    """A clock a test sets: ``t`` is the wall time, ``synced`` whether NTP has confirmed it."""

    def __init__(self, t: float | None = None, synced: bool = True) -> None:
        self.t = time.time() if t is None else t
        self.synced = synced

    def now(self) -> float:
        return self.t

    def problem(self) -> str | None:
        floor = _floor_problem(self.t)
        if floor:
            return floor
        return None if self.synced else "the clock is not synchronised yet (injected)"


def trusted_now(clock: WallClock) -> float:
    """The wall time, or ClockNotSet (one line) when it cannot be trusted yet."""
    problem = clock.problem()
    if problem:
        from kiosk.text import text

        line = text("clock.waiting.technician", "en", problem=problem)
        raise ClockNotSet(line, code="clock.waiting.citizen")  # code: what the citizen is told
    return clock.now()
