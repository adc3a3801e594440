"""Login attempt limiting: a growing delay after each wrong PIN, then a lockout that doubles with
each lockout since the last good login (capped at LOCKOUT_MAX_S): a few dozen guesses a day at first,
then max_attempts a day, not hundreds.

The state lives in a small file in the state dir so that restarting the console process (or
pulling the cable) does not hand an attacker a fresh set of guesses. Wall-clock time is used
because it survives the restart; a lockout longer than configured (clock stepped back) is clamped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from kiosk.config import ConsoleConfig

STATE_NAME = "console-login.json"
LOCKOUT_MAX_S = 86400.0  # the longest lockout the doubling reaches


class LoginGuard:
    def __init__(
        self, cfg: ConsoleConfig, state_dir: Path | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.path = Path(state_dir) / STATE_NAME if state_dir is not None else None
        self.failures = 0
        self.not_before = 0.0  # no attempt is checked before this time
        self.locked_until = 0.0
        self.lockouts = 0  # lockouts since the last good login: each one lasts twice the one before
        self._load()

    def lockout_for(self, n: int) -> float:
        """How long the n-th lockout in a row lasts."""
        return min(self.cfg.lockout_s * 2 ** max(0, n - 1), max(LOCKOUT_MAX_S, self.cfg.lockout_s))

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
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.failures = max(0, int(data["failures"]))
            self.not_before = float(data["not_before"])
            self.locked_until = float(data["locked_until"])
            self.lockouts = max(0, int(data.get("lockouts", 0)))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            # a damaged file must not unlock a console that was locked: assume the worst
            self.failures, self.lockouts = self.cfg.max_attempts, max(1, self.lockouts)
            self.locked_until = self.clock() + self.lockout_for(self.lockouts)

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            "failures": self.failures,
            "not_before": self.not_before,
            "locked_until": self.locked_until,
            "lockouts": self.lockouts,
        }
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only state dir still limits attempts within this process
