"""HTTP client of the provincial photo platform: upload under an idempotency key, poll the review.

Every reply is untrusted: a malformed body, a wrong number or a 5xx is retried with the same key
(so a retry after a timeout never yields a second number) and ends in one PlatformError line.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from kiosk.errors import KioskError
from kiosk.receipt.numbers import check_ok

MAX_REPLY = 64 * 1024
REVIEW_STATES = ("pending", "approved", "rejected")


class PlatformError(KioskError):
    """The platform cannot be reached or gave an unusable reply (after retries)."""


class PlatformRejected(KioskError):
    """The platform refused the request itself (4xx other than a conflict): retrying will not help."""


class PlatformClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise KioskError(f"platform url must be http(s)://host[:port], got {url!r}")
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.base = u.path.rstrip("/")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._sleep = sleep
        self.attempts = 0  # requests sent, for tests and the console

    def _once(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        self.attempts += 1
        try:
            conn.request(method, self.base + path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read(MAX_REPLY + 1)
        finally:
            conn.close()
        if len(raw) > MAX_REPLY:
            raise ValueError("reply too large")
        data = json.loads(raw.decode("utf-8")) if raw else None
        if not isinstance(data, dict):
            raise ValueError("reply is not a JSON object")
        return resp.status, data

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> dict:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status, data = self._once(method, path, body, headers or {})
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            except (ValueError, UnicodeDecodeError) as exc:
                last = f"malformed reply: {exc}"
                continue
            if status >= 500:
                last = f"HTTP {status}"
                continue
            if status >= 400:
                raise PlatformRejected(f"platform refused: HTTP {status} {str(data.get('error', ''))[:200]}")
            return data
        raise PlatformError(
            f"platform at {self.host}:{self.port} unavailable after {self.retries + 1} tries ({last})"
        )

    def health(self) -> None:
        """Raise PlatformError when the platform cannot be reached (say so before the citizen starts)."""
        data = self._request("GET", "/health")
        if data.get("ok") is not True:
            raise PlatformError("platform reports it is not ready")

    def upload(
        self,
        *,
        key: str,
        photo: bytes,
        profile_id: str,
        city: str,
        region: str,
        station: str,
        number: str | None = None,
    ) -> dict[str, Any]:
        """Upload a photo; the platform answers with its image number (the same one for the same key)."""
        headers = {
            "Content-Type": "image/jpeg",
            "Idempotency-Key": key,
            "X-Document": profile_id,
            "X-City": city,
            "X-Region": region,
            "X-Station": station,
        }
        if number:
            headers["X-Number"] = number
        data = self._request("POST", "/v1/photos", photo, headers)
        n = data.get("number")
        if not isinstance(n, str) or not check_ok(n):
            raise PlatformError(f"platform: reply has no valid number: {str(n)[:40]!r}")
        if data.get("status", "pending") not in REVIEW_STATES:
            raise PlatformError(f"platform: unknown review status {str(data.get('status'))[:40]!r}")
        return data

    def review(self, number: str) -> str:
        """The review state of a number: pending, approved or rejected."""
        data = self._request("GET", f"/v1/photos/{urllib.parse.quote(number)}")
        state = data.get("status")
        if state not in REVIEW_STATES:
            raise PlatformError(f"platform: unknown review status {str(state)[:40]!r}")
        return str(state)
