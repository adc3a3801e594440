"""Issue 13, item 10 — 1,015 idle TCP connections to the UI took a thread and a descriptor each and
never timed out: with the service's 1,024 descriptors the UI and the service socket stopped
accepting. Now the UI serves at most MAX_CONNECTIONS at once (more are closed at once), an idle
connection is dropped after IDLE_TIMEOUT_S, and the event and preview streams are limited.

The server runs in its own process with the descriptor limit of a systemd service (1,024)."""

from __future__ import annotations

import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time

import pytest

from kiosk.capture.hub import Hub
from kiosk.service_api import call
from kiosk.ui.server import MAX_CONNECTIONS, MAX_STREAMS, UiServer

IDLE_CLIENTS = 1015

SERVER = """
import sys
import kiosk.service_api as api_module
import kiosk.ui.server as ui_module
ui_module.IDLE_TIMEOUT_S = api_module.IDLE_TIMEOUT_S = 2.0  # the test's patience, not the policy
from kiosk.capture.hub import Hub
hub = Hub()
hub.publish({"state": "idle"})
ui = ui_module.UiServer(hub, lambda *a, **k: None, port=0).start()
api = api_module.ServiceApi()
api.register("ping", lambda args: "pong")
api.serve(sys.argv[1])
print(ui.port, flush=True)
sys.stdin.read()
"""


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


@pytest.fixture
def server(tmp_path):
    sock = tmp_path / "kiosk.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(sock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        preexec_fn=_limit_fds,  # noqa: PLW1509 - the child is a plain Python process
    )
    port = int(proc.stdout.readline())
    yield proc, port, sock
    proc.stdin.close()
    proc.kill()
    proc.wait()


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _get_state(port: int) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/state.json")
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def test_a_thousand_idle_connections_starve_neither_the_ui_nor_the_service_socket(server):
    proc, port, sock = server
    before = _fds(proc.pid)
    idle = []
    for _ in range(IDLE_CLIENTS):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        idle.append(s)
    try:
        time.sleep(0.5)  # let the server accept what it will
        held = _fds(proc.pid) - before
        assert held <= MAX_CONNECTIONS + 4, f"the UI holds {held} descriptors for idle clients"
        assert call(sock, "ping", timeout=5) == "pong"
        deadline = time.monotonic() + 20  # the idle ones time out; then the screen is served again
        status = None
        while status != 200 and time.monotonic() < deadline:
            status = _get_state(port)
            if status != 200:
                time.sleep(0.2)
        assert status == 200, "the UI never answered again while idle connections were open"
    finally:
        for s in idle:
            s.close()


def test_the_event_and_preview_streams_are_limited():
    hub = Hub()
    hub.publish({"state": "idle"})
    ui = UiServer(hub, lambda *a, **k: None, port=0).start()
    opened = []
    try:
        for path in ("/events", "/preview.mjpg"):
            statuses = []
            for _ in range(MAX_STREAMS + 2):
                conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
                conn.request("GET", path)
                resp = conn.getresponse()
                statuses.append(resp.status)
                if resp.status == 503:
                    assert json.loads(resp.read())["error"] == "too many streams"
                opened.append(conn)
            assert statuses == [200] * MAX_STREAMS + [503, 503], path
    finally:
        for conn in opened:
            conn.close()
        ui.close()


def test_a_closed_preview_frees_its_slot_while_no_frames_come():
    """The screen leaves the live picture (img src changes): the stream must not hold its slot until
    the next live phase, or a few screen changes would lock the preview out."""
    ui = UiServer(Hub(), lambda *a, **k: None, port=0).start()
    try:
        for _ in range(MAX_STREAMS):
            conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
            conn.request("GET", "/preview.mjpg")
            assert conn.getresponse().status == 200
            conn.close()
        deadline = time.monotonic() + 10
        status = None
        while status != 200 and time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
            conn.request("GET", "/preview.mjpg")
            status = conn.getresponse().status
            conn.close()
            if status != 200:
                time.sleep(0.2)
        assert status == 200, "closed previews kept their slots"
    finally:
        ui.close()
