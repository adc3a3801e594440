"""The one wiring of the capture station, for `kiosk run` (kiosk.service) and `kiosk demo`
(kiosk.demo): lights, buttons, face analyser, camera, live loop, receipts, photo maker, session.

This is the only place that chooses real or simulated parts: with ``sim`` (or a configuration that
asks for them) the camera, the citizen in front of it and the printer come from kiosk.sim, and
nothing below this module knows. The CLI's simulator tools (ESC/POS rendering, the reference
platform) are re-exported from here, so kiosk.sim has exactly one importer outside itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.capture.live import LiveLoop
from kiosk.capture.photo_adapter import PhotoMaker, documents, thresholds
from kiosk.capture.rules import load_rules
from kiosk.capture.session import Session
from kiosk.clock import SynchronisedClock, SystemClock, WallClock
from kiosk.config import Config, HardwareConfig
from kiosk.hw.buttons import Buttons
from kiosk.hw.camera import Camera
from kiosk.hw.cameras import open_camera
from kiosk.hw.lights import Lights, pin_factory
from kiosk.hw.printer import Printer
from kiosk.hw.printer import open_printer as open_real_printer
from kiosk.photo.service import PhotoTools
from kiosk.receipt.wiring import ReceiptService, cities_for
from kiosk.sim.citizen import SimCitizen, SimClock
from kiosk.vision import FaceAnalyzer
from kiosk.voice import Voice, build_voice
from kiosk.voice.player import Player as SoundPlayer

log = logging.getLogger("kiosk.station")

HandOver = Callable[[bytes, str, str], dict[str, Any]]

__all__ = ["SimClock", "Station", "build_station", "open_printer", "printer_from_config"]


@dataclass
class Station:
    """The parts of one capture station; ``step`` is one turn of the main loop."""

    cfg: Config
    sim: bool
    clock: Callable[[], float]
    lights: Lights
    buttons: Buttons
    analyzer: FaceAnalyzer
    live: LiveLoop
    receipts: ReceiptService
    session: Session
    citizen: SimCitizen | None  # the simulated citizen, when the camera is simulated
    voice: Voice | None = None  # spoken prompts: hears the transitions, reads the published state each turn

    @property
    def camera(self) -> Camera:
        return self.session.camera  # the session may have reopened it after a failure

    @property
    def face_name(self) -> str:
        """The face the simulated camera shows (its file name), or the camera backend's name."""
        info = self.camera.describe()
        return str(info.get("source") or info.get("backend"))

    def step(self) -> None:
        self.session.step()
        if self.voice is not None:
            self.voice.observe(self.session.hub.state)  # decides only; rendering and sound are its threads'
        if self.citizen is not None:
            self.citizen.after_step()

    def close(self) -> None:
        """Devices off and released; the receipts (store, printer) are closed by ``close_receipts``."""
        self.buttons.close()
        if self.voice is not None:
            self.voice.close()
        self.live.stop()
        self.lights.off()
        self.lights.close()
        self.session.camera.close()

    def close_receipts(self) -> None:
        self.receipts.close()


def simulated_camera(
    cfg: HardwareConfig,
    levels: Callable[[], dict[str, float]] | None = None,
    analyzer: object | None = None,
    realtime: bool = True,
    seed: int | None = None,
) -> Camera:
    """The simulated camera: the configured face (or the bundled sample) under the mock LEDs."""
    from kiosk.sim.scene import SimCamera, SimSubject

    subject = SimSubject(seed=seed) if seed is not None else None
    return SimCamera.from_config(cfg, levels=levels, analyzer=analyzer, realtime=realtime, subject=subject)


def open_printer(kind: str, target: str = "", paper_mm: int = 58) -> Printer:
    """A printer by kind: ``virtual`` is the simulator's ESC/POS interpreter, the others are real."""
    if kind == "virtual":
        from kiosk.sim.printer import open_virtual

        return open_virtual(paper_mm)
    return open_real_printer(kind, target, paper_mm)


def printer_from_config(cfg: Config) -> Printer:
    rc = cfg.receipt
    return open_printer(rc.printer, rc.printer_target, rc.paper_mm)


