"""The service's local interface: JSON lines over a UNIX socket, one request per connection line.

The serial console, the update agent and scripts talk to the running service through this
socket only, so they keep working when the UI is stuck. Request: ``{"cmd": "status", "args":
{...}}``; reply: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "one line"}``.
Handlers are registered by name; they run on the server's thread and must be quick (post to
the session's event queue for anything that touches the session).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError

MAX_REQUEST = 64 * 1024  # bytes; a request line longer than this is refused
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
            req = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {"ok": False, "error": "request is not a JSON line"}
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
            timeout = 10

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
            self._server = socketserver.ThreadingUnixStreamServer(str(path), _Handler)
        finally:
            os.umask(old)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="service-api", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def call(path: str | Path, cmd: str, timeout: float = 5.0, **args: Any) -> Any:
    """Send one request to the running service; ApiError with a one-line reason on failure."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
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
