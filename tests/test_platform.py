"""The platform client against the reference platform over real HTTP on 127.0.0.1, with its faults."""

from __future__ import annotations

import socket
import time

import pytest

from kiosk.receipt.authority import PlatformAuthority
from kiosk.receipt.issue import issue_receipt
from kiosk.receipt.numbers import parse
from kiosk.receipt.platform import PlatformClient, PlatformError, PlatformRejected
from kiosk.sim.platform import Faults, Platform, PlatformServer
from kiosk.store import Store
from tests.test_receipt_support import jpeg

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full


@pytest.fixture
def server():
    with PlatformServer(platform=Platform(faults=Faults())) as srv:
        yield srv


def _client(url, **kw):
    return PlatformClient(
        url, timeout=kw.pop("timeout", 2.0), retries=kw.pop("retries", 3), backoff=0.01, **kw
    )


def _upload(client, key="session-key-0001", photo=None):
    return client.upload(
        key=key, photo=photo or jpeg(), profile_id="id_card", city="shenzhen", region="440300", station="001"
    )


def test_same_key_same_number_and_a_new_key_a_new_number(server):
    c = _client(server.url)
    photo = jpeg()
    a, b = _upload(c, photo=photo), _upload(c, photo=photo)
    assert a["number"] == b["number"] and parse(a["number"]).profile_id == "id_card"
    assert _upload(c, key="session-key-0002")["number"] != a["number"]
    with pytest.raises(PlatformRejected, match="409"):
        _upload(c, photo=jpeg(shade=90))  # the key reused for another photo


def test_timeout_after_issue_retries_and_gets_the_same_number(server):
    server.platform.faults.slow_next = 1
    server.platform.faults.slow_s = 1.0
    c = _client(server.url, timeout=0.3)
    n = _upload(c)["number"]
    assert c.attempts == 2  # the first reply was lost to the timeout
    assert len(server.platform.by_number) == 1 and n in server.platform.by_number


@pytest.mark.parametrize("fault", ["fail_next", "malformed_next"])
def test_5xx_and_malformed_replies_are_retried(server, fault):
    setattr(server.platform.faults, fault, 2)
    c = _client(server.url)
    n = _upload(c)["number"]
    assert c.attempts == 3 and parse(n)


def test_gives_up_in_one_line_when_the_platform_keeps_failing(server):
    server.platform.faults.fail_next = 10
    c = _client(server.url, retries=2)
    with pytest.raises(PlatformError, match="unavailable after 3 tries") as exc:
        _upload(c)
    assert "\n" not in str(exc.value) and server.platform.by_number == {}


def test_platform_down_is_known_before_the_citizen_starts(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    authority = PlatformAuthority(_client(f"http://127.0.0.1:{port}", retries=1), "001")
    with pytest.raises(PlatformError, match="unavailable"):
        authority.ready()


def test_issue_through_the_platform_then_review(server, tmp_path):
    c = _client(server.url)
    with Store(tmp_path) as s:
        r = issue_receipt(s, PlatformAuthority(c, "001"), None, "exit_entry", "guangzhou", jpeg())
        rec = s.number(r.number)
        assert rec.authority == "platform" and rec.review == "pending"
        assert [o["state"] for o in s.outbox()] == ["sent"]
        assert c.review(r.number) == "approved"
    server.platform.faults.review = "reject"
    n2 = _upload(c, key="another-session-key")["number"]
    assert c.review(n2) == "rejected"


def test_outbox_uploads_local_numbers_polls_review_and_starts_retention(server, tmp_path):
    from kiosk.receipt.authority import LocalAuthority
    from kiosk.receipt.outbox import run_outbox

    c = _client(server.url, retries=0)
    with Store(tmp_path) as s:
        a = LocalAuthority("001", upload=True)
        r1 = issue_receipt(s, a, None, "id_card", "shenzhen", jpeg())
        r2 = issue_receipt(s, a, None, "driving_licence", "dongguan", jpeg(shade=120))
        server.platform.faults.fail_next = 1  # the first upload meets a 503
        t = 1_000.0 + s.outbox()[0]["next_attempt_at"]
        assert run_outbox(s, c, now=t) == {
            "sent": 1,
            "confirmed": 0,
            "rejected": 0,
            "pending_review": 0,
            "failed": 1,
        }
        assert set(server.platform.by_number) == {r2.number}  # the platform keeps the terminal's number
        failed = s.outbox()[0]
        assert failed["state"] == "pending" and "HTTP 503" in failed["last_error"]
        assert run_outbox(s, c, now=t + 10) == {
            "sent": 0,
            "confirmed": 1,
            "rejected": 0,
            "pending_review": 0,
            "failed": 0,
        }  # r1 waits for its back-off; r2 is approved
        assert s.number(r2.number).review == "approved"
        server.platform.faults.review = "reject"
        out = run_outbox(s, c, now=t + 4000)
        assert out["sent"] == 1 and set(server.platform.by_number) == {r1.number, r2.number}
        assert run_outbox(s, c, now=t + 4001)["rejected"] == 1
        assert s.number(r1.number).review == "rejected"
        assert [o["state"] for o in s.outbox()] == ["rejected", "confirmed"]
        # both are settled: the photos go after the retention period
        assert s.purge(30, now=time.time() + 31 * 86400)["photos_deleted"] == 2


def test_recovery_after_a_crash_between_upload_and_commit_gets_the_same_number(server, tmp_path):
    from kiosk.receipt.issue import recover
    from kiosk.station import open_printer

    c = _client(server.url)
    authority = PlatformAuthority(c, "001")
    photo = jpeg()
    with Store(tmp_path) as s:
        sid = s.begin_session("social_security", "guangzhou", "001")
        s.write_photo_file(sid, photo)
        # the platform issued a number, then the power went before the terminal committed it
        lost = c.upload(
            key=sid,
            photo=photo,
            profile_id="social_security",
            city="guangzhou",
            region="440100",
            station="001",
        )["number"]
        printer = open_printer("virtual")
        out = recover(s, authority, printer)
        assert out["reissued"] == [lost] and len(server.platform.by_number) == 1
        assert s.number(lost).session_id == sid and s.session(sid)["outcome"] == "issued_after_recovery"
        assert all(j.state == "printed" for j in s.print_jobs(lost))


def test_readiness_message_when_the_platform_is_down():
    from kiosk.receipt.issue import readiness
    from kiosk.sim.platform import PlatformServer

    with PlatformServer() as srv:
        url = srv.url
        assert readiness(PlatformAuthority(_client(url), "001")) is None
    zh, en = readiness(PlatformAuthority(_client(url, retries=0, timeout=0.5), "001"))
    assert "平台" in zh and "platform" in en


def test_platform_serve_command_over_real_http(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiosk.cli",
            "platform",
            "serve",
            "--state-dir",
            str(tmp_path),
            "--port",
            "0",
            "--review",
            "reject",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("reference platform on http://127.0.0.1:"), line
        c = _client(line.split()[-1])
        c.health()
        n = _upload(c)["number"]
        assert c.review(n) == "rejected"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
