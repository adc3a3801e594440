"""Builds the store and authority from the configuration, and the one object the session, the
console and the demo hold: ReceiptService (hand-over, readiness, recovery, reprint, uploads). The
printer is given to it: kiosk.station chooses it (printer_from_config), virtual or real.
"""

from __future__ import annotations

import threading
from typing import Any

from kiosk.clock import SystemClock, WallClock
from kiosk.errors import KioskError
from kiosk.hw.printer import Printer
from kiosk.receipt.authority import Authority, LocalAuthority, PlatformAuthority
from kiosk.receipt.issue import issue_receipt, print_queued, readiness, recover, reprint
from kiosk.receipt.layouts import Layouts, load_layouts, use_layouts
from kiosk.store import Store


def use_config(cfg: Any) -> Layouts:
    """The province (receipt.layouts_file) and home city (receipt.home_city) of this configuration,
    made the process's layouts; every builder below calls it, so whatever issues, renders or lists
    a receipt sees the configured province."""
    rc = cfg.receipt
    return use_layouts(getattr(rc, "layouts_file", "") or None, getattr(rc, "home_city", ""))


def open_store(cfg: Any) -> Store:
    use_config(cfg)
    return Store(cfg.state_dir)


def platform_client(cfg: Any, clock: WallClock | None = None) -> Any:
    """The platform over TLS: its CA bundle, and this terminal's certificate (receipt.platform_*)."""
    from kiosk.receipt.platform import PlatformClient

    rc = cfg.receipt
    return PlatformClient(
        rc.platform_url,
        ca=rc.platform_ca,
        cert=rc.platform_cert,
        key=rc.platform_key,
        timeout=rc.platform_timeout_s,
        retries=rc.platform_retries,
        now=(clock or SystemClock()).now,
    )


def authority_from_config(cfg: Any, clock: WallClock | None = None) -> Authority:
    """``clock``: the wall clock numbers are dated by (kiosk.station chooses it; default: trusted)."""
    use_config(cfg)
    rc = cfg.receipt
    if rc.authority == "platform":
        return PlatformAuthority(platform_client(cfg, clock), rc.station, rc.timezone, clock=clock)
    return LocalAuthority(rc.station, rc.timezone, upload=rc.upload, clock=clock)


def cities_for(profile_id: str) -> list[dict[str, Any]]:
    """The cities the choose screen offers for a document (the layouts in use), the home city first;
    each with its group's names (the picker's sections) when the province file has groups."""
    lay = load_layouts()
    groups = lay.groups or {}
    return [
        {"id": c.id, "zh": c.name_zh, "en": c.name_en, **({"group": groups[c.group]} if c.group else {})}
        for c in lay.cities_for(profile_id)
    ]


def cities_for_config(cfg: Any) -> Any:
    """`cities_for` after choosing the configuration's province (for callers that build no service)."""
    use_config(cfg)
    return cities_for


RETURNING_DEADLINE_S = 8.0  # a returning citizen waits at most this long for the platform (all tries)


class ReceiptService:
    """Store, authority and printer for the life of the service; calls are serialised by one lock."""

    def __init__(
        self,
        cfg: Any,
        store: Store | None = None,
        authority: Authority | None = None,
        *,
        printer: Printer,  # kiosk.station chooses it (the virtual printer is the simulator's)
        clock: WallClock | None = None,  # kiosk.station chooses it too (synchronised on a terminal)
    ) -> None:
        self.cfg = cfg
        self.layouts = use_config(cfg)
        self.paper_mm = cfg.receipt.paper_mm
        self.store = store or open_store(cfg)
        self.authority = authority or authority_from_config(cfg, clock)
        self.printer = printer
        self.lock = threading.Lock()

    def ready(self) -> tuple[str, str] | None:
        """None when a number can be issued now, else the (zh, en) message to show before the start."""
        return readiness(self.authority, self.store)

    def numbers_state(self) -> str:
        """`status`: "issuing", or why numbers are refused (a lost or replaced database)."""
        try:
            self.store.check_not_lost()
        except KioskError as exc:
            return f"REFUSED: {exc}"
        problem = getattr(self.authority, "problem", None)  # the clock, the platform, TLS (last check)
        return f"REFUSED: {problem}" if problem else "issuing"

    def acknowledge_loss(self, actor: str = "technician") -> dict[str, Any]:
        """The technician's acknowledgement that the store lost its records (audited); issuing resumes."""
        with self.lock:
            return self.store.acknowledge_loss(actor)

    def recover(self) -> dict[str, Any]:
        """Call once at start-up, before the first session."""
        with self.lock:
            return recover(self.store, self.authority, self.printer, self.paper_mm)

    def hand_over(self, jpeg: bytes, profile: str, city: str) -> dict[str, Any]:
        """The session's hand-over (Session(hand_over=...)): number committed, then the slip printed."""
        with self.lock:
            r = issue_receipt(
                self.store, self.authority, self.printer, profile, city, jpeg, paper_mm=self.paper_mm
            )
        return r.to_json()

    def reprint(self, number: str, actor: str = "technician") -> str | None:
        with self.lock:
            return reprint(
                self.store, self.printer, number, self.authority.tz, actor=actor, paper_mm=self.paper_mm
            )

    def print_queued(self) -> dict[int, str | None]:
        with self.lock:
            return print_queued(self.store, self.printer, self.authority.tz, self.paper_mm)

    def run_outbox(self) -> dict[str, int]:
        from kiosk.receipt.outbox import run_outbox

        if self.cfg.receipt.authority != "platform" and not self.cfg.receipt.upload:
            raise KioskError("uploads are off (receipt.upload = false with the local authority)")
        with self.lock:
            clock = getattr(self.authority, "clock", None)
            return run_outbox(self.store, platform_client(self.cfg, clock), clock=clock)

    # --- the returning citizen (kiosk.receipt.returning) ---------------------------------------

    def _returning_client(self) -> Any:
        """The platform, when this terminal reaches one (platform authority or uploads), with one
        overall deadline a citizen waits at most (RETURNING_DEADLINE_S); else None."""
        rc = self.cfg.receipt
        if rc.authority != "platform" and not rc.upload:
            return None
        client = platform_client(self.cfg, getattr(self.authority, "clock", None))
        client.deadline = min(getattr(client, "deadline", RETURNING_DEADLINE_S), RETURNING_DEADLINE_S)
        return client

    def lookup(self, number: str) -> dict[str, Any]:
        """A scanned number's review for the screen; ReturningRefused says why not (zh/en by code)."""
        from kiosk.receipt.returning import lookup

        client = self._returning_client()
        with self.lock:
            return lookup(number, client, self.store, self.cfg.receipt.max_retakes)

    def retake(self, jpeg: bytes, profile: str, city: str, number: str, attempt: int) -> dict[str, Any]:
        """The free retake's hand-over: the new photo replaces the rejected one; a 重拍 slip prints."""
        from kiosk.receipt.returning import retake

        client = self._returning_client()
        with self.lock:
            return retake(
                number=number, attempt=attempt, jpeg=jpeg, profile=profile, city=city, client=client,
                store=self.store, printer=self.printer, station=self.authority.station,
                now=self.authority.now(), tz=self.authority.tz, paper_mm=self.paper_mm,
                max_retakes=self.cfg.receipt.max_retakes,
            )

    def close(self) -> None:
        self.store.close()
