"""The service's local interface: JSON lines over a UNIX socket, one request per connection line.

The serial console, the update agent and scripts talk to the running service through this
socket only, so they keep working when the UI is stuck. Request: ``{"cmd": "status", "args":
{...}}``; reply: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "one line"}``.
Handlers are registered by name; they run on the server's thread and must be quick (post to
the session's event queue for anything that touches the session).

Bursts and hostile clients: the listen backlog is the system's (SOMAXCONN, not socketserver's 5)
and ``call`` retries a connect refused with EAGAIN for a moment; at most MAX_CONNECTIONS are served
at once (more wait a second for a slot, then are closed), an idle client is dropped after
IDLE_TIMEOUT_S, and a request nested too deeply is one error reply (kiosk.jsonlimits).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.bounded_server import BoundedConnections
from kiosk.errors import KioskError
from kiosk.jsonlimits import loads as bounded_loads

MAX_REQUEST = 64 * 1024  # bytes; a request line longer than this is refused
MAX_CONNECTIONS = 32  # served at once; the console, the updater and a script need a few
IDLE_TIMEOUT_S = 10.0  # a client that sends no request line within this is dropped
SLOT_WAIT_S = 1.0  # how long a connection waits for a free slot before it is closed
CONNECT_RETRY_S = 2.0  # how long ``call`` retries a connect refused with EAGAIN (backlog full)
SOCKET_NAME = "kiosk.sock"

Handler = Callable[[dict[str, Any]], Any]


class ApiError(KioskError):
    """A request the service refuses, or a service that does not answer."""


class ServiceDown(ApiError):
    """No service listens on the socket (stopped, or failing to start): nothing was sent."""


def socket_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


class ServiceApi:
    """Registry of commands plus a threaded UNIX-socket server that dispatches to them."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def register(self, cmd: str, handler: Handler) -> None:
        self._handlers[cmd] = handler

    def commands(self) -> list[str]:
        return sorted(self._handlers)

    def dispatch(self, raw: bytes) -> dict[str, Any]:
        """One request line to one reply; never raises."""
        try:
            req = bounded_loads(raw, max_bytes=MAX_REQUEST, what="request")
        except ValueError as exc:
            msg = str(exc)
            return {"ok": False, "error": "request is not a JSON line" if msg.endswith("not JSON") else msg}
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            return {"ok": False, "error": 'request must be an object with a "cmd" string'}
        args = req.get("args", {})
        if not isinstance(args, dict):
            return {"ok": False, "error": '"args" must be an object'}
        handler = self._handlers.get(req["cmd"])
        if handler is None:
            return {"ok": False, "error": f"unknown command {req['cmd']!r}"}
        try:
            return {"ok": True, "result": handler(args)}
        except KioskError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a handler bug must not take the service down
            return {"ok": False, "error": f"internal error in {req['cmd']}: {type(exc).__name__}: {exc}"}

    def serve(self, path: str | Path) -> None:
        """Start serving on a background thread (owner-only socket)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        api = self

        class _Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    raw = self.rfile.readline(MAX_REQUEST + 1)
                except OSError:
                    return
                if len(raw) > MAX_REQUEST:
                    reply = {"ok": False, "error": "request too long"}
                else:
                    reply = api.dispatch(raw.strip())
                try:
                    self.wfile.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
                except OSError:
                    pass

        old = os.umask(0o077)
        try:
            self._server = _BoundedUnixServer(
                str(path),
                _Handler,
                max_connections=MAX_CONNECTIONS,
                idle_timeout_s=IDLE_TIMEOUT_S,
                slot_wait_s=SLOT_WAIT_S,
            )
        finally:
            os.umask(old)
        self._thread = threading.Thread(target=self._server.serve_forever, name="service-api", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _BoundedUnixServer(BoundedConnections, socketserver.ThreadingUnixStreamServer):
    """The system's listen backlog, and a thread per connection up to MAX_CONNECTIONS."""

    request_queue_size = socket.SOMAXCONN

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that misbehaves is not worth a traceback on the journal."""


def _connect(s: socket.socket, path: str | Path, timeout: float) -> None:
    """Connect, retrying briefly while the listen backlog is full (EAGAIN on a UNIX socket)."""
    give_up = time.monotonic() + min(CONNECT_RETRY_S, timeout)
    pause = 0.005
    while True:
        try:
            s.connect(str(path))
            return
        except BlockingIOError:
            if time.monotonic() >= give_up:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def call(path: str | Path, cmd: str, timeout: float = 5.0, **args: Any) -> Any:
    """Send one request to the running service; ApiError with a one-line reason on failure."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            _connect(s, path, timeout)
            s.sendall(json.dumps({"cmd": cmd, "args": args}).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except (FileNotFoundError, ConnectionRefusedError):
        raise ServiceDown("the kiosk service is not running (no socket at " + str(path) + ")") from None
    except TimeoutError:
        raise ApiError(f"the kiosk service did not answer {cmd!r} within {timeout:g} s") from None
    except OSError as exc:
        raise ApiError(f"cannot reach the kiosk service: {exc}") from None
    try:
        reply = json.loads(buf.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError("the kiosk service sent a malformed reply") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        raise ApiError(str(reply.get("error") if isinstance(reply, dict) else "malformed reply"))
    return reply.get("result")
