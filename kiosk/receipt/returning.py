"""The returning citizen (issue 15): the review state of a scanned number, and the free retake.

``lookup`` asks the platform what a citizen may see of a number -- its state, the rejection's reason,
the document, the city and the dates; never a photo or anybody's data -- and whether a free retake is
still allowed (``[receipt] max_retakes``: the platform's attempts and this terminal's audit, whichever
counts more). ``retake`` sends the new photo as the number's next attempt (idempotent by number and
attempt), audits it in the store, replaces the photo the store keeps for that number, and prints a
new slip marked 重拍 / RETAKE under the same number.

Every refusal is a ``ReturningRefused`` whose ``code`` names its zh/en text (kiosk/text/returning.toml).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from kiosk.errors import KioskError
from kiosk.hw.printer import Printer, PrinterFault
from kiosk.receipt.issue import _document_zh, check_photo, fault_message
from kiosk.receipt.layouts import load_layouts
from kiosk.receipt.numbers import parse
from kiosk.receipt.platform import PlatformError, PlatformRejected
from kiosk.receipt.slip import SlipData, compose
from kiosk.store import Store
from kiosk.text import catalogue, pair

RETAKE_ACTION = "retake"  # the audit action of a free retake (detail: "<number> attempt=<n> sha256=<hex>")


class ReturningRefused(KioskError):
    """A scanned number that cannot be looked up or retaken; ``code`` is returning.refused.<why>."""

    def __init__(self, why: str, message: str = "", **fields: Any) -> None:
        super().__init__(message or why, code=f"returning.refused.{why}", **fields)
        self.why = why


def retakes_audited(store: Store, number: str) -> int:
    """Free retakes this terminal made for ``number`` (its audit rows)."""
    row = store.db.execute(
        "SELECT COUNT(*) FROM audit WHERE action = ? AND detail LIKE ?", (RETAKE_ACTION, f"{number} %")
    ).fetchone()
    return int(row[0])


def _document(profile_id: str) -> dict[str, str]:
    from kiosk.photo.profiles import get_profile

    try:
        prof = get_profile(profile_id)
    except KioskError:
        return {"zh": profile_id, "en": profile_id}
    return {"zh": prof.document_zh, "en": prof.document_en}


def lookup(number: str, client: Any, store: Store, max_retakes: int) -> dict[str, Any]:
    """What the returning citizen is shown for ``number`` (already checked: format, region).

    ReturningRefused: ``no_platform`` (this terminal has no platform), ``unknown`` (the platform has
    no such number), ``platform`` (down or too slow within the client's one deadline).
    """
    if client is None:
        raise ReturningRefused("no_platform", f"{number}: this terminal does not reach the platform")
    try:
        st = client.status(number)
    except PlatformRejected as exc:
        if exc.fields.get("http_status") == 404:
            raise ReturningRefused("unknown", f"{number}: the platform has no such number") from None
        raise ReturningRefused("platform", str(exc)) from None
    except PlatformError as exc:
        raise ReturningRefused("platform", str(exc)) from None
    lay = load_layouts()
    profile = st.get("document") or parse(number).profile_id
    city_id = st.get("city") or ""
    city = lay.city_or_none(city_id) or lay.city_by_region(parse(number).region)
    used = max(int(st.get("attempts", 1)) - 1, retakes_audited(store, number))
    reason = st.get("reason") if st["status"] == "rejected" else None
    if reason is not None and f"returning.reason.{reason}" not in catalogue():
        reason = "other"
    review: dict[str, Any] = {
        "number": number,
        "state": st["status"],
        "text": pair(f"returning.state.{st['status']}", expected=st.get("expected_by") or "-"),
        "reason": reason,
        "reason_text": pair(f"returning.reason.{reason}") if reason else None,
        "profile": profile,
        "document": _document(profile),
        "city": city.id if city else city_id,
        "city_name": {"zh": city.name_zh, "en": city.name_en} if city else None,
        "issued": st.get("issued"),
        "decided": st.get("decided"),
        "expected_by": st.get("expected_by"),
        "attempts": int(st.get("attempts", 1)),
        "retakes_used": used,
        "max_retakes": max_retakes,
        "retake": st["status"] == "rejected" and used < max_retakes,
    }
    if st["status"] == "rejected" and used >= max_retakes:
        review["limit"] = pair("returning.refused.limit", used=used)
    return review


def retake(
    *,
    number: str,
    attempt: int,
    jpeg: bytes,
    profile: str,
    city: str,
    client: Any,
    store: Store,
    printer: Printer | None,
    station: str,
    now: float,
    tz: Any,
    paper_mm: int = 58,
    max_retakes: int = 2,
) -> dict[str, Any]:
    """The free retake's hand-over: resubmit, audit, keep the photo, print the 重拍 slip."""
    check_photo(jpeg)
    if client is None:
        raise ReturningRefused("no_platform")
    if attempt - 1 > max_retakes or retakes_audited(store, number) >= max_retakes:
        raise ReturningRefused("limit", used=max(attempt - 1, retakes_audited(store, number)))
    try:
        reply = client.resubmit(number=number, attempt=attempt, photo=jpeg, station=station)
    except (PlatformError, PlatformRejected) as exc:
        raise KioskError(f"retake of {number}: {exc}", code="returning.retake.failed") from None
    digest = hashlib.sha256(jpeg).hexdigest()
    store.audit("citizen", RETAKE_ACTION, f"{number} attempt={attempt} sha256={digest}")
    rec = store.number(number)
    if rec is not None and store.photo_path(rec.session_id) is not None:
        store.write_photo_file(rec.session_id, jpeg)  # the stored photo is the one the platform holds
    lay = load_layouts()
    layout = lay.layout(profile, city)
    slip = SlipData(
        number=number,
        document_zh=_document_zh(profile),
        city_zh=lay.city(city).name_zh,
        station=station,
        issued_at=datetime.fromtimestamp(now, tz),
        layout=layout,
        photo=jpeg if layout.thumbnail else None,  # the citizen's own hand-over
        retake=True,
    )
    fault: str | None = None
    if printer is None:
        fault = "no_printer"
    else:
        try:
            printer.print_bytes(compose(slip, paper_mm))
        except PrinterFault as exc:
            fault = exc.code
    zh, en = fault_message(fault) if fault else ("", "")
    return {
        "number": number,
        "profile": profile,
        "city": city,
        "attempt": attempt,
        "retake": True,
        "review": reply.get("status", "pending"),
        "printed": fault is None,
        "fault": fault,
        "message": pair("returning.retake.done"),
        "message_zh": zh,
        "message_en": en,
    }
