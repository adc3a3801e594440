"""Issue 13, item 17 — deeply nested JSON on the UI's /event dropped the connection (RecursionError
in the handler) and on the service socket logged a traceback without a reply. Now both answer with
one error line (400 / an error reply) and keep serving."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from kiosk.capture.hub import Hub
from kiosk.service_api import ServiceApi, call
from kiosk.ui.server import UiServer


@pytest.fixture
def ui():
    server = UiServer(Hub(), lambda *a, **k: None, port=0).start()
    yield server
    server.close()


def test_a_deeply_nested_event_is_a_400_and_the_ui_keeps_serving(ui):
    conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
    body = b'{"name": "start", "on": ' + b"[" * 4000 + b"]" * 4000 + b"}"
    body = body[:4096]  # within the body limit: only the nesting is wrong
    conn.request("POST", "/event", body=body)
    resp = conn.getresponse()
    assert resp.status == 400
    assert "nested too deeply" in json.loads(resp.read())["error"]
    conn.request("GET", "/state.json")  # the same connection still answers
    assert conn.getresponse().status == 200
    conn.close()


def test_brackets_inside_strings_are_not_nesting(ui):
    conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
    conn.request("POST", "/event", body=json.dumps({"name": "start", "on": "[[[[[[[[[[[[[[[[[[[[[[[[\\\"["}))
    assert conn.getresponse().status == 202
    conn.close()


@pytest.fixture
def api(tmp_path):
    server = ServiceApi()
    server.register("ping", lambda args: "pong")
    path = tmp_path / "kiosk.sock"
    server.serve(path)
    yield path
    server.close()


@pytest.mark.parametrize("levels", [200, 5000, 30000])
def test_a_deeply_nested_request_gets_an_error_reply_and_the_socket_keeps_serving(api, levels, capfd):
    request = b'{"cmd": "ping", "args": {"x": ' + b"[" * levels + b"]" * levels + b"}}\n"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(api))
        s.sendall(request)
        reply = s.makefile("rb").readline()
    assert reply, "the connection was dropped without a reply"
    answer = json.loads(reply)
    assert answer["ok"] is False
    assert "nested too deeply" in answer["error"] or "too long" in answer["error"]
    assert call(api, "ping") == "pong"
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("session.default_profile", "id\x00card"),
        ("session.ui_host", "127.0.0.1\n"),
        ("session.countdown_s", "4\x07"),
    ],
)
def test_control_characters_in_config_set_are_a_one_line_refusal(console_api, key, value):
    """The same item's second half: `config set` with control characters answered "internal error"."""
    from kiosk.service_api import ApiError, socket_path

    _, state = console_api("")
    with pytest.raises(ApiError) as err:
        call(socket_path(state), "console.config_set", key=key, value=value)
    message = str(err.value)
    assert message.startswith(key) and "internal error" not in message and "\n" not in message
    assert call(socket_path(state), "console.config_get", key="session.countdown_s") is not None
