"""Issue 13, item 19 — `/photo.jpg` was still served on the done and failsafe screens (the citizen
had walked away; the next person at the screen could fetch the photo). Now it is served only while
the review screen shows it."""

from __future__ import annotations

import http.client

import pytest

from kiosk.capture.hub import Hub
from kiosk.ui.server import UiServer


@pytest.fixture
def ui():
    server = UiServer(Hub(), lambda *a, **k: None, port=0).start()
    yield server
    server.close()


def photo_status(ui) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
    conn.request("GET", "/photo.jpg")
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


@pytest.mark.parametrize("state", ["handover", "done", "failsafe", "idle", "guidance"])
def test_the_photo_is_not_served_once_the_review_screen_is_gone(ui, state):
    ui.hub.set_photo(b"\xff\xd8citizen")
    ui.hub.publish({"state": "review"})
    assert photo_status(ui) == 200
    ui.hub.publish({"state": state})  # the photo may still be in the hub: the screen decides
    assert photo_status(ui) == 404
