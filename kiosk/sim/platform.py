"""The reference provincial photo platform: issues numbers on upload, keyed by the idempotency key.

Used by the tests and the demo over real HTTP on 127.0.0.1, with its failure modes (slow, 5xx,
malformed replies, review rejected, a reply lost after the number was issued). Not production code:
the real platform belongs to the province; this one pins down the contract the client relies on.

With ``ServerTls`` it speaks HTTPS and requires a terminal certificate from its client CA (mutual
TLS): a connection without one, or with a certificate from another CA or out of date, is refused in
the handshake (``Platform.refusals`` says why), and every number records the terminal (the
certificate's common name), which must be the station the request names.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import ssl
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.errors import InputError, KioskError
from kiosk.receipt.numbers import format_for, parse

MAX_UPLOAD = 2 * 1024 * 1024
# why a human review rejects a photo: codes the terminal words in zh/en (kiosk/text/returning.toml reason.*)
REJECT_REASONS = ("background", "face_covered", "expression", "glare", "quality", "head_covering", "other")
PUBLIC_RECORD = ("number", "status", "document", "city", "station", "terminal")  # GET /_records
REVIEW_DAYS = 2  # a pending review is expected within this many days of the (latest) upload


@dataclass
class Faults:
    """Failure modes; the *_next counters act on the next N requests (deterministic tests)."""

    delay_s: float = 0.0
    fail_rate: float = 0.0
    malformed_rate: float = 0.0
    review: str = "approve"  # approve | reject | pending
    reject_reason: str = "background"  # the reason code a rejection gives (REJECT_REASONS)
    fail_next: int = 0  # answer 503 without doing anything
    malformed_next: int = 0  # answer a body that is not JSON
    slow_next: int = 0  # process, then wait slow_s before the reply (the client times out)
    slow_s: float = 1.0


@dataclass(frozen=True)
class ServerTls:
    """The platform's certificate and key, and the CA whose terminal certificates it accepts."""

    cert: Path
    key: Path
    client_ca: Path

    def context(self) -> ssl.SSLContext:
        named = (("--tls-cert", self.cert), ("--tls-key", self.key), ("--client-ca", self.client_ca))
        for what, path in named:
            if not Path(path).is_file():
                raise InputError(f"platform serve: {what}: no such file: {path}")
        try:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.client_ca))
            ctx.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            why = exc.reason if isinstance(exc, ssl.SSLError) else exc
            raise InputError(f"platform serve: TLS files not usable: {why}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED  # no terminal certificate from client_ca: no connection
        return ctx


def peer_terminal(conn: object) -> str | None:
    """The common name of the terminal's verified certificate, or None on plain HTTP."""
    getpeercert = getattr(conn, "getpeercert", None)
    if getpeercert is None:
        return None
    cert = getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class Platform:
    def __init__(self, data_dir: Path | None = None, faults: Faults | None = None, seed: int = 0) -> None:
        self.faults = faults or Faults()
        self.lock = threading.Lock()
        self.by_key: dict[str, dict] = {}
        self.by_number: dict[str, dict] = {}
        self.counters: dict[str, int] = {}
        self.photos: dict[str, bytes] = {}  # number -> the photo it holds now (a resubmission replaces it)
        self.requests = 0
        self.refusals: list[str] = []  # TLS handshakes refused, and why (tests)
        self.rng = random.Random(seed)
        self.data_dir = data_dir
        self.tz = ZoneInfo("Asia/Shanghai")
        if data_dir:
            data_dir.mkdir(parents=True, exist_ok=True)

    def upload(
        self, key: str, headers: dict[str, str], body: bytes, terminal: str | None = None
    ) -> tuple[int, dict]:
        """``terminal``: who the TLS handshake proved the sender to be (None on plain HTTP)."""
        digest = hashlib.sha256(body).hexdigest()
        station = headers.get("x-station", "")
        if terminal is not None and terminal != station:
            why = f"this terminal's certificate is for station {terminal!r}, not {station[:8]!r}"
            return 403, {"error": why}
        with self.lock:
            if key in self.by_key:
                rec = self.by_key[key]
                if rec["sha256"] != digest:
                    return 409, {"error": "idempotency key reused for a different photo"}
                return 200, self._public(rec)
            try:
                fmt = format_for(headers.get("x-document", ""))
                series = fmt.series(
                    headers.get("x-region", ""), headers.get("x-station", ""), datetime.now(self.tz).date()
                )
            except KioskError as exc:
                return 400, {"error": str(exc)}
            given = headers.get("x-number")
            if given:  # the terminal issued the number itself (local authority): record that one
                try:
                    p = parse(given)
                except KioskError as exc:
                    return 400, {"error": str(exc)}
                if p.profile_id != fmt.profile_id or p.number in self.by_number:
                    return 400, {"error": f"{p.number} is for another document or already recorded"}
                number = p.number
            else:
                seq = self.counters.get(series, 0) + 1
                self.counters[series] = seq
                number = fmt.make(series, seq)
            rec = {
                "number": number,
                "sha256": digest,
                "status": "pending",
                "document": headers.get("x-document"),
                "city": headers.get("x-city"),
                "station": station,
                "terminal": terminal,  # the certificate's common name: who issued it
                "at": time.time(),
                "reason": None,  # a rejection's code (REJECT_REASONS)
                "decided_at": None,
                "attempts": [{"attempt": 1, "sha256": digest, "at": time.time(), "terminal": terminal}],
            }
            self.by_key[key] = rec
            self.by_number[rec["number"]] = rec
            self.photos[rec["number"]] = body
            if self.data_dir:
                (self.data_dir / f"{rec['number']}.jpg").write_bytes(body)
            return 201, self._public(rec)

    def review(self, number: str) -> tuple[int, dict]:
        with self.lock:
            rec = self.by_number.get(number)
            if rec is None:
                return 404, {"error": "unknown number"}
            if rec["status"] == "pending" and self.faults.review != "pending":
                self._decide(rec, "approved" if self.faults.review == "approve" else "rejected",
                             self.faults.reject_reason)
            return 200, self._public(rec)

    def _decide(self, rec: dict, status: str, reason: str | None) -> None:
        rec["status"] = status
        rec["reason"] = (reason if reason in REJECT_REASONS else "other") if status == "rejected" else None
        rec["decided_at"] = time.time() if status != "pending" else None

    def decide(self, number: str, status: str, reason: str | None = None) -> tuple[int, dict]:
        """Test and demo control (POST /_review): the review of one number, now."""
        if status not in ("approved", "rejected", "pending"):
            return 400, {"error": "status must be approved, rejected or pending"}
        if status == "rejected" and reason not in REJECT_REASONS:
            return 400, {"error": f"reason must be one of {', '.join(REJECT_REASONS)}"}
        with self.lock:
            rec = self.by_number.get(number)
            if rec is None:
                return 404, {"error": "unknown number"}
            self._decide(rec, status, reason)
            return 200, self._public(rec)

    def resubmit(
        self, number: str, attempt: int, body: bytes, station: str, terminal: str | None = None
    ) -> tuple[int, dict]:
        """The free retake after a rejection: the new photo replaces the number's, idempotent by
        (number, attempt): the same attempt with the same photo answers as before, with another
        photo it is a conflict; attempt n+1 only after attempt n was rejected."""
        digest = hashlib.sha256(body).hexdigest()
        if terminal is not None and terminal != station:
            return 403, {"error": f"this terminal's certificate is for station {terminal!r}"}
        with self.lock:
            rec = self.by_number.get(number)
            if rec is None:
                return 404, {"error": "unknown number"}
            done = next((a for a in rec["attempts"] if a["attempt"] == attempt), None)
            if done is not None:
                if done["sha256"] != digest:
                    return 409, {"error": f"attempt {attempt} was made with another photo"}
                return 200, self._public(rec)
            if attempt != len(rec["attempts"]) + 1:
                return 409, {"error": f"the next attempt of {number} is {len(rec['attempts']) + 1}"}
            if rec["status"] != "rejected":
                return 409, {"error": f"{number} is {rec['status']}: only a rejected photo is resubmitted"}
            made = {"attempt": attempt, "sha256": digest, "at": time.time(), "terminal": terminal}
            rec["attempts"].append(made)
            rec["sha256"] = digest
            self._decide(rec, "pending", None)
            self.photos[number] = body
            if self.data_dir:
                (self.data_dir / f"{number}.jpg").write_bytes(body)
            return 201, self._public(rec)

    def _public(self, rec: dict) -> dict:
        """What the platform tells a terminal about a number: no photo, nobody's data."""
        last = rec["attempts"][-1]["at"]
        day = lambda t: datetime.fromtimestamp(t, self.tz).date().isoformat()  # noqa: E731
        return {
            "number": rec["number"],
            "status": rec["status"],
            "reason": rec.get("reason"),
            "document": rec.get("document"),
            "city": rec.get("city"),
            "issued": day(rec["at"]),
            "submitted": day(last),
            "decided": day(rec["decided_at"]) if rec.get("decided_at") else None,
            "expected_by": day(last + REVIEW_DAYS * 86400) if rec["status"] == "pending" else None,
            "attempts": len(rec["attempts"]),
        }

    def records(self) -> list[dict]:
        """Every number with who issued it (test control: GET /_records); no photo hashes."""
        with self.lock:
            return [{k: rec[k] for k in PUBLIC_RECORD} for rec in self.by_number.values()]

    def attempts(self, number: str) -> list[dict]:
        """The photos a number was given, in order: [{attempt, sha256, terminal}] (tests, demos)."""
        with self.lock:
            rec = self.by_number.get(number)
            made = rec["attempts"] if rec else []
            return [{k: a[k] for k in ("attempt", "sha256", "terminal")} for a in made]


def make_handler(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kiosk-reference-platform/1"

        def log_message(self, *args: object) -> None:  # photos and keys stay out of logs
            return

        def _reply(self, status: int, body: dict | bytes) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _length(self) -> int:
            try:
                return int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return -1

        def _fault(self) -> bool:
            f = platform.faults
            with platform.lock:
                platform.requests += 1
                if f.fail_next > 0 or platform.rng.random() < f.fail_rate:
                    f.fail_next = max(0, f.fail_next - 1)
                    self._reply(503, {"error": "busy"})
                    return True
                if f.malformed_next > 0 or platform.rng.random() < f.malformed_rate:
                    f.malformed_next = max(0, f.malformed_next - 1)
                    self._reply(200, b"<html>gateway</html>")
                    return True
            return False

        def _slow(self) -> None:
            f = platform.faults
            with platform.lock:
                once = f.slow_next > 0
                f.slow_next = max(0, f.slow_next - 1)
            wait = f.delay_s + (f.slow_s if once else 0.0)
            if wait > 0:
                time.sleep(wait)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/health":
                self._reply(200, {"ok": True})
                return
            if self.path == "/_records":  # test control: who issued which number
                self._reply(200, {"records": platform.records()})
                return
            if self._fault():
                return
            if self.path.startswith("/v1/photos/"):
                status, body = platform.review(self.path.rsplit("/", 1)[1])
                self._slow()  # the slow mode holds every reply, a review's too
                try:
                    self._reply(status, body)
                except OSError:
                    pass  # the client gave up waiting
                return
            self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path == "/_faults":  # test control: set failure modes
                n = self._length()
                try:
                    data = json.loads(self.rfile.read(max(n, 0)) or b"{}")
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    self._reply(400, {"error": "expected a JSON object"})
                    return
                with platform.lock:
                    for k, v in data.items():
                        if hasattr(platform.faults, k):
                            setattr(platform.faults, k, v)
                self._reply(200, asdict(platform.faults))
                return
            if self.path == "/_review":  # test and demo control: decide the review of a number
                n = self._length()
                try:
                    data = json.loads(self.rfile.read(max(n, 0)) or b"{}")
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    self._reply(400, {"error": "expected a JSON object"})
                    return
                status, body = platform.decide(str(data.get("number", "")), str(data.get("status", "")),
                                               data.get("reason"))
                self._reply(status, body)
                return
            if self.path != "/v1/photos":
                self._reply(404, {"error": "not found"})
                return
            n = self._length()
            if n <= 0 or n > MAX_UPLOAD:
                self._reply(413 if n > MAX_UPLOAD else 400, {"error": "photo missing or too large"})
                return
            body = self.rfile.read(n)
            key = self.headers.get("Idempotency-Key", "")
            if not 8 <= len(key) <= 128:
                self._reply(400, {"error": "Idempotency-Key header missing"})
                return
            if self._fault():
                return
            status, reply = platform.upload(
                key, {k.lower(): v for k, v in self.headers.items()}, body, peer_terminal(self.connection)
            )
            self._slow()
            try:
                self._reply(status, reply)
            except OSError:
                pass  # the client gave up waiting: the number stays issued under its key

        def do_PUT(self) -> None:  # noqa: N802 - /v1/photos/{number}/attempts/{n}: a resubmission
            parts = self.path.strip("/").split("/")
            shape = len(parts) == 5 and parts[:2] == ["v1", "photos"] and parts[3] == "attempts"
            if not shape or not parts[4].isdigit():
                self._reply(404, {"error": "not found"})
                return
            n = self._length()
            if n <= 0 or n > MAX_UPLOAD:
                self._reply(413 if n > MAX_UPLOAD else 400, {"error": "photo missing or too large"})
                return
            body = self.rfile.read(n)
            if self._fault():
                return
            status, reply = platform.resubmit(
                parts[2], int(parts[4]), body, self.headers.get("X-Station", ""),
                peer_terminal(self.connection),
            )
            self._slow()
            try:
                self._reply(status, reply)
            except OSError:
                pass

    return Handler


def _linger(sock: ssl.SSLSocket) -> None:
    """Close after a refused handshake without a reset: the alert already sent stays readable
    (closing with the terminal's unread request in the buffer would send RST and drop it)."""
    try:
        sock.shutdown(socket.SHUT_WR)  # also drops the TLS layer: recv below reads the raw socket
        sock.settimeout(1.0)
        for _ in range(64):
            if not sock.recv(65536):
                break
    except OSError:
        pass
    finally:
        sock.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, platform: Platform, tls: ServerTls | None):
        self.platform = platform
        # built before the socket: a missing or bad file is one line, not a half-open server
        self.tls_context = tls.context() if tls is not None else None
        super().__init__(address, handler)

    def finish_request(self, request: object, client_address: object) -> None:
        """The TLS handshake on the request's own thread (a slow client never stalls accept):
        a terminal without a certificate from the client CA gets no further."""
        if self.tls_context is not None:
            request = self.tls_context.wrap_socket(  # type: ignore[arg-type]
                request, server_side=True, do_handshake_on_connect=False
            )
            try:
                request.settimeout(10.0)
                request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
                with self.platform.lock:
                    self.platform.refusals.append(str(reason))
                    del self.platform.refusals[:-100]
                _linger(request)  # so that the terminal reads the alert that says why
                return
            try:
                super().finish_request(request, client_address)
            finally:
                request.close()  # type: ignore[attr-defined]
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that gave up waiting (the timeout fault) is expected, not an error
        super().handle_error(request, client_address)


class PlatformServer:
    """The reference platform on a background thread (tests, demo); port 0 picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        platform: Platform | None = None,
        tls: ServerTls | None = None,
        url_host: str | None = None,
    ) -> None:
        self.platform = platform or Platform()
        self.tls = tls
        self.httpd = _Server((host, port), make_handler(self.platform), self.platform, tls)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.url_host = url_host or ("localhost" if tls is not None else None)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.url_host or host}:{port}"

    def __enter__(self) -> PlatformServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve(host: str, port: int, data_dir: Path | None, faults: Faults, tls: ServerTls | None = None) -> None:
    platform = Platform(data_dir, faults)
    try:
        httpd = _Server((host, port), make_handler(platform), platform, tls)
    except OSError as exc:
        raise KioskError(f"platform serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    scheme = "https" if tls is not None else "http"
    who = f" (terminals with a certificate from {tls.client_ca})" if tls is not None else ""
    print(f"reference platform on {scheme}://{host}:{httpd.server_address[1]}{who}", flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
