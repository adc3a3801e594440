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
from kiosk.capture.session import LIVE, Session, State
from kiosk.config import Config
from kiosk.errors import KioskError

log = logging.getLogger("kiosk.service")

IDLE_POLL_S = 0.05
OUTBOX_EVERY_S = 60.0
READINESS_EVERY_S = 20.0  # how soon the idle screen learns that the platform is down (or back)
RESTART_EXIT = 75  # not 0: kiosk.service has Restart=on-failure


class FleetHooks:
    """sd_notify and the update-inhibit lock from kiosk.fleet, when that package is present."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self._inhibit: contextlib.ExitStack | None = None
        try:
            from kiosk.fleet.sdnotify import Notifier

            self.notifier: Any = Notifier(unset_environment=True)
        except ImportError:  # fleet not installed: nothing to tell
            self.notifier = None
        usec = getattr(self.notifier, "watchdog_usec", None)
        self.watchdog_every = (usec / 1e6) / 2 if usec else 5.0
        self._last_watchdog = 0.0

    def ready(self, status: str) -> None:
        if self.notifier is not None:
            self.notifier.ready(status)

    def watchdog(self) -> None:
        now = time.monotonic()
        if self.notifier is not None and now - self._last_watchdog >= self.watchdog_every:
            self.notifier.watchdog()
            self._last_watchdog = now

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


class Service:
    """Everything `kiosk run` starts; ``run`` until ``stop`` (or SIGTERM)."""

    def __init__(self, cfg: Config, sim: bool = False, port: int | None = None, realtime: bool = True):
        from kiosk.capture.live import LiveLoop
        from kiosk.capture.photo_adapter import PhotoMaker, documents, thresholds
        from kiosk.capture.rules import load_rules
        from kiosk.hw.buttons import Buttons
        from kiosk.hw.camera import open_camera
        from kiosk.hw.lights import Lights, pin_factory
        from kiosk.receipt.wiring import ReceiptService, cities_for
        from kiosk.service_api import ServiceApi, socket_path
        from kiosk.sim.scene import SimCamera
        from kiosk.ui.server import UiServer
        from kiosk.vision import FaceAnalyzer

        self.cfg, self.sim = cfg, sim
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        try:
            cfg.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KioskError(f"state directory {cfg.state_dir}: {exc.strerror or exc}") from None
        factory = pin_factory(sim)
        self.lights = Lights.from_config(cfg.hardware, factory)
        self.analyzer = FaceAnalyzer(cfg.vision)

        def camera() -> Any:
            cam = open_camera(
                cfg.hardware, sim=sim, levels=lambda: self.lights.levels, face_analyzer=self.analyzer
            )
            if isinstance(cam, SimCamera):
                cam.realtime = realtime
                session = getattr(self, "session", None)
                if session is None or session.state is State.IDLE:
                    cam.subject.leave()  # nobody there until a session starts
            return cam

        self.camera = camera()
        self.live = LiveLoop(self.analyzer, load_rules(), self.lights)
        # the receipt step: store, number authority and printer; finish what a power cut interrupted
        self.receipts = ReceiptService(cfg)
        recovered = self.receipts.recover()
        if any(recovered.values()):
            log.info("recovered after an interruption: %s", recovered)
        self.session = Session(
            cfg.session,
            self.camera,
            self.live,
            PhotoMaker(cfg.vision, None),
            self.receipts.hand_over,
            documents(cities_for),
            thresholds,
            reopen_camera=camera,
            preflight=self._preflight,
        )
        self.lights.set(self.live.lighting.idle())
        self.fleet = FleetHooks(cfg.state_dir)
        self.session.listeners.append(self.fleet.session_changed)
        self.session.listeners.append(self._sim_citizen)
        self.buttons = Buttons.from_config(
            cfg.hardware, lambda name: self.session.post(name, "button"), factory
        )
        ui_port = cfg.session.ui_port if port is None else port
        try:
            self.ui = UiServer(
                self.session.hub, self.session.post, cfg.session.ui_host, ui_port, cfg.hardware.fps
            )
        except OSError as exc:
            self._close_hardware()
            raise KioskError(
                f"UI: cannot listen on {cfg.session.ui_host}:{ui_port}: {exc.strerror or exc}"
            ) from None
        self.api = ServiceApi()
        self.api.register("status", lambda args: self.status())
        self.api_path = socket_path(cfg.state_dir)
        self.console = self._console_handlers()
        self.restart_requested = False
        self.readiness_every_s = READINESS_EVERY_S
        self._background = threading.Thread(target=self._background_loop, name="background", daemon=True)

    def _preflight(self) -> dict[str, str] | None:
        """Before a citizen starts: can a number be issued now (platform reachable)?"""
        refusal = self.receipts.ready()
        return None if refusal is None else {"zh": refusal[0], "en": refusal[1]}

    def _console_handlers(self) -> Any:
        """The maintenance console's commands, served on the service API (kiosk.console)."""
        from kiosk.console.handlers import ConsoleContext, register_console_handlers, systemctl_power
        from kiosk.fleet.manage import make_updater

        cfg = self.cfg
        config_path = os.environ.get("KIOSK_CONFIG") or (
            "/etc/kiosk/kiosk.toml" if Path("/etc/kiosk/kiosk.toml").exists() else None
        )
        try:
            updater = make_updater(cfg.fleet, cfg.state_dir)
        except (KioskError, OSError) as exc:
            log.warning("updater not available to the console: %s", exc)
            updater = None
        ctx = ConsoleContext(
            state_dir=cfg.state_dir,
            config_path=Path(config_path) if config_path else None,
            store=self.receipts.store,
            session=self.session,
            lights=self.lights,
            camera=lambda: self.session.camera,
            printer=self.receipts.printer,
            reprint=self.receipts.reprint,
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
        while not self.stop_event.wait(self.readiness_every_s):
            if self.session.state is not State.IDLE:
                continue
            try:
                if platform:
                    self.session.post("readiness", "api", message=self._preflight())
                if uploads and time.monotonic() - last_outbox >= OUTBOX_EVERY_S:
                    last_outbox = time.monotonic()
                    self.receipts.run_outbox()
                    self.receipts.print_queued()
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                log.warning(
                    "background pass: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                )

    def _sim_citizen(self, old: State, new: State) -> None:
        """With the simulated camera, a simulated citizen steps up when a session starts."""
        subject = getattr(self.session.camera, "subject", None)
        if subject is None:
            return
        if new is State.CHOOSE and old is State.IDLE:
            subject.arrive()
        elif new is State.IDLE:
            subject.leave()

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
        self.fleet.ready(f"kiosk {__version__}: UI on {self.ui.url}")
        log.info("service ready: UI %s, API %s", self.ui.url, self.api_path)
        return self

    def step(self) -> None:
        s = self.session
        s.step()
        subject = getattr(s.camera, "subject", None)
        if subject is not None:  # the simulated citizen reads the screen
            g = s.live.last if s.state in (State.GUIDANCE, State.COUNTDOWN) else None
            subject.hear(g.prompt if g is not None else None)
        self.fleet.watchdog()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.step()
            if self.session.state not in LIVE:
                self.stop_event.wait(IDLE_POLL_S)

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.fleet.stopping()
        self.ui.close()
        self.api.close()
        with contextlib.suppress(Exception):
            self.api_path.unlink()
        self._close_hardware()
        self.receipts.close()

    def _close_hardware(self) -> None:
        self.buttons.close()
        self.live.stop()
        self.lights.off()
        self.lights.close()
        self.session.camera.close()


def run_service(cfg: Config, sim: bool = False, port: int | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = Service(cfg, sim=sim, port=port)

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
        log.info("restart requested from the console: exiting %d for systemd to restart", RESTART_EXIT)
        return RESTART_EXIT
    return 0
