"""Login attempt limiting: a growing delay after each wrong PIN, then a lockout that doubles with
each lockout since the last good login (capped at LOCKOUT_MAX_S): a few dozen guesses a day at first,
then max_attempts a day, not hundreds.

The state lives in a small file in the state dir so that restarting the console process (or
pulling the cable, or the power) does not hand an attacker a fresh set of guesses: it is written
with kiosk.durable (fsynced before the next prompt, 0600 in a 0700 folder), and a file that cannot
be read back (torn, corrupt) locks the console for the base lockout instead of starting afresh.
Wall-clock time is used because it survives the restart; a lockout longer than configured (clock
stepped back) is clamped.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from kiosk.config import ConsoleConfig
from kiosk.durable import make_dirs, write_atomic

STATE_NAME = "console-login.json"
LOCKOUT_MAX_S = 86400.0  # the longest lockout the doubling reaches


_MAX_DOUBLINGS = 64  # 2**64 lockouts is far past LOCKOUT_MAX_S for any lockout_s; avoids float overflow


class DamagedState(ValueError):
    """The login state file holds something this module never writes."""


def _count(data: dict, key: str) -> int:
    """A count as _save writes it; a negative one would shorten the way to the lockout."""
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DamagedState(f"{key} is not a count: {value!r:.40}")
    return value


def _time(data: dict, key: str) -> float:
    """A finite time: NaN compares false with every clock reading and so never locks."""
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DamagedState(f"{key} is not a time: {value!r:.40}")
    return float(value)


class LoginGuard:
    def __init__(
        self,
        cfg: ConsoleConfig,
        state_dir: Path | None,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        # the console's log (stderr, the journal under systemd); never silent without one
        self.log = log or logging.getLogger("kiosk.console").warning
        self.path = Path(state_dir) / STATE_NAME if state_dir is not None else None
        self.failures = 0
        self.not_before = 0.0  # no attempt is checked before this time
        self.locked_until = 0.0
        self.lockouts = 0  # lockouts since the last good login: each one lasts twice the one before
        self._load()

    def lockout_for(self, n: int) -> float:
        """How long the n-th lockout in a row lasts."""
        doublings = min(max(0, n - 1), _MAX_DOUBLINGS)
        return min(self.cfg.lockout_s * 2**doublings, max(LOCKOUT_MAX_S, self.cfg.lockout_s))

    def wait_s(self) -> float:
        """Seconds until the next attempt is accepted (0: now)."""
        now = self.clock()
        if self.locked_until:
            self.locked_until = min(self.locked_until, now + self.lockout_for(self.lockouts))
            if now >= self.locked_until:  # the lockout is over: new attempts, the next lockout longer
                self.failures, self.not_before, self.locked_until = 0, 0.0, 0.0
                self._save()
        self.not_before = min(self.not_before, now + self.cfg.delay_max_s)
        return max(0.0, self.locked_until - now, self.not_before - now)

    @property
    def locked(self) -> bool:
        return self.wait_s() > 0 and self.locked_until > 0

    def failure(self) -> float:
        """Record a wrong PIN; returns the wait before the next attempt."""
        now = self.clock()
        self.failures += 1
        if self.failures >= self.cfg.max_attempts:
            self.lockouts += 1
            self.locked_until = now + self.lockout_for(self.lockouts)
        else:
            delay = min(self.cfg.delay_base_s * 2 ** (self.failures - 1), self.cfg.delay_max_s)
            self.not_before = now + delay
        self._save()
        return self.wait_s()

    def success(self) -> None:
        self.failures, self.not_before, self.locked_until, self.lockouts = 0, 0.0, 0.0, 0
        self._save()

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
            if not isinstance(data, dict):
                raise DamagedState(f"not an object: {type(data).__name__}")
            failures = _count(data, "failures")
            lockouts = _count(data, "lockouts") if "lockouts" in data else 0  # older files: none
            not_before, locked_until = _time(data, "not_before"), _time(data, "locked_until")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, RecursionError) as exc:
            # torn by a power cut, or corrupt: starting afresh would hand out new guesses; lock for
            # the base lockout and save that, so that a restart neither lifts nor renews it
            why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
            self.failures, self.not_before, self.lockouts = self.cfg.max_attempts, 0.0, 1
            self.locked_until = self.clock() + self.lockout_for(self.lockouts)
            self.log(
                f"login state {self.path} cannot be read ({type(exc).__name__}: {why:.120}); "
                f"console locked for {self.lockout_for(self.lockouts):.0f} s"
            )
            self._save()
            return
        self.failures, self.lockouts = failures, lockouts
        self.not_before, self.locked_until = not_before, locked_until

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            "failures": self.failures,
            "not_before": self.not_before,
            "locked_until": self.locked_until,
            "lockouts": self.lockouts,
        }
        try:
            make_dirs(self.path.parent)  # 0700: the first wrong PIN may be what creates it
            write_atomic(self.path, json.dumps(data).encode("utf-8"), mode=0o600)
        except OSError as exc:
            # attempts are still limited within this process; a restart would not see them
            self.log(f"login state not saved to {self.path}: {exc.strerror or exc}")
