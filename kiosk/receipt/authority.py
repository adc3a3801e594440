"""Who gives out image numbers: the terminal itself (local, the default) or the provincial platform.

Both commit the number, its photo record and the queued slip in one transaction before anything is
printed, so a power cut never loses an issued number and never issues one twice. Neither issues
while its wall clock is not known to be right (kiosk.clock): a number carries its date.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from kiosk.clock import SystemClock, WallClock, trusted_now
from kiosk.errors import KioskError
from kiosk.receipt.layouts import City
from kiosk.receipt.numbers import NumberError, format_for, parse
from kiosk.store import Store


@dataclass(frozen=True)
class IssueRequest:
    session_id: str
    profile_id: str
    city: City
    photo: Path
    photo_bytes: bytes

    @property
    def photo_sha256(self) -> str:
        return hashlib.sha256(self.photo_bytes).hexdigest()


class Authority(Protocol):
    name: str
    station: str
    tz: ZoneInfo
    clock: WallClock  # the date on numbers; nothing is issued until it is synchronised
    problem: str | None  # why the last ``ready`` refused (one line for the console), None when ready
    problem_code: str | None  # the same as a short code (its catalogue id) for monitoring

    def ready(self) -> None:
        """Raise KioskError when numbers cannot be issued now (checked before the citizen starts);
        kiosk.clock.ClockNotSet while the clock is not synchronised."""

    def now(self) -> float:
        """The wall time for a number's date; ClockNotSet while it cannot be trusted."""

    def issue(self, store: Store, req: IssueRequest, now: float | None = None) -> tuple[str, int]:
        """Issue and commit a number; returns (number, print job id)."""


class LocalAuthority:
    """Numbers made on the terminal: gap-free sequence per document, city, station and day."""

    name = "local"

    def __init__(
        self, station: str, tz: str = "Asia/Shanghai", upload: bool = False, clock: WallClock | None = None
    ) -> None:
        self.station = station
        self.tz = ZoneInfo(tz)
        self.upload = upload
        self.clock: WallClock = clock or SystemClock()
        self.problem: str | None = None
        self.problem_code: str | None = None

    def ready(self) -> None:
        _checked(self, lambda: trusted_now(self.clock))

    def now(self) -> float:
        return trusted_now(self.clock)

    def issue(self, store: Store, req: IssueRequest, now: float | None = None) -> tuple[str, int]:
        now = self.now() if now is None else now
        fmt = format_for(req.profile_id)
        series = fmt.series(req.city.region, self.station, datetime.fromtimestamp(now, self.tz).date())
        with store.transaction() as db:
            seq = store.next_counter(db, f"seq:{series}")
            number = fmt.make(series, seq)
            job = store.record_number(
                db,
                number=number,
                session_id=req.session_id,
                authority=self.name,
                series=series,
                seq=seq,
                photo=req.photo,
                photo_sha256=req.photo_sha256,
                upload="pending" if self.upload else None,
                now=now,
            )
        return number, job


class PlatformAuthority:
    """Numbers issued by the platform on upload; the session id is the idempotency key."""

    name = "platform"

    def __init__(
        self, client: object, station: str, tz: str = "Asia/Shanghai", clock: WallClock | None = None
    ) -> None:
        from kiosk.receipt.platform import PlatformClient

        assert isinstance(client, PlatformClient)
        self.client = client
        self.station = station
        self.tz = ZoneInfo(tz)
        self.clock: WallClock = clock or SystemClock()
        self.problem: str | None = None
        self.problem_code: str | None = None

    def ready(self) -> None:
        def check() -> None:
            trusted_now(self.clock)  # first: TLS itself needs the right time
            self.client.health()

        _checked(self, check)

    def now(self) -> float:
        return trusted_now(self.clock)

    def issue(self, store: Store, req: IssueRequest, now: float | None = None) -> tuple[str, int]:
        now = self.now() if now is None else now
        reply = self.client.upload(
            key=req.session_id,
            photo=req.photo_bytes,
            profile_id=req.profile_id,
            city=req.city.id,
            region=req.city.region,
            station=self.station,
        )
        number = reply["number"]
        try:
            parsed = parse(number)
        except NumberError as exc:
            raise KioskError(f"platform: issued an invalid number: {exc}") from None
        if parsed.profile_id != req.profile_id:
            raise KioskError(f"platform: issued a {parsed.profile_id} number for a {req.profile_id} photo")
        with store.transaction() as db:
            job = store.record_number(
                db,
                number=number,
                session_id=req.session_id,
                authority=self.name,
                photo=req.photo,
                photo_sha256=req.photo_sha256,
                upload="sent",
                review=reply.get("status", "pending"),
                now=now,
            )
        return number, job


def _checked(authority: LocalAuthority | PlatformAuthority, check: Callable[[], object]) -> None:
    """Run a readiness check, keeping its one-line reason for the console's `status`."""
    try:
        check()
    except KioskError as exc:
        authority.problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # a short code for monitoring: the catalogue id (platform.tls.*, clock.waiting.citizen)
        authority.problem_code = exc.code or "platform.unavailable"
        raise
    authority.problem = authority.problem_code = None
