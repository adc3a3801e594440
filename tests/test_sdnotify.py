"""sd_notify datagrams, read back from a real AF_UNIX socket standing in for systemd's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from kiosk.fleet.health import StartupFailed, Watchdog, announce_ready, run_startup_checks
from kiosk.fleet.sdnotify import Notifier, NotifyError, watchdog_usec


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def _drain(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(5)
    return out


def test_ready_status_and_stopping_are_single_datagrams(notify_socket):
    path, sock = notify_socket
    n = Notifier(path)
    assert n.enabled
    assert n.ready("ready: camera ok")
    assert n.status("idle")
    assert n.stopping()
    got = _drain(sock)
    assert got == [f"READY=1\nMAINPID={os.getpid()}\nSTATUS=ready: camera ok", "STATUS=idle", "STOPPING=1"]


def test_abstract_namespace_socket():
    name = f"kiosk-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert Notifier("@" + name).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_notify_socket_calls_are_noops(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False


def test_bad_socket_values_are_one_line_errors(tmp_path):
    with pytest.raises(NotifyError, match="absolute path"):
        Notifier("relative/sock")
    with pytest.raises(NotifyError, match="sd_notify to"):
        Notifier(str(tmp_path / "missing.sock")).ready()
    with pytest.raises(NotifyError, match="newline"):
        Notifier(str(tmp_path / "x")).notify(STATUS="two\nlines")


def test_watchdog_usec_respects_watchdog_pid(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_usec() == 20_000_000
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_usec() is None
    monkeypatch.setenv("WATCHDOG_USEC", "garbage")
    monkeypatch.delenv("WATCHDOG_PID")
    assert watchdog_usec() is None


def test_unset_environment_hides_socket_from_children(monkeypatch, notify_socket):
    path, _ = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    n = Notifier(unset_environment=True)
    assert n.enabled and "NOTIFY_SOCKET" not in os.environ


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_watchdog_feeds_only_while_components_are_fresh(notify_socket):
    path, sock = notify_socket
    clock = FakeClock()
    wd = Watchdog(Notifier(path), stale_after={"camera": 2.0}, clock=clock, interval=5.0)
    assert wd.beat()  # first beat goes out at once
    clock.t += 1
    assert not wd.beat()  # not due yet: at most one per interval
    clock.t += 5
    wd.alive("camera")
    assert wd.beat()
    clock.t += 6  # camera silent for 6 s > 2 s: the loop runs but the camera is dead
    assert wd.stale() == ["camera"]
    assert not wd.beat()
    wd.alive("camera")
    assert wd.beat()
    assert _drain(sock) == ["WATCHDOG=1"] * 3
    with pytest.raises(KeyError):
        wd.alive("printer")


def test_watchdog_interval_defaults_to_half_of_watchdog_usec(monkeypatch, notify_socket):
    path, _ = notify_socket
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert Watchdog(Notifier(path)).interval == 15.0
    monkeypatch.delenv("WATCHDOG_USEC")
    wd = Watchdog(Notifier(path))
    assert wd.interval is None and wd.beat() is False  # watchdog off: nothing to feed


def test_startup_checks_degrade_or_fail():
    def printer():
        raise OSError("no paper")

    report = run_startup_checks({"camera": lambda: None, "printer": printer, "store": lambda: None})
    assert report.degraded == ["printer"]
    assert report.status_line() == "degraded: camera ok, printer degraded (no paper), store ok"
    with pytest.raises(StartupFailed, match="store failed: disk"):
        run_startup_checks({"store": lambda: (_ for _ in ()).throw(OSError("disk"))}, required={"store"})


SERVICE = textwrap.dedent(
    """
    import sys, time
    from kiosk.fleet.health import Watchdog, announce_ready, run_startup_checks
    from kiosk.fleet.sdnotify import Notifier
    n = Notifier(unset_environment=True)
    def lights():
        raise RuntimeError("LED driver not found")
    report = run_startup_checks({"camera": lambda: None, "lights": lights, "printer": lambda: None,
                                 "store": lambda: None}, required={"store"})
    announce_ready(n, report)
    wd = Watchdog(n, stale_after={"loop": 60})
    for i in range(3):          # the main loop: three iterations, then a clean stop
        wd.alive("loop")
        wd.beat()
        time.sleep(0.06)
    n.stopping()
    """
)


def test_service_sends_expected_datagrams_in_order(notify_socket):
    """A real child process, as systemd would run it: READY after checks, keep-alives, STOPPING."""
    path, sock = notify_socket
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="100000")
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.run(
        [sys.executable, "-c", SERVICE], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    got = _drain(sock)
    ready = got[0].split("\n")
    assert ready[0] == "READY=1"
    assert ready[1].startswith("MAINPID=") and ready[1] != f"MAINPID={os.getpid()}"
    assert (
        ready[2] == "STATUS=degraded: camera ok, lights degraded (LED driver not found), printer ok, store ok"
    )
    assert got[1:-1] == ["WATCHDOG=1"] * len(got[1:-1]) and len(got[1:-1]) >= 2
    assert got[-1] == "STOPPING=1"


def test_announce_ready_without_systemd_returns_false(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert announce_ready(Notifier(), run_startup_checks({})) is False
