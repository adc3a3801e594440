"""Client of the provincial photo platform: upload under an idempotency key, poll the review.

Only over TLS: the platform's certificate is checked against the configured CA bundle
(``receipt.platform_ca``) with its host name, and the terminal proves who it is with its own
certificate (``platform_cert``/``platform_key``, mutual TLS). Plain http:// is refused except to a
loopback address (tests, demos). A TLS failure (expired or foreign certificate, a platform that is
not the one configured) is a PlatformTlsError in one line and is not retried.

Every reply is untrusted: a malformed body, a wrong number or a 5xx is retried with the same key
(so a retry after a timeout never yields a second number) and ends in one PlatformError line.

Time is bounded by deadlines, not by the socket's per-read timeout (a platform sending one byte every
3 s never trips a 5 s read timeout): each attempt, connect to last byte, ends at ``timeout``, and the
whole call with its retries at ``deadline`` (default: timeout x tries); the socket is shut down when
one passes.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kiosk.errors import KioskError
from kiosk.receipt.numbers import check_ok
from kiosk.text import text

MAX_REPLY = 64 * 1024
REVIEW_STATES = ("pending", "approved", "rejected")


class PlatformError(KioskError):
    """The platform cannot be reached or gave an unusable reply (after retries)."""


class PlatformRejected(KioskError):
    """The platform refused the request itself (4xx other than a conflict): retrying will not help."""


class PlatformTlsError(PlatformError):
    """The TLS connection was refused by either side: a configuration or security problem that a
    retry does not fix (``code`` names its catalogue entry, kiosk/text/platform.toml)."""


def _tls_error(id_: str, **fields: Any) -> PlatformTlsError:
    return PlatformTlsError(text(f"platform.tls.{id_}", "en", **fields), code=f"platform.tls.{id_}", **fields)


def is_loopback(host: str) -> bool:
    """A loopback address or ``localhost``: the only place plain http:// may go (tests, demos)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# OpenSSL's verification codes of the platform's certificate -> catalogue entry
_SERVER_VERIFY = {
    62: "server_host_mismatch",  # X509_V_ERR_HOSTNAME_MISMATCH
    64: "server_host_mismatch",  # X509_V_ERR_IP_ADDRESS_MISMATCH
    2: "server_unknown_ca",  # unable to get issuer certificate
    18: "server_unknown_ca",  # self-signed certificate
    19: "server_unknown_ca",  # self-signed certificate in chain
    20: "server_unknown_ca",  # unable to get local issuer certificate
    21: "server_unknown_ca",  # unable to verify the first certificate
    10: "server_expired",
    9: "server_not_yet_valid",
}
# TLS alerts the platform sends about this terminal's certificate (OpenSSL's reason names)
_CLIENT_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "no_client_cert",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no_client_cert",
    "TLSV1_ALERT_UNKNOWN_CA": "client_unknown_ca",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "client_expired",
}


