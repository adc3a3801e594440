"""The local web server of the touchscreen: static files, the session state as Server-Sent Events,
the live picture as MJPEG, the document photo, and touches posted back as events.

Standard library only (one screen, one local client): no framework to patch on a kiosk. It
listens on loopback only (any other host is refused) and answers only a loopback peer whose Host
header is local (DNS rebinding); a POST from a foreign Origin is refused. Connections are bounded
(MAX_CONNECTIONS, streams MAX_STREAMS each) and time out when idle (IDLE_TIMEOUT_S), so idle sockets
cannot starve the screen of threads and file descriptors. Every posted event is validated (size,
nesting: kiosk.jsonlimits) before it reaches the session's queue.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2

from kiosk.bounded_server import BoundedConnections
from kiosk.capture.hub import Hub
from kiosk.fonts import bundled_font_path
from kiosk.jsonlimits import loads as bounded_loads
from kiosk.text import entries

log = logging.getLogger("kiosk.ui")

STATIC = Path(__file__).with_name("static")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
EVENTS = {
    "start", "select", "choose", "consent", "decline", "back", "accept", "retake", "cancel", "lang",
    "large_text", "more_time", "call_staff", "scan", "again",
}  # fmt: skip
EVENT_FIELDS = {"profile", "city", "lang", "on"}  # on: the screen (state) the touch was made on
MAX_BODY = 4096
MAX_FIELD = 64
PREVIEW_QUALITY = 70
MAX_CONNECTIONS = 32  # concurrent connections; more are closed at once (the screen needs ~4)
MAX_STREAMS = 4  # open /events and /preview.mjpg each (a reload briefly holds the old ones)
IDLE_TIMEOUT_S = 10.0  # a connection that sends nothing (or reads nothing) this long is closed
PHOTO_STATES = ("review",)  # /photo.jpg is served only while the review screen shows it


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1, ::ffff:127.x)."""
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


@lru_cache(maxsize=1)
def labels() -> dict[str, dict[str, str]]:
    """The screen's own words, {key: {"zh", "en"}}: the "ui.*" entries of kiosk/text/ui.toml."""
    return entries("ui")


def parse_event(body: bytes) -> tuple[str, dict[str, str]]:
    """A touch from the screen: {"name": ..., optional profile/city/lang}; ValueError in one line."""
    data = bounded_loads(body, max_bytes=MAX_BODY, max_depth=2, what="event")
    if not isinstance(data, dict) or data.get("name") not in EVENTS:
        raise ValueError(f"unknown event (expected one of {', '.join(sorted(EVENTS))})")
    fields = {}
    for key, value in data.items():
        if key == "name":
            continue
        if key not in EVENT_FIELDS or not isinstance(value, str) or len(value) > MAX_FIELD:
            raise ValueError(f"event field {key!r} is not allowed or too long")
        fields[key] = value
    return data["name"], fields


