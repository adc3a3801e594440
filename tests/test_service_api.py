"""The service's UNIX-socket interface: dispatch, errors, garbage and overlong requests."""

from __future__ import annotations

import socket

import pytest

from kiosk.errors import KioskError
from kiosk.service_api import MAX_REQUEST, ApiError, ServiceApi, ServiceDown, call


@pytest.fixture
def api(tmp_path):
    api = ServiceApi()
    api.register("echo", lambda args: {"you said": args})
    api.register("refuse", lambda args: (_ for _ in ()).throw(KioskError("not now: a session is running")))
    api.register("bug", lambda args: 1 / 0)
    path = tmp_path / "kiosk.sock"
    api.serve(path)
    yield api, path
    api.close()


def test_round_trip_and_errors(api):
    _, path = api
    assert call(path, "echo", x=1) == {"you said": {"x": 1}}
    with pytest.raises(ApiError, match="not now"):
        call(path, "refuse")
    with pytest.raises(ApiError, match="internal error in bug: ZeroDivisionError"):
        call(path, "bug")
    with pytest.raises(ApiError, match="unknown command 'nope'"):
        call(path, "nope")
    assert path.stat().st_mode & 0o077 == 0  # owner only


def _raw(path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(data)
        return s.makefile("rb").readline()


def test_garbage_and_overlong_requests_get_an_answer_and_the_server_lives(api):
    _, path = api
    assert b"not a JSON line" in _raw(path, b"\xff\xfe garbage\n")
    assert b"must be an object" in _raw(path, b"[1,2]\n")
    assert b"too long" in _raw(path, b"x" * (MAX_REQUEST + 10) + b"\n")
    assert call(path, "echo") == {"you said": {}}


def test_no_service_is_a_clear_error(tmp_path):
    with pytest.raises(ApiError, match="not running"):
        call(tmp_path / "absent.sock", "status")


def test_a_missing_service_is_told_apart_from_a_refusal(api, tmp_path):
    """The console edits the configuration itself only when nothing listens (kiosk.console.commands)."""
    _, path = api
    with pytest.raises(ServiceDown, match="not running"):
        call(tmp_path / "nothing.sock", "echo")
    with pytest.raises(ApiError) as refused:
        call(path, "refuse")
    assert not isinstance(refused.value, ServiceDown)
