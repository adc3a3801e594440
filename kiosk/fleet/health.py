"""Start-up checks before READY, and a watchdog fed by the main loop's health.

The keep-alive is sent from the loop itself (``Watchdog.beat()`` once per iteration), never from a
timer thread: a hung loop or a component that stopped delivering (no camera frame for seconds)
stops the keep-alives, and systemd restarts the service after ``WatchdogSec=``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kiosk.errors import KioskError
from kiosk.fleet.sdnotify import Notifier


class StartupFailed(KioskError):
    """A required component failed its start-up check: the service must not report READY."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class StartupReport:
    results: tuple[CheckResult, ...]

    @property
    def degraded(self) -> list[str]:
        return [r.name for r in self.results if not r.ok]

    def status_line(self) -> str:
        """The STATUS= text systemctl shows: every component, degraded ones with their reason."""
        parts = [f"{r.name} ok" if r.ok else f"{r.name} degraded ({r.detail})" for r in self.results]
        head = "degraded" if self.degraded else "ready"
        return f"{head}: " + ", ".join(parts)


def run_startup_checks(
    checks: Mapping[str, Callable[[], object]], required: frozenset[str] | set[str] = frozenset()
) -> StartupReport:
    """Run each check (a callable that raises on failure); failures mark the component degraded.

    A failure of a ``required`` component (e.g. the store: without it no number can be issued)
    raises StartupFailed instead, so the process exits without READY and systemd restarts it.
    """
    results = []
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure of a device check means "degraded"
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if name in required:
                raise StartupFailed(f"start-up check {name} failed: {detail}") from None
            results.append(CheckResult(name, False, detail[:120]))
        else:
            results.append(CheckResult(name, True))
    return StartupReport(tuple(results))


def announce_ready(notifier: Notifier, report: StartupReport) -> bool:
    """READY=1 with a STATUS naming degraded components; call once, after run_startup_checks."""
    return notifier.ready(report.status_line())


@dataclass
class Watchdog:
    """Feeds WATCHDOG=1 from the main loop while every registered component is fresh.

    ``stale_after`` maps a component (``"camera"``, ``"loop"``) to how long it may stay silent;
    the loop calls ``alive(name)`` when the component delivers (a frame arrived, a UI heartbeat)
    and ``beat()`` once per iteration. ``beat`` sends at most one keep-alive per half watchdog
    period, and none while a component is stale.
    """

    notifier: Notifier
    stale_after: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    interval: float | None = None  # seconds between keep-alives; default half of WATCHDOG_USEC
    _last_seen: dict[str, float] = field(default_factory=dict, init=False)
    _last_sent: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.interval is None and self.notifier.watchdog_usec:
            self.interval = self.notifier.watchdog_usec / 1e6 / 2
        now = self.clock()
        for name in self.stale_after:
            self._last_seen[name] = now

    def alive(self, name: str) -> None:
        if name not in self.stale_after:
            raise KeyError(f"watchdog: unknown component {name!r}")
        self._last_seen[name] = self.clock()

    def stale(self) -> list[str]:
        now = self.clock()
        return [n for n, limit in self.stale_after.items() if now - self._last_seen[n] > limit]

    def beat(self) -> bool:
        """Call once per main-loop iteration; returns True when a keep-alive was sent."""
        if self.interval is None or self.stale():
            return False
        now = self.clock()
        if self._last_sent is not None and now - self._last_sent < self.interval:
            return False
        self._last_sent = now
        return self.notifier.watchdog()
