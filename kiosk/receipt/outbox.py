"""The upload outbox: send stored photos to the platform and poll their review, with retries.

Each entry is keyed by its session id (the idempotency key), so a retry after a lost reply never makes
the platform record a photo twice. A confirmed (or rejected) review starts the photo's retention.
"""

from __future__ import annotations

import time
from typing import Any

from kiosk.clock import WallClock, trusted_now
from kiosk.receipt.layouts import load_layouts
from kiosk.receipt.platform import PlatformClient, PlatformError, PlatformRejected
from kiosk.store import Store

POLL_INTERVAL_S = 60.0
MAX_BACKOFF_S = 3600.0


def _backoff(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 30.0 * 2 ** min(attempts, 10))


def run_outbox(
    store: Store, client: PlatformClient, now: float | None = None, clock: WallClock | None = None
) -> dict[str, int]:
    """One pass over the due entries; returns how many were sent, confirmed, rejected or failed.

    Retries are scheduled and reviews dated in wall time, so nothing is sent while ``clock`` is not
    synchronised (ClockNotSet): a clock that ran ahead would hold every retry back once NTP sets it.
    """
    if now is None:
        now = trusted_now(clock) if clock is not None else time.time()
    counts = {"sent": 0, "confirmed": 0, "rejected": 0, "pending_review": 0, "failed": 0}
    layouts = load_layouts()
    for row in store.outbox_due(now):
        sid = row["session_id"]
        try:
            if row["state"] == "pending":
                _upload(store, client, layouts, row)
                store.outbox_result(sid, "sent", retry_in=0.0, review="pending", now=now)
                counts["sent"] += 1
                continue
            review = client.review(row["number"])
            if review == "approved":
                store.outbox_result(sid, "confirmed", review="approved", now=now)
                counts["confirmed"] += 1
            elif review == "rejected":
                store.outbox_result(sid, "rejected", review="rejected", now=now)
                counts["rejected"] += 1
            else:
                store.outbox_result(sid, "sent", retry_in=POLL_INTERVAL_S, review="pending", now=now)
                counts["pending_review"] += 1
        except (PlatformError, PlatformRejected) as exc:
            store.outbox_result(
                sid, row["state"], error=str(exc)[:300], retry_in=_backoff(row["attempts"]), now=now
            )
            counts["failed"] += 1
    return counts


def _upload(store: Store, client: PlatformClient, layouts: Any, row: dict[str, Any]) -> None:
    path = store.photo_path(row["session_id"])
    if path is None or not path.exists():
        raise PlatformRejected(f"{row['number']}: the photo is gone, nothing to upload")
    reply = client.upload(
        key=row["idempotency_key"],
        photo=path.read_bytes(),
        profile_id=row["profile_id"],
        city=row["city"],
        region=layouts.cities[row["city"]].region,
        station=row["station"],
        number=row["number"],
    )
    if reply["number"] != row["number"]:
        raise PlatformError(f"platform recorded {reply['number']} for {row['number']}")
