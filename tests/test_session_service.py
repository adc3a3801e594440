"""`kiosk run`: the service wires hardware, session, UI and service API; it stays up when the
camera fails, tells systemd it is ready, and holds updates off while a citizen is served."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from kiosk.capture.session import State
from kiosk.config import load_config
from kiosk.fleet.inhibit import session_running
from kiosk.service import Service
from kiosk.service_api import call

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


@pytest.fixture
def service(notify_socket, start_service):
    return start_service(failsafe_s=0.5)


def wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_status_readiness_inhibit_and_a_camera_failure(service, notify_socket):
    assert b"READY=1" in notify_socket.recv(4096)
    sock = service.api_path
    st = call(sock, "status")
    assert st["version"] and st["uptime_s"] >= 0 and st["simulated"] is True
    assert st["session"]["state"] == "idle" and st["camera"]["backend"] == "sim"
    assert set(st["lights"]) == {"left", "right", "fill"}
    assert not session_running(service.cfg.state_dir)

    service.session.post("start")
    assert wait(lambda: call(sock, "status")["session"]["state"] == "choose")
    assert session_running(service.cfg.state_dir)  # updates wait for the citizen
    service.session.post("choose", profile="id_card", city="shenzhen")
    service.session.post("consent")
    service.session.post("accept")  # the requirements screen
    assert wait(lambda: service.session.state is State.GUIDANCE)
    assert wait(lambda: call(sock, "status")["lights"]["right"] > call(sock, "status")["lights"]["left"])

    service.session.camera.failure = "camera unplugged"
    assert wait(lambda: call(sock, "status")["session"]["state"] in ("failsafe", "idle"))
    assert wait(lambda: call(sock, "status")["session"]["state"] == "idle")
    assert not session_running(service.cfg.state_dir)
    assert service.ui.hub.state["message"] is None
    # the service is still up; the next session gets a camera again (reopened)
    service.session.post("start")
    service.session.post("choose", profile="id_card", city="shenzhen")
    service.session.post("consent")
    service.session.post("accept")  # the requirements screen
    assert wait(lambda: service.session.state is State.GUIDANCE and service.live.n > 5)
    assert service.session.camera.failure is None
    assert wait(lambda: service.live.last is not None and "face_width" in service.live.last.values)


def test_ready_after_the_start_up_checks_and_the_watchdog_fed_by_the_main_loop(
    tmp_path, notify_socket, monkeypatch
):
    """kiosk.fleet.health runs the start-up checks before READY and paces the keep-alives that
    Service.step sends (one loop turn, no timer thread)."""
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # WatchdogSec=0.2: a keep-alive at most every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    cfg = load_config(None, tmp_path / "state")
    svc = Service(cfg, sim=True, port=0).start()
    try:
        ready = notify_socket.recv(4096).decode()
        assert "READY=1" in ready and "STATUS=ready: store ok, camera ok, printer ok" in ready
        assert "WATCHDOG_USEC" not in os.environ  # not passed on to child processes
        notify_socket.setblocking(False)
        sent: list[bytes] = []
        end = time.monotonic() + 5
        while len(sent) < 2 and time.monotonic() < end:
            svc.step()
            with contextlib.suppress(BlockingIOError):
                sent.append(notify_socket.recv(4096))
            time.sleep(0.01)
        assert sent == [b"WATCHDOG=1", b"WATCHDOG=1"]
        assert svc.fleet._watchdog.interval == pytest.approx(0.1)
    finally:
        svc.stop()
        svc.close()


def test_kiosk_run_builds_its_station_like_the_demo(service):
    """`kiosk run` wires its parts with kiosk.station.build_station, the function `kiosk demo`
    uses (tests/test_architecture.py checks that both call it)."""
    from kiosk.sim.citizen import SimCitizen
    from kiosk.station import Station

    st = service.station
    assert isinstance(st, Station) and st.sim is True
    assert service.session is st.session and service.receipts is st.receipts and service.live is st.live
    assert isinstance(st.citizen, SimCitizen) and st.citizen.on_transition in st.session.listeners
    assert st.face_name == "astronaut.jpg"  # the bundled sample; [hardware] sim_face names another


def test_kiosk_run_serves_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "KIOSK_STATE_DIR": str(tmp_path)}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--sim", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("kiosk: UI on http://127.0.0.1:") and "(camera: sim)" in line
        assert call(tmp_path / "kiosk.sock", "status")["session"]["state"] == "idle"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "camera backend: {'backend': 'sim'" in err and "Traceback" not in err
    assert not (tmp_path / "kiosk.sock").exists()


def test_kiosk_run_on_a_busy_port_fails_in_one_line(tmp_path, capsys):
    from kiosk.cli import main

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        assert main(["run", "--sim", "--port", str(port), "--state-dir", str(tmp_path)]) == 1
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert f"kiosk: UI: cannot listen on 127.0.0.1:{port}: Address already in use" in err
    assert "Traceback" not in err


def test_a_whole_session_through_the_service_ends_with_a_stored_printed_number(service):
    """Hand-over is the receipt step: number committed in the store, slip on the virtual printer,
    and the console's commands answer on the same socket."""
    from kiosk.receipt.numbers import check_ok

    sock = service.api_path
    service.session.post("start")
    assert wait(lambda: service.session.state is State.CHOOSE)
    choose = service.session.snapshot()["documents"]
    doc = next(d for d in choose if d["id"] == "id_card")
    assert "shenzhen" in doc["cities"] and doc["city_names"]["shenzhen"]["zh"] == "深圳市"
    service.session.post("choose", profile="id_card", city="nowhere")  # not a city it serves: ignored
    service.session.post("choose", profile="id_card", city="shenzhen")
    service.session.post("consent")
    service.session.post("accept")  # the requirements screen
    assert wait(lambda: service.session.state is State.REVIEW, timeout=60)
    service.session.post("accept")
    assert wait(lambda: service.session.state is State.DONE, timeout=20)
    result = service.session.result
    assert result["printed"] is True and result["city"] == "shenzhen"
    assert check_ok(result["number"])
    record = service.receipts.store.number(result["number"])
    assert record is not None and record.profile_id == "id_card"
    assert service.receipts.printer.device.received  # the slip's bytes went to the printer
    counters = call(sock, "console.counters")
    assert counters
    assert call(sock, "console.status")