class _Server(BoundedConnections, ThreadingHTTPServer):
    """A thread per connection up to MAX_CONNECTIONS; beyond that the connection is closed at once."""

    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line, not a traceback on stderr, when a client misbehaves."""
        import sys

        log.warning("UI request from %s failed: %s", client_address, sys.exc_info()[1])


class UiServer:
    """Serves the UI on a background thread; ``post(name, **fields)`` feeds the session's queue."""

    def __init__(
        self, hub: Hub, post: Callable[..., None], host: str = "127.0.0.1", port: int = 8780, fps: int = 30
    ):
        if not is_loopback(host):
            raise ValueError(f"the UI listens on loopback only (127.0.0.1, ::1 or localhost), not {host!r}")
        self.hub, self.post, self.fps = hub, post, fps
        self.stopping = threading.Event()
        self.open_streams = {"events": 0, "preview": 0}
        self._streams_lock = threading.Lock()
        self.httpd = _Server(
            (host, port),
            self._handler_class(),
            max_connections=MAX_CONNECTIONS,
            idle_timeout_s=IDLE_TIMEOUT_S,
        )
        self.port = self.httpd.server_address[1]
        self.host = host
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="ui-http", daemon=True)
        self.streams = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> UiServer:
        self.thread.start()
        log.info("UI on %s", self.url)
        return self

    def close(self) -> None:
        self.stopping.set()
        self.hub.close()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _enter_stream(self, kind: str) -> bool:
        with self._streams_lock:
            if self.open_streams[kind] >= MAX_STREAMS:
                return False
            self.open_streams[kind] += 1
            return True

    def _leave_stream(self, kind: str) -> None:
        with self._streams_lock:
            self.open_streams[kind] -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        ui = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "kiosk-ui"

            def log_message(self, fmt: str, *args: Any) -> None:  # no request log: URLs may carry choices
                pass

            def _local(self) -> bool:
                """A loopback peer AND a local Host header (DNS rebinding): a header alone proves nothing."""
                if not is_loopback(str(self.client_address[0])):
                    return False
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
                return host in ("127.0.0.1", "localhost", "::1")

            def _same_origin(self) -> bool:
                """No Origin (not a browser's cross-site request), or this UI's own origin."""
                origin = self.headers.get("Origin")
                if origin is None:
                    return True
                try:
                    u = urllib.parse.urlsplit(origin)
                    port = u.port
                except ValueError:
                    return False
                return u.scheme == "http" and is_loopback(u.hostname or "") and port == ui.port

            def _send(
                self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, obj: Any) -> None:
                self._send(
                    status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8"
                )

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if not self._local():
                    return self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": "not a local request"})
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/":
                        return self._static("index.html")
                    if path.startswith("/static/"):
                        return self._static(path[len("/static/") :])
                    if path == "/fonts/cjk.otf":  # the bundled CJK font, for a screen with no system one
                        return self._send(HTTPStatus.OK, bundled_font_path().read_bytes(), "font/otf")
                    if path == "/labels.json":
                        return self._json(HTTPStatus.OK, labels())
                    if path == "/state.json":
                        return self._json(HTTPStatus.OK, ui.hub.state)
                    if path == "/events":
                        return self._events()
                    if path == "/preview.mjpg":
                        return self._mjpeg()
                    if path == "/photo.jpg":
                        photo = ui.hub.photo if ui.hub.state.get("state") in PHOTO_STATES else None
                        if photo is None:
                            return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "no photo"})
                        return self._send(HTTPStatus.OK, photo, "image/jpeg")
                except OSError:  # the screen went away mid-stream (reload, browser restart)
                    return None
                return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                if not self._local():
                    return self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": "not a local request"})
                if not self._same_origin():
                    return self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": "foreign origin"})
                if self.path != "/event":
                    return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not found"})
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 < length <= MAX_BODY:
                    return self._json(
                        HTTPStatus.BAD_REQUEST, {"ok": False, "error": "missing or oversized body"}
                    )
                try:
                    name, fields = parse_event(self.rfile.read(length))
                except ValueError as exc:
                    return self._json(HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(exc)})
                ui.post(name, "ui", **fields)
                return self._json(HTTPStatus.ACCEPTED, {"ok": True})

            def _static(self, name: str) -> None:
                target = (STATIC / name).resolve()
                if target.parent != STATIC.resolve() or not target.is_file() or target.suffix not in TYPES:
                    return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not found"})
                return self._send(HTTPStatus.OK, target.read_bytes(), TYPES[target.suffix])

            def _peer_gone(self) -> bool:
                """The client closed its end (a stream is otherwise noticed only at the next write)."""
                try:
                    return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    return False
                except OSError:
                    return True

            def _busy(self) -> None:
                self.close_connection = True
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "error": "too many streams"})

            def _events(self) -> None:
                if not ui._enter_stream("events"):
                    return self._busy()
                try:
                    self._event_stream()
                finally:
                    ui._leave_stream("events")

            def _event_stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                version = 0
                while not ui.stopping.is_set():
                    new, state = ui.hub.wait_state(version, 10.0)
                    if new == version:
                        self.wfile.write(b": keep-alive\n\n")
                    else:
                        version = new
                        self.wfile.write(b"data: " + json.dumps(state, ensure_ascii=False).encode() + b"\n\n")
                    self.wfile.flush()

            def _mjpeg(self) -> None:
                if not ui._enter_stream("preview"):
                    return self._busy()
                try:
                    self._mjpeg_stream()
                finally:
                    ui._leave_stream("preview")

            def _mjpeg_stream(self) -> None:
                boundary = "kioskframe"
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={boundary}")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                version = 0
                ui.streams += 1
                try:
                    while not ui.stopping.is_set():
                        new, frame = ui.hub.wait_frame(version, 1.0)
                        if new == version or frame is None:
                            version = new
                            if self._peer_gone():  # the screen left the preview: free the slot now
                                return
                            continue
                        version = new
                        ok, jpg = cv2.imencode(
                            ".jpg",
                            cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_QUALITY],
                        )
                        if not ok:
                            continue
                        data = jpg.tobytes()
                        head = (
                            f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                        )
                        self.wfile.write(head.encode() + data + b"\r\n")
                        self.wfile.flush()
                finally:
                    ui.streams -= 1

        return Handler