def build_station(
    cfg: Config,
    sim: bool,
    clock: Callable[[], float] = time.monotonic,
    *,
    realtime: bool = True,
    printer: Printer | None = None,
    hand_over: Callable[[HandOver], HandOver] | None = None,
    preflight: Callable[[], dict[str, str] | None] | None = None,
    seed: int | None = None,
    wall_clock: WallClock | None = None,
    voice: bool = True,
    sound: SoundPlayer | None = None,
) -> Station:
    """Build every part of the station from the configuration.

    ``sim`` selects the simulated camera and citizen and mock GPIO; the camera is also simulated when
    ``[hardware] camera = "auto"`` finds no device. ``printer`` overrides the configured one (the
    demo prints on the virtual printer); ``hand_over`` wraps the receipt step's hand-over (the demo
    keeps a copy of the photo). ``preflight`` is asked before a citizen starts (platform readiness).
    ``wall_clock`` dates the numbers: by default a real station waits for NTP (kiosk.clock), a
    simulated one trusts the development machine's clock; ``clock`` (monotonic) times the session.
    Receipts recover what a power cut interrupted before the session starts. ``voice`` (with
    ``[voice] enabled``) speaks the prompts, through ``sound`` or else aplay (nothing in simulation).
    """
    factory = pin_factory(sim)
    lights = Lights.from_config(cfg.hardware, factory)
    analyzer = FaceAnalyzer(cfg.vision)
    citizen: SimCitizen | None = None

    def simulated() -> Camera:
        return simulated_camera(
            cfg.hardware, levels=lambda: lights.levels, analyzer=analyzer, realtime=realtime, seed=seed
        )

    def camera() -> Camera:
        cam = open_camera(cfg.hardware, sim=sim, simulated=simulated)
        if getattr(cam, "subject", None) is not None and citizen is not None:
            citizen.camera_opened(cam)
        return cam

    try:
        first = camera()
    except BaseException:
        lights.close()
        raise
    live = LiveLoop(analyzer, load_rules(), lights)
    try:
        if wall_clock is None:
            wall_clock = SystemClock() if sim else SynchronisedClock()
        receipts = ReceiptService(cfg, printer=printer or printer_from_config(cfg), clock=wall_clock)
    except BaseException:
        first.close()
        lights.close()
        raise
    recovered = receipts.recover()
    if any(recovered.values()):
        log.info("recovered after an interruption: %s", recovered)
    session = Session(
        cfg.session,
        first,
        live,
        # the photo is made on the main loop's thread, between live frames: one set of face models
        PhotoMaker(tools=PhotoTools(cfg.vision, analyzer=analyzer)),
        hand_over(receipts.hand_over) if hand_over is not None else receipts.hand_over,
        documents(cities_for),
        thresholds,
        clock=clock,
        reopen_camera=camera,
        preflight=preflight,
        returning=receipts,  # the returning citizen's lookup and free retake
    )
    if getattr(first, "subject", None) is not None:
        citizen = SimCitizen(session)
        citizen.camera_opened(first)  # nobody there until a session starts
        session.listeners.append(citizen.on_transition)
    lights.set(live.lighting.idle())
    buttons = Buttons.from_config(cfg.hardware, lambda name: session.post(name, "button"), factory)
    spoken = build_voice(cfg.voice, cfg.state_dir, sim, clock, player=sound) if voice else None
    if spoken is not None:
        hub = session.hub
        session.listeners.append(lambda old, new: spoken.on_transition(old.value, new.value, hub.state))
    return Station(cfg, sim, clock, lights, buttons, analyzer, live, receipts, session, citizen, spoken)


def monitor_counts(store: Any, timezone: str, now: float | None = None) -> dict[str, Any]:
    """What fleet monitoring (kiosk.monitor) is told of the records: counts only -- numbers issued
    today, session outcomes today, queued prints, the upload backlog and its oldest age -- never a
    number, a choice or a photo (the monitor never sees the store itself)."""
    import datetime
    import zoneinfo

    now = time.time() if now is None else now
    tz = zoneinfo.ZoneInfo(timezone)
    midnight = datetime.datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    since = midnight.timestamp()
    db = store.db
    issued = db.execute("SELECT COUNT(*) FROM numbers WHERE issued_at >= ?", (since,)).fetchone()[0]
    outcomes = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT outcome, COUNT(*) FROM sessions WHERE started_at >= ? AND outcome IS NOT NULL "
            "GROUP BY outcome",
            (since,),
        )
    }
    queued = db.execute("SELECT COUNT(*) FROM print_jobs WHERE state IN ('queued', 'printing')").fetchone()[0]
    backlog, oldest = db.execute(
        "SELECT COUNT(*), MIN(n.issued_at) FROM outbox o JOIN numbers n ON n.session_id = o.session_id "
        "WHERE o.state IN ('pending', 'sent')"
    ).fetchone()
    return {
        "numbers_today": issued,
        "sessions_today": outcomes,
        "queued_prints": queued,
        "outbox": {"backlog": backlog, "oldest_s": None if oldest is None else max(0.0, now - oldest)},
    }


# --- the simulator's tools the command line offers (so that kiosk.sim has one importer) ---------


def render_escpos(data: bytes, paper_mm: int = 58) -> list[Any]:
    """The virtual printer's rendering of an ESC/POS stream (one PIL image per slip)."""
    from kiosk.sim.printer import render

    return render(data, paper_mm=paper_mm)


def serve_platform(
    host: str, port: int, data: Path, tls: tuple[Path, Path, Path] | None = None, **faults: Any
) -> None:
    """The reference document platform (kiosk.sim.platform) until interrupted; ``tls`` = (its
    certificate, its key, the CA of the terminals it accepts): HTTPS with mutual TLS."""
    from kiosk.sim.platform import Faults, ServerTls, serve

    serve(host, port, data, Faults(**faults), ServerTls(*tls) if tls is not None else None)


def virtual_slip_png(printer: Printer) -> bytes | None:
    """The PNG of what the virtual printer printed; None for a real printer or nothing printed."""
    from kiosk.sim.printer import VirtualPrinter

    device = printer.device
    if isinstance(device, VirtualPrinter) and device.slips():
        return device.png()
    return None
