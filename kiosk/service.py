"""`kiosk run`: the terminal's service — hardware, the session, the local UI and the service API,
wired together and driven by one main loop.

The main loop is the session's thread: it calls ``Session.step`` as fast as the camera delivers
frames while a citizen is being guided, and a few times per second otherwise. Buttons, the UI
and the service API only post events. systemd hears READY once everything is up and WATCHDOG
from the main loop, so a stuck loop gets the service restarted; updates are held off while a
session runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.capture.session import LIVE, State
from kiosk.config import Config, remember_started
from kiosk.errors import KioskError

log = logging.getLogger("kiosk.service")

IDLE_POLL_S = 0.05
OUTBOX_EVERY_S = 60.0
READINESS_EVERY_S = 20.0  # how soon the idle screen learns that the platform is down (or back)
PREFLIGHT_FRESH_S = 5.0  # a touch on Start re-checks (off the session's thread) an older answer
RESTART_EXIT = 75  # not 0: kiosk.service has Restart=on-failure


class FleetHooks:
    """sd_notify, the watchdog and the update-inhibit lock from kiosk.fleet, when that package is present.

    The keep-alive pacing and the start-up checks are kiosk.fleet.health's (one implementation,
    tested there): the main loop calls ``watchdog`` once per turn, and READY carries a STATUS naming
    any degraded component.
    """

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self._inhibit: contextlib.ExitStack | None = None
        try:
            from kiosk.fleet.health import Watchdog
            from kiosk.fleet.sdnotify import Notifier

            self.notifier: Any = Notifier(unset_environment=True)
            # without WatchdogSec= from systemd, a keep-alive every 5 s is harmless and keeps the
            # loop's liveness visible to a supervisor that polls
            interval = None if self.notifier.watchdog_usec else 5.0
            self._watchdog: Any = Watchdog(self.notifier, interval=interval)
        except ImportError:  # fleet not installed: nothing to tell
            self.notifier = self._watchdog = None

    def ready(self, checks: dict[str, Any]) -> str:
        """Run the start-up checks (the store is required) and send READY with their STATUS line."""
        if self.notifier is None:
            return "ready"
        from kiosk.fleet.health import announce_ready, run_startup_checks

        report = run_startup_checks(checks, required={"store"})
        announce_ready(self.notifier, report)
        return report.status_line()

    def watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.beat()

    def session_changed(self, old: State, new: State) -> None:
        """Hold the update-inhibit lock from the first touch until the session is back in idle."""
        if new is not State.IDLE and self._inhibit is None:
            try:
                from kiosk.fleet.inhibit import inhibit_updates
            except ImportError:
                return
            stack = contextlib.ExitStack()
            stack.enter_context(inhibit_updates(self.state_dir))
            self._inhibit = stack
        elif new is State.IDLE and self._inhibit is not None:
            self._inhibit.close()
            self._inhibit = None

    def stopping(self) -> None:
        if self._inhibit is not None:
            self._inhibit.close()
            self._inhibit = None
        if self.notifier is not None:
            self.notifier.stopping()


class _LazyUpdater:
    """kiosk.fleet's updater for the console, made at its first `update` command: importing it brings
    TUF, securesystemslib and cryptography (~12 MB) that the service otherwise never needs."""

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._updater: Any = None

    def _get(self) -> Any:
        if self._updater is None:
            from kiosk.fleet.manage import make_updater

            try:
                self._updater = make_updater(self._cfg.fleet, self._cfg.state_dir)
            except OSError as exc:
                raise KioskError(f"the updater is not available: {exc.strerror or exc}") from None
        return self._updater

    def __getattr__(self, name: str) -> Any:  # status, apply, rollback, locked, recover ...
        return getattr(self._get(), name)


class Service:
    """Everything `kiosk run` starts; ``run`` until ``stop`` (or SIGTERM)."""

    def __init__(
        self,
        cfg: Config,
        sim: bool = False,
        port: int | None = None,
        realtime: bool = True,
        wall_clock: Any = None,  # kiosk.clock.WallClock: numbers wait for it (tests set it back)
        memory_restart: bool = False,
    ):
        from kiosk.service_api import ServiceApi, socket_path
        from kiosk.station import build_station
        from kiosk.ui.server import UiServer

        self.cfg, self.sim = cfg, sim
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        try:
            cfg.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KioskError(f"state directory {cfg.state_dir}: {exc.strerror or exc}") from None
        self.station = build_station(
            cfg, sim, realtime=realtime, preflight=self._preflight, wall_clock=wall_clock
        )
        st = self.station
        self.lights, self.analyzer, self.live = st.lights, st.analyzer, st.live
        self.receipts, self.session, self.buttons = st.receipts, st.session, st.buttons
        self.fleet = FleetHooks(cfg.state_dir)
        self.session.listeners.append(self.fleet.session_changed)
        ui_port = cfg.session.ui_port if port is None else port
        try:
            self.ui = UiServer(
                self.session.hub, self.session.post, cfg.session.ui_host, ui_port, cfg.hardware.fps
            )
        except (OSError, ValueError) as exc:  # ValueError: not a loopback host
            self.station.close()
            self.receipts.close()
            raise KioskError(
                f"UI: cannot listen on {cfg.session.ui_host}:{ui_port}: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
        self.api = ServiceApi()
        self.api.register("status", lambda args: self.status())
        self.api_path = socket_path(cfg.state_dir)
        self.console = self._console_handlers()
        self.restart_requested = False
        self.readiness_every_s = READINESS_EVERY_S
        self._background = threading.Thread(target=self._background_loop, name="background", daemon=True)
        # The memory guard restarts the whole process: only the process that is the service
        # (`kiosk run`) lets it; a Service embedded elsewhere (tests) only reports its memory.
        self.memory_restart = memory_restart
        self.memory = self._memory_guard()
        self.monitor_error: str | None = None
        self.monitor = self._monitor()  # kiosk.monitor: MQTT state for the fleet ([monitor] broker)
        self.restart_reason = "restart requested from the console"

    def _memory_guard(self) -> Any:
        """kiosk.memory's guard: RSS in `status`, a restart at idle above the configured ceiling."""
        from kiosk.memory import MemoryGuard

        device = self.receipts.printer.device
        probes = {"history": lambda: len(self.session.history)}
        if hasattr(device, "held_bytes"):  # the virtual printer: what it keeps of past slips
            probes["printer_held_mb"] = lambda: round(device.held_bytes() / 2**20, 3)
        return MemoryGuard.from_env(self.cfg.service.memory_ceiling_mb, probes=probes)

    def _monitor(self) -> Any:
        """Fleet monitoring (kiosk.monitor), handed a snapshot of counts and device states, never the
        store or the session; its publishing runs on its own threads. None when not configured."""
        if not self.cfg.monitor.broker:
            return None
        from kiosk.monitor import Monitor, MonitorError

        self._printer_seen: dict[str, Any] = {"paper": "unknown", "fault": None}
        self._platform_seen: tuple[float, bool | None] = (float("-inf"), None)
        try:
            mon = Monitor(
                self.cfg.monitor,
                self.cfg.receipt.station,
                self._monitor_snapshot,
                version=__version__,
                state_dir=self.cfg.state_dir,
                timezone=self.cfg.receipt.timezone,
            )
        except MonitorError as exc:  # monitoring is not worth a terminal that does not start
            self.monitor_error = str(exc)
            log.warning("monitoring off: %s", exc)
            return None
        self.session.listeners.append(mon.session_changed)
        return mon

    def _monitor_snapshot(self) -> dict[str, Any]:
        """What the monitor publishes, read on its thread: counts and device states, no personal data.
        The printer is asked only at idle and when no slip is being printed (else its last answer
        stands): a printer that does not answer holds the receipts' lock for its reply timeouts, and
        that must never be a citizen's hand-over waiting."""
        from kiosk.station import monitor_counts

        snap: dict[str, Any] = {
            "session": self.session.state.value,
            "camera_ok": not self.session.camera_failed,
        }
        try:
            snap["lights_ok"] = len(self.lights.levels) > 0  # the LED driver answers (no feedback wire)
        except Exception:  # noqa: BLE001 - a driver failure is what this reports
            snap["lights_ok"] = False
        if self.session.state is State.IDLE and self.receipts.lock.acquire(blocking=False):
            try:
                st = self.receipts.printer.status()
                self._printer_seen = {
                    "paper": "unknown" if st is None else
                    "out" if st.paper_out else "low" if st.paper_near_end else "ok",
                    "fault": None if st is None else st.fault,
                }
            except KioskError as exc:
                self._printer_seen = {"paper": "unknown", "fault": getattr(exc, "code", "error")}
            finally:
                self.receipts.lock.release()
        snap["printer"] = self._printer_seen
        try:
            snap.update(monitor_counts(self.receipts.store, self.cfg.receipt.timezone))
            snap["store"] = "ok" if self.receipts.numbers_state() == "issuing" else "refused"
        except KioskError:
            snap["store"] = "error"
        if self.cfg.receipt.authority == "platform":
            at, ok = self._platform_seen
            if time.monotonic() - at >= READINESS_EVERY_S:
                ok = self._preflight() is None
                self._platform_seen = (time.monotonic(), ok)
            snap["platform_reachable"] = ok
        try:
            from kiosk.fleet.manage import make_updater

            up = make_updater(self.cfg.fleet, self.cfg.state_dir).status()
            last = up.get("last") or {}
            snap["release"] = up.get("current")
            snap["update"] = {"phase": up.get("phase"), "pending": up.get("pending"),
                              "last": last.get("status"), "last_at": last.get("at")}
        except (KioskError, OSError):
            snap["update"] = {"phase": "unknown"}
        return snap

    def _check_memory(self) -> None:
        """Between two turns at idle (no citizen can be cut short): over the ceiling, leave the main
        loop with the restart status so that systemd starts a fresh service; audited."""
        exceeded = self.memory.idle(self.session.sessions)
        if exceeded is None or not self.memory_restart:
            return
        self.restart_reason = f"memory above the ceiling at idle ({exceeded.detail()})"
        try:
            self.receipts.store.audit("service", "memory-restart", exceeded.detail())
        except Exception as exc:  # noqa: BLE001 - the restart matters more than its audit row
            log.warning("memory-restart not audited: %s", exc)
        self.request_restart()

    # what the last readiness check found: (monotonic time, refusal or None); see _preflight
    _readiness: tuple[float, dict[str, str] | None] = (float("-inf"), None)
    _refreshing = False

    def _check_readiness(self) -> dict[str, str] | None:
        """Can a number be issued now (store, clock, platform reachable)? May talk to the platform:
        called from the background loop and worker threads, never the session's."""
        refusal = self.receipts.ready()
        result = None if refusal is None else {"zh": refusal[0], "en": refusal[1]}
        self._readiness = (time.monotonic(), result)
        return result

    def _preflight(self) -> dict[str, str] | None:
        """Asked on the session's thread before a citizen starts. With the platform authority this is
        the last check's answer (a slow platform froze the session 51 s, past the watchdog); a stale
        one is re-checked on a worker thread and the idle screen told. Local checks run here."""
        if self.cfg.receipt.authority != "platform":
            return self._check_readiness()
        at, result = self._readiness
        if time.monotonic() - at > PREFLIGHT_FRESH_S and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh_readiness, name="readiness", daemon=True).start()
        return result

    def _refresh_readiness(self) -> None:
        try:
            message = self._check_readiness()
            self.session.post("readiness", "api", message=message)
        except Exception as exc:  # noqa: BLE001 - the background loop tries again
            log.warning("readiness: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        finally:
            self._refreshing = False

    def _console_handlers(self) -> Any:
        """The maintenance console's commands, served on the service API (kiosk.maintenance)."""
        from kiosk.maintenance import MaintenanceContext, register_console_handlers, systemctl_power

        cfg = self.cfg
        updater = _LazyUpdater(cfg)
        ctx = MaintenanceContext(
            config=cfg,
            store=self.receipts.store,
            session=self.session,
            lights=self.lights,
            camera=lambda: self.session.camera,
            printer=self.receipts.printer,
            reprint=self.receipts.reprint,
            acknowledge_loss=self.receipts.acknowledge_loss,
            updater=updater,
            retry_uploads=lambda _id=None: self.receipts.run_outbox(),
            restart=self.request_restart,
            power=systemctl_power,
        )
        return register_console_handlers(self.api, ctx)

    def request_restart(self) -> None:
        """Leave the main loop with a failure status, so that systemd (Restart=on-failure) restarts us."""
        self.restart_requested = True
        self.stop()

    def _background_loop(self) -> None:
        """While nobody is being served: tell the idle screen whether numbers can be issued (so a
        citizen learns it before starting), and run the upload outbox and queued prints."""
        rc = self.cfg.receipt
        platform = rc.authority == "platform"
        uploads = platform or rc.upload
        last_outbox = time.monotonic()
        wait = 0.0  # the first pass at once: a clock not yet synchronised is shown from the start
        while not self.stop_event.wait(wait):
            wait = self.readiness_every_s
            if self.session.state is not State.IDLE:
                continue
            try:
                # every authority: the clock (kiosk.clock) gates local numbers too
                self.session.post("readiness", "api", message=self._check_readiness())
                if uploads and time.monotonic() - last_outbox >= OUTBOX_EVERY_S:
                    last_outbox = time.monotonic()
                    self.receipts.run_outbox()
                    self.receipts.print_queued()
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                log.warning(
                    "background pass: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                )

    def status(self) -> dict[str, Any]:
        """The service API's `status`: no personal data."""
        cam = self.session.camera
        return {
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "pid": os.getpid(),
            "session": self.session.status(),
            "camera": cam.describe() if cam is not None else None,
            "camera_failed": self.session.camera_failed,
            "lights": {k: round(v, 3) for k, v in self.lights.levels.items()},
            "ui": self.ui.url,
            "simulated": self.sim,
            "memory": self.memory.status(),
            "numbers": self.receipts.numbers_state(),  # REFUSED after a lost database (kiosk.store)
            "monitor": self.monitor.status() if self.monitor is not None else self.monitor_error,
        }

    def start(self) -> Service:
        self.ui.start()
        try:
            self.api.serve(self.api_path)
        except OSError as exc:
            self.ui.close()
            self._close_hardware()
            raise KioskError(
                f"service API: cannot listen on {self.api_path}: {exc.strerror or exc}"
            ) from None
        self._background.start()
        if self.monitor is not None:
            self.monitor.start()
        status = self.fleet.ready(self._startup_checks())
        remember_started(self.cfg)  # the technician's file that started: the fallback from now on
        log.info("service %s: UI %s, API %s", status, self.ui.url, self.api_path)
        return self

    def _startup_checks(self) -> dict[str, Any]:
        """What READY vouches for: the store answers (required), the camera and printer respond."""

        def printer() -> None:
            st = self.receipts.printer.status()
            if st is not None and st.fault:
                raise KioskError(st.fault)

        return {
            "store": lambda: self.receipts.store.counters(),
            "camera": lambda: self.session.camera.describe(),
            "printer": printer,
        }

    def step(self) -> None:
        self.station.step()  # the session's turn, and the simulated citizen's when there is one
        self.fleet.watchdog()
        if self.session.state is State.IDLE:
            self._check_memory()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.step()
            if self.session.state not in LIVE:
                self.stop_event.wait(IDLE_POLL_S)

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()  # "offline", retained; bounded wait
        self.fleet.stopping()
        self.ui.close()
        self.api.close()
        with contextlib.suppress(Exception):
            self.api_path.unlink()
        self._close_hardware()
        self.receipts.close()

    def _close_hardware(self) -> None:
        self.station.close()


def run_service(cfg: Config, sim: bool = False, port: int | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = Service(cfg, sim=sim, port=port, memory_restart=True)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    print(
        f"kiosk: UI on {service.ui.url} (camera: {service.session.camera.describe()['backend']})", flush=True
    )
    try:
        service.run()
    finally:
        service.close()
    if service.restart_requested:
        log.info("%s: exiting %d for systemd to restart", service.restart_reason, RESTART_EXIT)
        return RESTART_EXIT
    return 0
