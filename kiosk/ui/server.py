"""The local web server of the touchscreen: static files, the session state as Server-Sent Events,
the live picture as MJPEG, the document photo, and touches posted back as events.

Standard library only (one screen, one local client): no framework to patch on a kiosk. It
listens on 127.0.0.1 and refuses requests whose Host header is not local (DNS rebinding); every
posted event is validated before it reaches the session's queue.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2

from kiosk.capture.hub import Hub
from kiosk.fonts import bundled_font_path
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
    "large_text", "more_time", "call_staff",
}  # fmt: skip
EVENT_FIELDS = {"profile", "city", "lang", "on"}  # on: the screen (state) the touch was made on
MAX_BODY = 4096
MAX_FIELD = 64
PREVIEW_QUALITY = 70


@lru_cache(maxsize=1)
def labels() -> dict[str, dict[str, str]]:
    """The screen's own words, {key: {"zh", "en"}}: the "ui.*" entries of kiosk/text/ui.toml."""
    return entries("ui")


def parse_event(body: bytes) -> tuple[str, dict[str, str]]:
    """A touch from the screen: {"name": ..., optional profile/city/lang}; ValueError in one line."""
    if len(body) > MAX_BODY:
        raise ValueError("event too large")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("event is not JSON") from None
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


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line, not a traceback on stderr, when a client misbehaves."""
        import sys

        log.warning("UI request from %s failed: %s", client_address, sys.exc_info()[1])


class UiServer:
    """Serves the UI on a background thread; ``post(name, **fields)`` feeds the session's queue."""

    def __init__(
        self, hub: Hub, post: Callable[..., None], host: str = "127.0.0.1", port: int = 8780, fps: int = 30
    ):
        self.hub, self.post, self.fps = hub, post, fps
        self.stopping = threading.Event()
        self.httpd = _Server((host, port), self._handler_class())
        self.httpd.daemon_threads = True
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

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        ui = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "kiosk-ui"

            def log_message(self, fmt: str, *args: Any) -> None:  # no request log: URLs may carry choices
                pass

            def _local(self) -> bool:
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
                return host in ("127.0.0.1", "localhost", "::1")

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
                        photo = ui.hub.photo
                        if photo is None:
                            return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "no photo"})
                        return self._send(HTTPStatus.OK, photo, "image/jpeg")
                except OSError:  # the screen went away mid-stream (reload, browser restart)
                    return None
                return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                if not self._local():
                    return self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": "not a local request"})
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

            def _events(self) -> None:
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