def _classify(exc: ssl.SSLError, host: str) -> PlatformTlsError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = str(exc.verify_message or exc.reason or exc)
        id_ = _SERVER_VERIFY.get(exc.verify_code or -1, "server_refused")
        return _tls_error(id_, host=host, reason=reason)
    reason = str(exc.reason or exc)
    id_ = _CLIENT_ALERTS.get(reason)
    if id_:
        return _tls_error(id_)
    if "ALERT" in reason and ("CERTIFICATE" in reason or "ACCESS_DENIED" in reason):
        return _tls_error("client_refused", reason=reason.lower())
    return _tls_error("handshake", reason=reason.lower())


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class PlatformClient:
    def __init__(
        self,
        url: str,
        *,
        ca: str = "",
        cert: str = "",
        key: str = "",
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        deadline: float | None = None,
    ) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise KioskError(f"config key receipt.platform_url: expected https://host[:port], got {url!r}")
        if u.scheme == "http" and not is_loopback(u.hostname):
            raise KioskError(
                f"config key receipt.platform_url: plain http:// only to a loopback address; "
                f"use https:// for {u.hostname}"
            )
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.base = u.path.rstrip("/")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.deadline = timeout * (retries + 1) if deadline is None else deadline  # one call, all tries
        self._sleep = sleep
        self._now = now
        self.attempts = 0  # requests sent, for tests and the console
        self.cert_window: tuple[datetime, datetime] | None = None  # this terminal's certificate
        self.context = self._context(ca, cert, key) if self.scheme == "https" else None

    def _context(self, ca: str, cert: str, key: str) -> ssl.SSLContext:
        """Verification against the configured CA bundle (the system's when none is configured),
        host names checked, and this terminal's certificate for mutual TLS."""
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or None)
        except (OSError, ssl.SSLError) as exc:
            raise _tls_error("files", key="receipt.platform_ca", reason=_reason(exc)) from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if cert or key:
            try:
                ctx.load_cert_chain(cert, key or None)
            except (OSError, ssl.SSLError) as exc:
                where = "receipt.platform_cert/platform_key"
                raise _tls_error("files", key=where, reason=_reason(exc)) from None
            self.cert_window = _validity(cert)
        return ctx

    def check_certificate(self) -> None:
        """This terminal's certificate against the clock, before the platform has to refuse it."""
        if self.cert_window is None:
            return
        start, end = self.cert_window
        now = datetime.fromtimestamp(self._now(), UTC)
        if now > end:
            raise _tls_error("client_cert_expired", when=_utc(end))
        if now < start:
            raise _tls_error("client_cert_not_yet_valid", when=_utc(start))

    def _connection(self) -> http.client.HTTPConnection:
        if self.context is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)

    def _once(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], limit: float
    ) -> tuple[int, Any]:
        conn = self._connection()
        conn.timeout = min(conn.timeout or limit, limit)  # connect and each read: within the limit
        self.attempts += 1
        expired = threading.Event()

        def expire() -> None:  # the attempt's deadline: wake the blocked read, whatever trickles in
            expired.set()
            if conn.sock is not None:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)  # the raw socket, TLS or not

        timer = threading.Timer(limit, expire)
        timer.daemon = True
        timer.start()
        try:
            try:
                conn.request(method, self.base + path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read(MAX_REPLY + 1)
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                if expired.is_set():
                    raise TimeoutError(f"no complete reply within {limit:.3g} s") from None
                raise  # the connection was cut: retried like any network failure
            except ssl.SSLError as exc:
                if expired.is_set():
                    raise TimeoutError(f"no complete reply within {limit:.3g} s") from None
                raise _classify(exc, self.host) from None
            except (OSError, ValueError, http.client.HTTPException):
                if expired.is_set():
                    raise TimeoutError(f"no complete reply within {limit:.3g} s") from None
                raise
            if expired.is_set():  # a reply cut short by the deadline is no reply
                raise TimeoutError(f"no complete reply within {limit:.3g} s")
        finally:
            timer.cancel()
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
        self.check_certificate()
        end = time.monotonic() + self.deadline
        tries = 0
        for attempt in range(self.retries + 1):
            if attempt:
                pause = self.backoff * 2 ** (attempt - 1)
                if time.monotonic() + pause >= end:
                    break
                self._sleep(pause)
            left = end - time.monotonic()
            if left <= 0:
                break
            tries += 1
            try:
                status, data = self._once(method, path, body, headers or {}, min(self.timeout, left))
            except PlatformTlsError:
                raise  # a retry meets the same certificate
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
                raise PlatformRejected(
                    f"platform refused: HTTP {status} {str(data.get('error', ''))[:200]}", http_status=status
                )
            return data
        raise PlatformError(
            f"platform at {self.host}:{self.port} unavailable after {tries} tries ({last})"
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

    def status(self, number: str) -> dict[str, Any]:
        """What a returning citizen may see of a number: its review state, the rejection's reason code,
        document, city and dates (no photo, nobody's data); PlatformRejected("... HTTP 404 ...") for a
        number the platform never recorded. One deadline for the whole call with its retries."""
        data = self._request("GET", f"/v1/photos/{urllib.parse.quote(number)}")
        if data.get("number") != number or data.get("status") not in REVIEW_STATES:
            raise PlatformError(f"platform: unusable status reply for {number[:40]!r}")
        keep = ("status", "reason", "document", "city", "issued", "submitted", "decided", "expected_by")
        out: dict[str, Any] = {k: str(data[k])[:64] for k in keep if isinstance(data.get(k), str)}
        attempts = data.get("attempts", 1)
        out["attempts"] = attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 1
        out["number"] = number
        return out

    def resubmit(self, *, number: str, attempt: int, photo: bytes, station: str) -> dict[str, Any]:
        """The free retake: ``photo`` replaces the rejected one of ``number``. Idempotent by (number,
        attempt): a retry after a lost reply finds the attempt made and answers the same."""
        headers = {"Content-Type": "image/jpeg", "X-Station": station}
        path = f"/v1/photos/{urllib.parse.quote(number)}/attempts/{int(attempt)}"
        data = self._request("PUT", path, photo, headers)
        if data.get("number") != number or data.get("status") not in REVIEW_STATES:
            raise PlatformError(f"platform: unusable resubmission reply for {number[:40]!r}")
        return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _validity(cert: str) -> tuple[datetime, datetime] | None:
    """(not before, not after) of the first certificate in a PEM file (already loaded by ssl)."""
    from cryptography import x509

    try:
        with open(cert, "rb") as f:
            c = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return None
    return c.not_valid_before_utc, c.not_valid_after_utc
