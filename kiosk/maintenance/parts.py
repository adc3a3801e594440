"""What the maintenance handlers need from each part of the service, as Protocols.

The handlers use nothing else of the store, the session, the lights, the camera, the printer or
the updater, so a test (or a service missing a part) can hand in any object with these methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kiosk.config import Config


class StorePart(Protocol):
    """kiosk.store.Store: the upload queue, counters and the audit table."""

    def outbox(self) -> list[dict[str, Any]]: ...
    def counters(self) -> Mapping[str, int]: ...
    def audit(self, actor: str, action: str, detail: str = "") -> None: ...
    def audit_log(self) -> list[dict[str, Any]]: ...


class SessionPart(Protocol):
    """kiosk.capture.session.Session: only its state (an enum with ``value``, or a name)."""

    @property
    def state(self) -> Any: ...


class LightsPart(Protocol):
    """kiosk.hw.lights.Lights: duty cycles 0..1 by LED name."""

    @property
    def levels(self) -> dict[str, float]: ...
    def set(self, levels: Mapping[str, float]) -> None: ...
    def off(self) -> None: ...


class FramePart(Protocol):
    rgb: Any  # HxWx3 uint8


class CameraPart(Protocol):
    """kiosk.hw.camera.Camera: a frame (measured, never returned) and a description."""

    def frame(self) -> FramePart: ...
    def describe(self) -> dict[str, Any]: ...


class PrinterPart(Protocol):
    """kiosk.hw.printer.Printer: its status (None: this printer cannot answer) and raw ESC/POS."""

    def status(self) -> Any: ...
    def print_bytes(self, data: bytes) -> None: ...


class UpdaterPart(Protocol):
    """kiosk.fleet.updater.Updater, as far as the console may drive it."""

    def status(self) -> Any: ...
    def apply(self, bundle_path: str) -> Any: ...
    def rollback(self) -> Any: ...


@dataclass
class MaintenanceContext:
    """What the service hands the handlers; every part but the configuration is optional (a
    missing part makes its commands answer "not available"). Callables are actions the service
    does itself (restart, power, upload retry, reprint)."""

    config: Config  # what the service started with (config.source: its files, any fallback)
    store: StorePart | None = None
    session: SessionPart | None = None
    lights: LightsPart | None = None
    camera: Callable[[], CameraPart | None] | None = None  # the current camera (it may be reopened)
    printer: PrinterPart | None = None
    reprint: Callable[[str, str], str | None] | None = None  # (number, actor) -> fault or None
    # the technician accepts that the store lost its records (kiosk.store.Store.acknowledge_loss)
    acknowledge_loss: Callable[[str], dict[str, Any]] | None = None
    updater: UpdaterPart | None = None
    retry_uploads: Callable[[int | None], Any] | None = None
    restart: Callable[[], None] | None = None  # ends the service so that systemd starts it again
    power: Callable[[str], None] | None = None  # "reboot" / "shutdown"
    log_file: Path | None = None
    journal_unit: str = "kiosk.service"
    started_at: float = field(default_factory=time.time)

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir
