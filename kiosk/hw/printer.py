"""Thermal printers: python-escpos transports (USB, serial, network, file) and the virtual printer.

Status is read with DLE EOT where the printer answers; a fault before or during a job raises
PrinterFault with a short code (paper_out, cover_open, offline, unplugged, no_reply, garbage_reply)
that the receipt code turns into a message for the citizen and the technician.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kiosk.errors import KioskError

DLE_EOT = b"\x10\x04"
FAULTS = ("paper_out", "cover_open", "offline", "unplugged", "no_reply", "garbage_reply", "error")


class PrinterFault(KioskError):
    """The printer cannot print now; `code` is one of FAULTS."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"printer fault: {code}" + (f" ({detail})" if detail else ""))
        self.code = code


class Device(Protocol):
    def write(self, data: bytes) -> None: ...
    def read(self) -> bytes: ...


@dataclass(frozen=True)
class PrinterStatus:
    online: bool
    cover_open: bool
    paper_out: bool
    paper_near_end: bool
    error: bool

    @property
    def fault(self) -> str | None:
        if self.paper_out:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.error:
            return "error"
        if not self.online:
            return "offline"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "cover_open": self.cover_open,
            "paper_out": self.paper_out,
            "paper_near_end": self.paper_near_end,
            "error": self.error,
            "fault": self.fault,
        }


def _valid(b: int) -> bool:
    # every DLE EOT reply has bits 1 and 4 set and bits 0 and 7 clear
    return b & 0x93 == 0x12


def parse_status(printer: int, offline: int, paper: int) -> PrinterStatus:
    """Decode the replies to DLE EOT 1, 2 and 4; a reply that breaks the fixed bits is garbage."""
    for name, b in (("printer", printer), ("offline cause", offline), ("paper", paper)):
        if not _valid(b):
            raise PrinterFault("garbage_reply", f"{name} status 0x{b:02x}")
    return PrinterStatus(
        online=not printer & 0x08,
        cover_open=bool(offline & 0x04),
        paper_out=bool(offline & 0x20 or paper & 0x60),
        paper_near_end=bool(paper & 0x0C),
        error=bool(offline & 0x40),
    )


class EscposDevice:
    """Adapts a python-escpos printer object (Usb, Serial, Network, File) to write/read."""

    def __init__(self, printer: Any) -> None:
        self.printer = printer

    def write(self, data: bytes) -> None:
        self.printer._raw(data)

    def read(self) -> bytes:
        try:
            return bytes(self.printer._read() or b"")
        except NotImplementedError:
            return b""


class Printer:
    """Sends slips in chunks and checks the printer's status before, during and after a job."""

    def __init__(
        self,
        device: Device,
        *,
        answers_status: bool,
        chunk: int = 512,
        reply_timeout: float = 0.5,
        name: str = "printer",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.device = device
        self.answers_status = answers_status
        self.chunk = chunk
        self.reply_timeout = reply_timeout
        self.name = name
        self._sleep = sleep

    def _query(self, n: int) -> int:
        try:
            self.device.write(DLE_EOT + bytes([n]))
        except OSError as exc:
            raise PrinterFault("unplugged", str(exc)) from None
        deadline = time.monotonic() + self.reply_timeout
        while True:
            try:
                reply = self.device.read()
            except OSError as exc:
                raise PrinterFault("unplugged", str(exc)) from None
            if reply:
                if len(reply) != 1:
                    raise PrinterFault("garbage_reply", f"{len(reply)} bytes to DLE EOT {n}")
                return reply[0]
            if time.monotonic() >= deadline:
                raise PrinterFault("no_reply", f"DLE EOT {n}")
            self._sleep(0.01)

    def status(self) -> PrinterStatus | None:
        """The printer's status, or None for a printer that cannot answer (a file or a plain lp device)."""
        if not self.answers_status:
            return None
        return parse_status(self._query(1), self._query(2), self._query(4))

    def _check(self) -> None:
        st = self.status()
        if st is not None and st.fault:
            raise PrinterFault(st.fault)

    def print_bytes(self, data: bytes) -> None:
        """Print one job; raises PrinterFault if the printer is not ready or fails part-way."""
        self._check()
        for i in range(0, len(data), self.chunk):
            try:
                self.device.write(data[i : i + self.chunk])
            except OSError as exc:
                raise PrinterFault("unplugged", str(exc)) from None
            self._check()


def open_printer(kind: str, target: str = "", paper_mm: int = 58) -> Printer:
    """A real printer from configuration: file PATH, usb VID:PID, serial DEV[:BAUD], network
    HOST[:PORT] (``virtual`` is kiosk.sim's, opened by kiosk.station.open_printer).
    """
    if kind == "virtual":  # the simulator's; drivers do not know it
        raise KioskError("printer kind virtual is simulated: open it with kiosk.station.open_printer")
    try:
        if kind == "file":
            from escpos.printer import File

            if not target:
                raise KioskError("printer kind file needs a path")
            return Printer(EscposDevice(File(devfile=str(Path(target)))), answers_status=False, name=target)
        if kind == "usb":
            from escpos.printer import Usb

            vid, _, pid = target.partition(":")
            p = Usb(int(vid, 16), int(pid, 16))
            return Printer(EscposDevice(p), answers_status=True, name=f"usb {target}")
        if kind == "serial":
            from escpos.printer import Serial

            dev, _, baud = target.partition(":")
            p = Serial(devfile=dev, baudrate=int(baud or 9600), timeout=0.5)
            return Printer(EscposDevice(p), answers_status=True, name=dev)
        if kind == "network":
            from escpos.printer import Network

            host, _, port = target.partition(":")
            p = Network(host, port=int(port or 9100), timeout=5)
            return Printer(EscposDevice(p), answers_status=True, name=target)
    except (ValueError, ImportError) as exc:
        raise KioskError(f"printer {kind} {target!r}: {exc}") from None
    raise KioskError(f"unknown printer kind {kind!r}; known: virtual, file, usb, serial, network")
