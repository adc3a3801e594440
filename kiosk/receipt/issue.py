"""Issuing a receipt at the session's hand-over: validate, store the photo, commit the number, print.

The order is the durability contract: photo file (fsync) → number + photo record + queued print job
(one transaction) → bytes to the printer → job marked printed. A fault at the printer leaves the job
queued; it prints again, marked as a reprint, once the printer is fixed.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image

from kiosk.clock import ClockNotSet
from kiosk.errors import InputError, KioskError
from kiosk.hw.printer import Printer, PrinterFault
from kiosk.receipt.authority import Authority, IssueRequest
from kiosk.receipt.layouts import load_layouts
from kiosk.receipt.numbers import format_for
from kiosk.receipt.slip import SlipData, compose
from kiosk.store import Store, StoreError
from kiosk.text import both, catalogue

MAX_PHOTO_BYTES = 2 * 1024 * 1024  # document photos are 14-80 KB; anything this big is not one
MAX_PHOTO_PIXELS = 4000 * 4000


@dataclass(frozen=True)
class Receipt:
    number: str
    profile_id: str
    city: str
    issued_at: float
    print_job: int
    printed: bool
    fault: str | None = None
    message_zh: str = ""
    message_en: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "profile": self.profile_id,
            "city": self.city,
            "issued_at": self.issued_at,
            "print_job": self.print_job,
            "printed": self.printed,
            "fault": self.fault,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


def fault_message(fault: str, who: str = "citizen") -> tuple[str, str]:
    """(zh, en) for a printer fault, told to the citizen or the technician (kiosk/text/receipt.toml)."""
    known = f"receipt.printer.{fault}.{who}" in catalogue()
    return both(f"receipt.printer.{fault if known else 'error'}.{who}")


def check_photo(data: bytes) -> None:
    """Untrusted photo bytes: size limit, pixel count from the header (no decompression bomb), then decode."""
    if not data:
        raise InputError("photo is empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise InputError(f"photo is {len(data)} bytes; a document photo is at most {MAX_PHOTO_BYTES}")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG":
                raise InputError(f"photo must be a JPEG, not {im.format}")
            if im.width * im.height > MAX_PHOTO_PIXELS:
                raise InputError(f"photo is {im.width}x{im.height} pixels, too large")
            im.load()  # a full decode: a truncated file fails here, not later on the slip
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for corrupt files
        raise InputError(f"photo is not a readable JPEG: {exc}") from None


def _document_zh(profile_id: str) -> str:
    try:
        from kiosk.photo.profiles import get_profile

        return get_profile(profile_id).document_zh
    except KioskError:
        raise InputError(f"unknown document type {profile_id!r}") from None


def slip_bytes(
    store: Store, number: str, tz: Any, *, reprint: bool, paper_mm: int = 58, with_photo: bool = True
) -> bytes:
    """The ESC/POS bytes of the slip of a stored number.

    The photo thumbnail (if the layout has one) only with ``with_photo``: a slip with the face is the
    citizen's own hand-over; a reprint asked for by number never shows a face (numbers are guessable).
    """
    rec = store.number(number)
    if rec is None:
        raise StoreError(f"no issued number {number}")
    lay = load_layouts()
    layout = lay.layout(rec.profile_id, rec.city)
    photo_path = store.photo_path(rec.session_id) if with_photo and layout.thumbnail else None
    photo = photo_path.read_bytes() if photo_path and photo_path.exists() else None
    data = SlipData(
        number=rec.number,
        document_zh=_document_zh(rec.profile_id),
        city_zh=lay.city(rec.city).name_zh,
        station=rec.station,
        issued_at=datetime.fromtimestamp(rec.issued_at, tz),
        layout=layout,
        reprint=reprint,
        photo=photo,
    )
    return compose(data, paper_mm)


def print_job(store: Store, printer: Printer, job_id: int, tz: Any, paper_mm: int = 58) -> str | None:
    """Print one queued job; returns None when printed or the fault code (the job stays queued)."""
    job = store.print_job(job_id)
    if job.state == "printed":
        return None
    # a job that was tried before may have come out in part: whatever prints now says "reprint";
    # only the hand-over's own job carries the photo, never a reprint asked for by number
    data = slip_bytes(
        store,
        job.number,
        tz,
        reprint=job.reprint or job.attempts > 0,
        paper_mm=paper_mm,
        with_photo=not job.reprint,
    )
    store.mark_issued(job.number)  # the number's mark is durable before it leaves on paper
    store.mark_printing(job_id)
    try:
        printer.print_bytes(data)
    except PrinterFault as exc:
        store.mark_print_fault(job_id, exc.code)
        return exc.code
    store.mark_printed(job_id)
    return None


def issue_receipt(
    store: Store,
    authority: Authority,
    printer: Printer | None,
    profile_id: str,
    city: str,
    photo_bytes: bytes,
    *,
    paper_mm: int = 58,
    now: float | None = None,
) -> Receipt:
    """The session's hand-over: commit a number for the accepted photo, then print its slip.

    Raises InputError for an unknown profile or city or an unusable photo (nothing is stored then),
    KioskError when the authority cannot issue. A printer fault does not raise: the receipt comes
    back with printed=False, the fault code and the message for the citizen.
    """
    layouts = load_layouts()
    format_for(profile_id)
    layouts.layout(profile_id, city)  # unknown profile or a city not served: InputError
    c = layouts.city(city)
    _document_zh(profile_id)
    check_photo(photo_bytes)
    store.check_not_lost()  # a lost database would hand out numbers already issued
    now = authority.now() if now is None else now  # one reading: record, number and slip share the date
    sid = store.begin_session(profile_id, c.id, authority.station, now=now)
    photo = store.write_photo_file(sid, photo_bytes)
    try:
        number, job = authority.issue(store, IssueRequest(sid, profile_id, c, photo, photo_bytes), now=now)
    except BaseException:
        photo.unlink(missing_ok=True)  # no record points to it: personal data is not kept
        store.end_session(sid, "not_issued")
        raise
    store.mark_issued(number)  # durable outside the database before the number is handed out
    fault = print_job(store, printer, job, authority.tz, paper_mm) if printer is not None else "no_printer"
    store.end_session(sid, "issued" if fault is None else f"issued_print_{fault}")
    zh, en = fault_message(fault) if fault else ("", "")
    return Receipt(number, profile_id, c.id, now, job, fault is None, fault, zh, en)


def readiness(authority: Authority, store: Store | None = None) -> tuple[str, str] | None:
    """Before the citizen starts: None when numbers can be issued, else the (zh, en) message to show."""
    try:
        if store is not None:
            store.check_not_lost()
    except KioskError:
        return both("receipt.store.lost.citizen")
    try:
        authority.ready()
    except ClockNotSet:
        return both("clock.waiting.citizen")  # "waiting for the correct time" (kiosk.clock)
    except KioskError:
        return both("receipt.platform.unavailable.citizen")
    return None


def recover(
    store: Store, authority: Authority, printer: Printer | None, paper_mm: int = 58
) -> dict[str, Any]:
    """At start-up, finish what a crash or power cut cut off.

    Sessions without a number: with the platform the upload may have been issued a number whose reply
    was lost, so the same idempotency key asks again and gets the same number; locally nothing was
    issued (number and records commit together), so the session is closed and its photo deleted.
    Print jobs caught mid-print go back to the queue and print again, marked as reprints.
    """
    layouts = load_layouts()
    out: dict[str, Any] = {"reissued": [], "abandoned": 0, "requeued": store.recover_interrupted_prints()}
    for tmp in store.photo_dir.glob("*.tmp"):  # a photo write cut off before its rename
        tmp.unlink(missing_ok=True)
    for tmp in store.state_dir.glob(f".{store.marks_path.name}.*.tmp"):  # likewise a marks write
        if time.time() - tmp.stat().st_mtime > 60.0:  # (not one another process is writing now)
            tmp.unlink(missing_ok=True)
    for sess in store.unfinished_sessions():
        sid = sess["id"]
        photo = store.photo_dir / f"{sid}.jpg"
        if authority.name == "platform" and photo.exists():
            req = IssueRequest(sid, sess["profile_id"], layouts.city(sess["city"]), photo, photo.read_bytes())
            try:
                number, _ = authority.issue(store, req, now=sess["started_at"])
            except KioskError:
                continue  # the platform is still away: try again at the next start
            store.end_session(sid, "issued_after_recovery")
            out["reissued"].append(number)
        else:
            photo.unlink(missing_ok=True)
            store.end_session(sid, "interrupted")
            out["abandoned"] += 1
    if printer is not None:
        out["printed"] = print_queued(store, printer, authority.tz, paper_mm)
    return out


def print_queued(store: Store, printer: Printer, tz: Any, paper_mm: int = 58) -> dict[int, str | None]:
    """Print every queued job (after the technician fixed the printer); stops at the first fault."""
    out: dict[int, str | None] = {}
    for job in store.print_jobs(state="queued"):
        out[job.id] = fault = print_job(store, printer, job.id, tz, paper_mm)
        if fault:
            break
    return out


def reprint(
    store: Store, printer: Printer, number: str, tz: Any, actor: str = "technician", paper_mm: int = 58
) -> str | None:
    """Queue and print a reprint (marked as such on the slip); audited. Returns the fault code or None."""
    job = store.queue_reprint(number, actor)
    return print_job(store, printer, job, tz, paper_mm)
