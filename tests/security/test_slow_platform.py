"""Issue 13, item 8 — a platform that answered one byte every 3 s froze the session for 51 s, past
WatchdogSec=30: the 5 s socket timeout is per read, and the readiness check and the number request
ran on the session's thread. Now every platform call has one overall deadline (the socket is shut
down when it passes), the hand-over runs on a worker thread the main loop waits on for at most
HANDOVER_WAIT_S a turn, and the start's readiness check on the session's thread uses the last
background answer (a stale one is re-checked on a worker)."""

from __future__ import annotations

import socketserver
import threading
import time

import cv2
import numpy as np
import pytest

from kiosk.capture.photo_adapter import CaptureResult, documents
from kiosk.capture.session import Session, State
from kiosk.config import load_config
from kiosk.photo.results import CheckReport, CheckResult
from kiosk.receipt.platform import PlatformClient, PlatformError
from kiosk.receipt.wiring import ReceiptService, cities_for
from kiosk.service import Service
from kiosk.station import open_printer
from tests.test_session import CFG, Clock, FakeCamera, FakeLive, to_guidance, to_review

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full

BYTE_EVERY_S = 0.3  # under the per-read timeout below: only an overall deadline ends the call
TIMEOUT_S = 1.0
STEP_LIMIT_S = 1.0  # no turn of the main loop may take this long (the watchdog allows 30 s)
GIVE_UP_S = 15.0  # the test's own patience: the old code never returned on its own


class Trickle:
    """A platform that accepts every request and answers one byte of a never-ending header at a time."""

    def __init__(self) -> None:
        stop = self.stop = threading.Event()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(0.5)
                try:
                    while b"\r\n\r\n" not in self.request.recv(65536):
                        pass
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
                    while not stop.wait(BYTE_EVERY_S):
                        self.request.sendall(b"a")
                except OSError:
                    return

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform():
    server = Trickle()
    yield server
    server.close()


def in_thread(fn):
    """Run ``fn`` on a thread; (finished, seconds, result or exception) after at most GIVE_UP_S."""
    out: dict = {}

    def run():
        t0 = time.monotonic()
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - returned to the test
            out["value"] = exc
        out["s"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(GIVE_UP_S)
    return not t.is_alive(), out.get("s"), out.get("value")


def test_a_trickling_reply_ends_at_the_calls_deadline(platform):
    client = PlatformClient(platform.url, timeout=TIMEOUT_S, retries=1)
    assert client.deadline == 2 * TIMEOUT_S
    finished, seconds, result = in_thread(client.health)
    assert finished, f"the call was still reading a trickle after {GIVE_UP_S} s"
    assert isinstance(result, PlatformError) and "no complete reply" in str(result)
    assert seconds <= client.deadline + 1.0


@pytest.fixture
def receipts(tmp_path, platform):
    cfg_file = tmp_path / "kiosk.toml"
    cfg_file.write_text(
        f'[receipt]\nauthority = "platform"\nplatform_url = "{platform.url}"\n'
        f"platform_timeout_s = {TIMEOUT_S}\nplatform_retries = 1\n"
    )
    cfg = load_config(cfg_file, tmp_path / "state")
    service = ReceiptService(cfg, printer=open_printer("virtual"))
    yield cfg, service
    service.close()


class JpegMaker:
    """The photo engine's stand-in: a real (small) JPEG, as the hand-over checks its bytes."""

    def make(self, still, profile):
        ok, jpg = cv2.imencode(".jpg", np.full((160, 120, 3), 128, np.uint8))
        report = CheckReport(profile, "test", [CheckResult("yaw", 1.0, [-10, 10], True, "pass")])
        return CaptureResult(profile, jpg.tobytes(), report)


def test_the_session_thread_never_waits_for_the_platform(receipts):
    _, service = receipts
    clock, cam, live, maker = Clock(), FakeCamera(), FakeLive(), JpegMaker()
    docs = documents(cities_for)
    s = Session(CFG, cam, live, maker, service.hand_over, docs, lambda p: {"profile": p}, clock=clock)
    s.rig = (clock, cam, live, maker, [])
    to_guidance(s, "id_card", "shenzhen")
    to_review(s)
    s.post("accept")

    def hand_over_turns() -> float:
        longest = 0.0
        s.step()
        end = time.monotonic() + GIVE_UP_S
        while s.state is State.HANDOVER and time.monotonic() < end:
            t0 = time.monotonic()
            s.step()
            longest = max(longest, time.monotonic() - t0)
        return longest

    finished, _, longest = in_thread(hand_over_turns)
    assert finished, "a turn of the session's loop blocked on the platform"
    assert longest < STEP_LIMIT_S, f"a turn took {longest:.1f} s"
    assert s.state is State.FAILSAFE  # the platform never answered: the citizen is told, not frozen
    assert "unavailable" in s.message["detail"]


def test_the_start_check_on_the_session_thread_does_no_network_io(receipts):
    cfg, service = receipts
    posted = []

    class SessionStub:  # what _preflight posts to; the real Service builds cameras and models
        def post(self, name, source="ui", **data):
            posted.append((name, data))

    svc = Service.__new__(Service)
    svc.cfg, svc.receipts, svc.session = cfg, service, SessionStub()
    finished, seconds, first = in_thread(svc._preflight)
    assert finished and seconds < STEP_LIMIT_S and first is None  # nothing known yet: not blocked
    end = time.monotonic() + GIVE_UP_S
    while not posted and time.monotonic() < end:
        time.sleep(0.05)
    assert posted and posted[0][0] == "readiness"  # the worker's answer goes to the idle screen
    refusal = posted[0][1]["message"]
    assert refusal is not None and refusal["en"]
    finished, seconds, again = in_thread(svc._preflight)
    assert finished and seconds < STEP_LIMIT_S and again == refusal