def test_start_is_refused_before_the_photo_when_the_platform_is_down(tmp_path, notify_socket):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(None, tmp_path / "state")
    cfg = replace(
        cfg,
        session=replace(cfg.session, ui_port=0),
        receipt=replace(
            cfg.receipt, authority="platform", platform_url=f"http://127.0.0.1:{port}", platform_timeout_s=0.5
        ),
    )
    svc = Service(cfg, sim=True)
    svc.readiness_every_s = 0.1
    svc.start()
    try:
        # the idle screen says so by itself, before anyone touches it
        assert wait(lambda: (svc.step(), svc.session.snapshot()["message"])[1] is not None)
        assert svc.session.snapshot()["message"]["en"]
        svc.session.post("start")
        svc.step()
        assert svc.session.state is State.IDLE  # and a touch on Start is refused
        msg = svc.session.snapshot()["message"]
        assert msg and msg["zh"] and msg["en"]
    finally:
        svc.stop()
        svc.close()


def test_an_embedded_service_reports_its_memory_but_never_restarts_its_host(tmp_path, start_service):
    """The memory guard ends the process; only `kiosk run` (run_service) owns its process."""
    cfg = load_config(None, tmp_path / "state")
    cfg = replace(cfg, service=replace(cfg.service, memory_ceiling_mb=1.0))
    svc = start_service(cfg)
    svc.memory.every_s = 0.0
    svc.session.sessions += 1  # as if a citizen had been served since the start
    assert wait(lambda: svc.memory.status()["rss_mb"] > 1.0)
    time.sleep(0.3)
    assert not svc.restart_requested and not svc.stop_event.is_set()
