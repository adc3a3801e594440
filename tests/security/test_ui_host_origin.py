"""Issue 13, item 5 — `session.ui_host = "0.0.0.0"` was accepted and the Host-header check was the
only gate (`-H 'Host: 127.0.0.1'` from the network read state, events, photo and preview); a POST
with a foreign Origin was accepted (202). Now: a non-loopback host is a configuration error and the
server refuses to bind it; a request is served only to a loopback peer with a local Host; a POST
from a foreign Origin is 403 and never reaches the session."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from kiosk.capture.hub import Hub
from kiosk.config import ConfigError, load_config
from kiosk.ui.server import UiServer


@pytest.fixture
def ui():
    posted = []
    server = UiServer(Hub(), lambda name, source, **f: posted.append(name), port=0).start()
    server.posted = posted
    yield server
    server.close()


def post(ui, headers):
    conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
    conn.request("POST", "/event", body=json.dumps({"name": "start"}), headers=headers)
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return resp.status, body


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "kiosk.example"])
def test_a_non_loopback_ui_host_is_a_configuration_error(tmp_path, host):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[session]\nui_host = "{host}"\n')
    with pytest.raises(ConfigError, match="ui_host"):
        load_config(cfg, tmp_path / "state")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_the_server_refuses_to_listen_beyond_loopback(host):
    with pytest.raises(ValueError, match="loopback only"):
        UiServer(Hub(), lambda *a, **k: None, host=host, port=0)


def test_a_local_host_header_from_a_foreign_peer_is_refused(ui):
    """What accept() reports for a neighbour on the network, handed to the real server and handler."""
    ui.hub.publish({"state": "idle", "secret": "citizen"})
    ours, theirs = socket.socketpair()
    ui.httpd.process_request(ours, ("192.0.2.7", 51000))
    theirs.sendall(b"GET /state.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    theirs.settimeout(5)
    reply = b""
    while chunk := theirs.recv(65536):
        reply += chunk
    theirs.close()
    assert reply.startswith(b"HTTP/1.1 403") and b"citizen" not in reply
    # the same request from a loopback peer is served
    ours, theirs = socket.socketpair()
    ui.httpd.process_request(ours, ("127.0.0.1", 51001))
    theirs.sendall(b"GET /state.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    theirs.settimeout(5)
    reply = b""
    while chunk := theirs.recv(65536):
        reply += chunk
    theirs.close()
    assert reply.startswith(b"HTTP/1.1 200") and b"citizen" in reply


@pytest.mark.parametrize(
    "origin", ["http://attacker.example", "null", "http://127.0.0.1:1", "https://127.0.0.1", "http://x:y"]
)
def test_a_post_from_a_foreign_origin_is_refused(ui, origin):
    status, body = post(ui, {"Origin": origin})
    assert status == 403 and body["error"] == "foreign origin"
    assert ui.posted == []


def test_the_screens_own_origin_and_originless_posts_are_accepted(ui):
    for headers in ({"Origin": f"http://127.0.0.1:{ui.port}"}, {"Origin": f"http://localhost:{ui.port}"}, {}):
        status, _ = post(ui, headers)
        assert status == 202
    assert ui.posted == ["start", "start", "start"]
