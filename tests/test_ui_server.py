"""The UI server without a browser: SSE, MJPEG, the photo, and validation of what the screen posts."""

from __future__ import annotations

import http.client
import json

import numpy as np
import pytest

from kiosk.capture.hub import Hub
from kiosk.ui.server import UiServer, labels, parse_event


@pytest.fixture
def server():
    hub = Hub()
    posted = []
    ui = UiServer(hub, lambda name, source, **f: posted.append((name, source, f)), port=0).start()
    ui.posted = posted
    yield ui
    ui.close()


def request(ui, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp, conn


def test_events_are_validated_before_they_reach_the_session(server):
    resp, _ = request(
        server, "POST", "/event", json.dumps({"name": "choose", "profile": "id_card", "city": "杭州"})
    )
    assert resp.status == 202
    assert server.posted == [("choose", "ui", {"profile": "id_card", "city": "杭州"})]
    for body, msg in (
        (b"{nope", "not JSON"),
        (json.dumps({"name": "self_destruct"}), "unknown event"),
        (json.dumps({"name": "choose", "profile": "x" * 65}), "too long"),
        (json.dumps({"name": "start", "admin": "1"}), "'admin' is not allowed"),
    ):
        resp, _ = request(server, "POST", "/event", body)
        assert resp.status == 400 and msg in json.loads(resp.read())["error"]
    assert len(server.posted) == 1


def test_only_local_hosts_are_served(server):
    resp, _ = request(server, "GET", "/state.json", headers={"Host": "attacker.example:80"})
    assert resp.status == 403
    resp, _ = request(server, "POST", "/event", json.dumps({"name": "start"}), headers={"Host": "evil"})
    assert resp.status == 403 and server.posted == []


def test_static_files_and_no_path_traversal(server):
    resp, _ = request(server, "GET", "/")
    assert resp.status == 200 and b"/static/app.js" in resp.read()
    for path in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/nothing.js"):
        resp, _ = request(server, "GET", path)
        assert resp.status == 404, path
    resp, _ = request(server, "GET", "/labels.json")
    assert json.loads(resp.read())["start"] == labels()["start"]


def test_state_is_pushed_as_server_sent_events(server):
    server.hub.publish({"state": "idle"})
    resp, conn = request(server, "GET", "/events")
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    first = resp.fp.readline()
    assert json.loads(first[len(b"data: ") :])["state"] == "idle"
    resp.fp.readline()
    server.hub.publish({"state": "choose"})
    assert json.loads(resp.fp.readline()[len(b"data: ") :])["state"] == "choose"
    conn.close()


def test_preview_is_an_mjpeg_stream_and_the_photo_is_served_only_while_reviewed(server):
    resp, _ = request(server, "GET", "/photo.jpg")
    assert resp.status == 404
    server.hub.set_photo(b"\xff\xd8fake")
    server.hub.publish({"state": "review"})  # served only while the review screen shows it
    resp, _ = request(server, "GET", "/photo.jpg")
    assert resp.status == 200 and resp.read() == b"\xff\xd8fake"
    resp, conn = request(server, "GET", "/preview.mjpg")
    assert "multipart/x-mixed-replace" in resp.getheader("Content-Type")
    server.hub.publish_frame(np.full((48, 64, 3), 128, np.uint8))
    assert resp.fp.readline().strip() == b"--kioskframe"
    assert resp.fp.readline().strip() == b"Content-Type: image/jpeg"
    length = int(resp.fp.readline().split(b":")[1])
    resp.fp.readline()
    assert resp.fp.read(length)[:2] == b"\xff\xd8"
    conn.close()


def test_parse_event_rejects_oversized_bodies():
    with pytest.raises(ValueError, match="too large"):
        parse_event(b"{" + b" " * 5000 + b"}")
