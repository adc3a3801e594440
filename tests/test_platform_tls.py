"""Citizens' photos travel to the platform over mutual TLS only, and no number is issued before the
terminal's clock is right (issue 21). Real TLS on 127.0.0.1 with certificates made per test run
(tests/pki.py); the reference platform (kiosk.sim.platform) records which terminal issued a number.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk.capture.session import State
from kiosk.clock import NOT_BEFORE, ClockNotSet, SetClock, SynchronisedClock, kernel_synchronised
from kiosk.config import ConfigError, load_config
from kiosk.receipt.authority import LocalAuthority, PlatformAuthority
from kiosk.receipt.issue import issue_receipt, readiness
from kiosk.receipt.numbers import parse
from kiosk.receipt.platform import PlatformClient, PlatformTlsError
from kiosk.service import Service
from kiosk.service_api import call
from kiosk.sim.platform import Platform, PlatformServer, ServerTls
from kiosk.store import Store
from tests.pki import make_pki
from tests.test_receipt_support import jpeg

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full

ROOT = Path(__file__).resolve().parents[1]
UPLOAD = {"profile_id": "id_card", "city": "shenzhen", "region": "440300", "station": "001"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki):
    tls = ServerTls(pki.server.cert, pki.server.key, pki.ca.pem)
    with PlatformServer(platform=Platform(), tls=tls) as srv:
        yield srv


def _client(url, pki, cert=None, **kw):
    files = {"ca": str(pki.ca.pem)}
    if cert is not False:
        issued = cert or pki.terminal
        files |= {"cert": str(issued.cert), "key": str(issued.key)}
    return PlatformClient(url, **files | kw, timeout=5.0, retries=2, backoff=0.01)


def _upload(client, key="session-key-0001"):
    return client.upload(key=key, photo=jpeg(), **UPLOAD)


def _records(srv, pki):
    """The platform's own account of who issued what (its test API, over mutual TLS)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca.pem))
    ctx.load_cert_chain(str(pki.terminal.cert), str(pki.terminal.key))
    with urllib.request.urlopen(srv.url + "/_records", context=ctx, timeout=5) as r:
        return json.loads(r.read())["records"]


# --- mutual TLS works, and the platform knows the terminal ---------------------------------------------


def test_a_number_over_mutual_tls_records_the_terminal(server, pki):
    c = _client(server.url, pki)
    assert server.url.startswith("https://localhost:")
    n = _upload(c)["number"]
    assert parse(n).profile_id == "id_card"
    assert _records(server, pki) == [
        {"number": n, "status": "pending", "document": "id_card", "city": "shenzhen", "station": "001",
         "terminal": "001"}
    ]
    assert server.platform.refusals == []


def test_a_terminal_cannot_ask_for_another_stations_numbers(server, pki):
    """The station header is checked against the certificate: a terminal cannot pose as another."""
    c = _client(server.url, pki)
    with pytest.raises(Exception, match="403.*certificate is for station '001'"):
        c.upload(key="session-key-0002", photo=jpeg(), **(UPLOAD | {"station": "002"}))
    assert server.platform.by_number == {}


def test_the_platform_authority_issues_over_mutual_tls(server, pki, tmp_path):
    authority = PlatformAuthority(_client(server.url, pki), "001")
    assert readiness(authority) is None and authority.problem is None
    with Store(tmp_path) as s:
        r = issue_receipt(s, authority, None, "id_card", "shenzhen", jpeg())
        assert s.number(r.number) is not None
    assert server.platform.by_number[r.number]["terminal"] == "001"


# --- refusals: one line each, never retried, nothing issued -------------------------------------------


def _refused(client, code):
    with pytest.raises(PlatformTlsError) as exc:
        _upload(client)
    assert exc.value.code == f"platform.tls.{code}", str(exc.value)
    assert "\n" not in str(exc.value) and "Traceback" not in str(exc.value)
    return str(exc.value)


def test_refused_without_a_client_certificate(server, pki):
    c = _client(server.url, pki, cert=False)
    msg = _refused(c, "no_client_cert")
    assert "receipt.platform_cert" in msg
    assert c.attempts == 1  # a TLS refusal is not retried: the next try meets the same certificate
    assert server.platform.by_number == {}
    assert _wait(lambda: server.platform.refusals)  # the server thread notes it just after its alert


def test_refused_with_a_certificate_from_another_ca(server, pki):
    foreign = pki.other.issue("foreign-terminal", "001", client=True)
    msg = _refused(_client(server.url, pki, cert=foreign), "client_unknown_ca")
    assert "CA" in msg
    assert server.platform.by_number == {}
    assert _wait(lambda: any("issuer" in r for r in server.platform.refusals))


def test_an_expired_certificate_is_caught_before_sending_and_refused_by_the_platform(server, pki):
    expired = pki.ca.issue("expired-terminal", "001", client=True, expired=True)
    c = _client(server.url, pki, cert=expired)
    msg = _refused(c, "client_cert_expired")
    assert re.search(r"expired on \d{4}-\d\d-\d\d", msg) and c.attempts == 0  # nothing sent
    # and the platform itself refuses it (a terminal whose own check is out of the way)
    c.cert_window = None
    _refused(c, "client_expired")
    assert server.platform.by_number == {}
    assert _wait(lambda: "certificate has expired" in server.platform.refusals)


def test_refused_against_a_server_whose_certificate_does_not_match_the_host(pki):
    other = pki.ca.issue("elsewhere", "platform.elsewhere", hosts=("platform.elsewhere.example",))
    with PlatformServer(tls=ServerTls(other.cert, other.key, pki.ca.pem)) as srv:
        msg = _refused(_client(srv.url, pki), "server_host_mismatch")
        assert "localhost" in msg
        assert srv.platform.by_number == {}


def test_refused_against_a_server_from_an_unknown_ca(pki, server):
    c = PlatformClient(server.url, ca=str(pki.other.pem), cert=str(pki.terminal.cert),
                       key=str(pki.terminal.key), retries=2)
    assert "receipt.platform_ca" in _refused(c, "server_unknown_ca")


def test_readiness_names_the_tls_problem_for_the_console_and_tells_the_citizen_to_come_back(server, pki):
    authority = PlatformAuthority(_client(server.url, pki, cert=False), "001")
    zh, en = readiness(authority)
    assert "platform" in en and zh
    assert authority.problem and "requires a terminal certificate" in authority.problem


def test_no_verification_is_switched_off_anywhere_in_the_package():
    bad = re.compile(
        r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context|verify_mode\s*=\s*0"
    )
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in (ROOT / "kiosk").rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if bad.search(line)
    ]
    assert hits == []


# --- configuration ------------------------------------------------------------------------------------


def _config(tmp_path, body):
    p = tmp_path / "kiosk.toml"
    p.write_text("[receipt]\n" + body, encoding="utf-8")
    return load_config(p, tmp_path / "state")


def test_plain_http_to_a_non_loopback_host_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        _config(tmp_path, 'platform_url = "http://platform.example.gov.cn/api"\n')
    assert str(exc.value).startswith("config key receipt.platform_url: plain http://")
    assert "\n" not in str(exc.value)
    with pytest.raises(Exception, match="receipt.platform_url: plain http://"):
        PlatformClient("http://10.1.2.3:8765")
    for ok in ("http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:8765", "https://p.example"):
        assert _config(tmp_path, f'platform_url = "{ok}"\n').receipt.platform_url == ok


def test_tls_files_must_exist_go_together_and_the_key_stays_private(tmp_path, pki):
    cert, key = pki.terminal.cert, pki.terminal.key
    url = 'platform_url = "https://platform.example"\n'
    files = f'platform_ca = "{pki.ca.pem}"\nplatform_cert = "{cert}"\nplatform_key = "{key}"\n'
    cfg = _config(tmp_path, url + files)
    assert cfg.receipt.platform_key == str(key)
    with pytest.raises(ConfigError, match=r"^config key receipt.platform_ca: No such file"):
        _config(tmp_path, url + f'platform_ca = "{tmp_path}/missing.pem"\n')
    with pytest.raises(ConfigError, match=r"^config key receipt.platform_key: .*go together"):
        _config(tmp_path, url + f'platform_cert = "{cert}"\n')
    loose = tmp_path / "loose.key"
    loose.write_bytes(key.read_bytes())
    loose.chmod(0o644)
    with pytest.raises(ConfigError, match=r"^config key receipt.platform_key: .*readable by others.*0644"):
        _config(tmp_path, url + f'platform_cert = "{cert}"\nplatform_key = "{loose}"\n')


def test_a_key_that_does_not_match_the_certificate_is_one_line(pki):
    other = pki.ca.issue("mismatch", "001", client=True)
    files = {"ca": str(pki.ca.pem), "cert": str(pki.terminal.cert), "key": str(other.key)}
    with pytest.raises(PlatformTlsError, match=r"^the terminal's TLS files are not usable .*key values"):
        PlatformClient("https://localhost:1", **files)


# --- the reference platform's command ---------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kiosk_platform_serve_with_tls_refuses_terminals_without_a_certificate(pki, tmp_path):
    port = _free_port()
    cmd = [sys.executable, "-m", "kiosk.cli", "platform", "serve", "--port", str(port),
           "--state-dir", str(tmp_path), "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
           "--client-ca", str(pki.ca.pem)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"reference platform on https://127.0.0.1:{port}") and str(pki.ca.pem) in line
        url = f"https://localhost:{port}"
        _refused(_client(url, pki, cert=False), "no_client_cert")
        assert parse(_upload(_client(url, pki))["number"])
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run(cmd[:-2], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "go together" in bad.stderr


# --- the clock -------------------------------------------------------------------------------------------


def test_the_clock_believes_timesyncd_or_the_kernel_and_never_a_date_before_the_software(tmp_path):
    flag = tmp_path / "synchronized"
    c = SynchronisedClock(flag=flag, kernel=lambda: False)
    assert "not synchronised" in c.problem()
    flag.touch()
    assert c.problem() is None
    assert SynchronisedClock(flag=tmp_path / "none", kernel=lambda: True).problem() is None
    assert isinstance(kernel_synchronised(), bool)  # adjtimex answers (unsynchronised in a container)
    back = SynchronisedClock(flag=flag, kernel=lambda: True, now=lambda: NOT_BEFORE - 86400 * 400)
    assert "before this software was made" in back.problem()


def test_a_local_number_waits_for_the_clock_and_then_carries_its_date(tmp_path):
    clock = SetClock(t=time.time() - 3 * 86400, synced=False)  # a Pi after a power cut: days behind
    authority = LocalAuthority("001", clock=clock)
    assert readiness(authority) == ("正在等待正确的时间，请稍候再开始拍照。",
                                    "Waiting for the correct time. Please wait a moment before starting.")
    with Store(tmp_path) as s:
        with pytest.raises(ClockNotSet, match="^waiting for the correct time"):
            issue_receipt(s, authority, None, "id_card", "shenzhen", jpeg())
        assert s.numbers() == [] and list(s.photo_dir.iterdir()) == []  # nothing issued, nothing kept
        clock.t, clock.synced = time.time(), True
        r = issue_receipt(s, authority, None, "id_card", "shenzhen", jpeg())
        rec = s.number(r.number)
        assert rec.issued_at == r.issued_at == clock.t  # one reading: the record, number and slip agree
        from datetime import datetime

        assert parse(r.number).day == datetime.fromtimestamp(clock.t, authority.tz).date()


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_a_terminal_started_with_its_clock_set_back_waits_for_the_correct_time(tmp_path):
    """The service, its idle screen (the UI's state), `status` (what the console shows) and Start."""
    clock = SetClock(t=time.time() - 86400 * 2, synced=False)
    cfg = load_config(None, tmp_path / "state")
    cfg = replace(cfg, session=replace(cfg.session, ui_port=0))
    svc = Service(cfg, sim=True, wall_clock=clock)
    svc.readiness_every_s = 0.05
    svc.start()
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    try:

        def ui_state():
            with urllib.request.urlopen(svc.ui.url + "/state.json", timeout=5) as r:
                return json.loads(r.read())

        assert _wait(lambda: (ui_state().get("message") or {}).get("zh", "").startswith("正在等待正确的时间"))
        assert "waiting for the correct time" in ui_state()["message"]["en"].lower()
        numbers = call(svc.api_path, "status")["numbers"]
        assert numbers.startswith("REFUSED: waiting for the correct time: the clock is not synchronised")
        svc.session.post("start")
        assert _wait(lambda: svc.session.events.empty())  # the main loop took the touch
        time.sleep(0.2)
        assert svc.session.state is State.IDLE and svc.session.sessions == 0  # Start refused: no session
        with pytest.raises(ClockNotSet):
            svc.receipts.hand_over(jpeg(), "id_card", "shenzhen")
        assert svc.receipts.store.numbers() == []

        clock.t, clock.synced = time.time(), True  # NTP has set the clock
        assert _wait(lambda: ui_state().get("message") is None)
        assert call(svc.api_path, "status")["numbers"] == "issuing"
        svc.session.post("start")
        assert _wait(lambda: svc.session.state is State.CHOOSE)
    finally:
        svc.stop()
        thread.join(10)
        svc.close()


# --- a whole demo session over mutual TLS, the wall clock stepping back in the middle -----------------------


class SteppingClock(SetClock):
    """Synchronised, but NTP steps it back an hour the first time it is consulted (the hand-over)."""

    def problem(self):
        problem = super().problem()
        self.checks = getattr(self, "checks", 0) + 1
        if self.checks == 1:
            self.t -= 3600.0
        return problem


@pytest.mark.slow
def test_a_demo_session_with_the_platform_authority_over_mutual_tls(server, pki, tmp_path):
    from kiosk.demo import run_demo

    cfg = load_config(None, tmp_path / "state")
    cfg = replace(cfg, receipt=replace(
        cfg.receipt, authority="platform", platform_url=server.url, platform_ca=str(pki.ca.pem),
        platform_cert=str(pki.terminal.cert), platform_key=str(pki.terminal.key),
    ))
    clock = SteppingClock(t=time.time())
    start_t = clock.t
    result = run_demo(cfg, tmp_path / "demo", profile="id_card", city="shenzhen", wall_clock=clock)
    assert result.outcome == "done" and result.number
    rec = server.platform.by_number[result.number]
    assert rec["terminal"] == "001" and rec["station"] == "001"
    assert server.platform.refusals == []
    # the wall clock stepped back during the session: the session's own timings did not (monotonic),
    # and the terminal's record carries the one wall reading taken at the hand-over
    ts = [s["t"] for s in result.states]
    assert ts == sorted(ts) and result.sim_seconds > 0
    with Store(tmp_path / "demo" / "state") as s:
        stored = s.number(result.number)
        assert stored is not None and stored.issued_at == start_t - 3600.0
    assert os.path.getsize(tmp_path / "demo" / "slip.png") > 0


# --- provisioning: the key is made on the terminal, only the request leaves it ------------------------


def test_provision_makes_the_terminal_key_and_prints_a_request_the_platform_ca_signs(tmp_path, pki):
    from cryptography import x509

    root = tmp_path / "sys"
    env = dict(os.environ, KIOSK_PYTHON=sys.executable)
    env.pop("KIOSK_CONFIG", None)
    cmd = [str(ROOT / "hardware/provision.sh"), "--root", str(root), "--no-system", "--station", "001"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    key = root / "etc/kiosk/tls/terminal.key"
    assert key.stat().st_mode & 0o777 == 0o600
    if os.geteuid() == 0:  # owned by the target root's kiosk user (sysusers)
        passwd = (root / "etc/passwd").read_text()
        uid = int(re.search(r"^kiosk:[^:]*:(\d+):", passwd, re.M).group(1))
        assert key.stat().st_uid == uid
    csr_pem = re.search(r"-----BEGIN CERTIFICATE REQUEST-----.*?-----END CERTIFICATE REQUEST-----\n",
                        proc.stdout, re.S).group(0)
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr  # only the request is shown
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == "001"

    # the CA signs it; Python's ssl (OpenSSL 3) takes the provisioned key for mutual TLS
    cert = pki.ca.sign_csr(csr_pem.encode(), "provisioned")
    with PlatformServer(tls=ServerTls(pki.server.cert, pki.server.key, pki.ca.pem)) as srv:
        c = PlatformClient(srv.url, ca=str(pki.ca.pem), cert=str(cert), key=str(key))
        n = _upload(c)["number"]
        assert srv.platform.by_number[n]["terminal"] == "001"

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)  # idempotent
    assert again.returncode == 0 and x509.load_pem_x509_csr(
        re.search(r"-----BEGIN CERTIFICATE REQUEST-----.*?-----END CERTIFICATE REQUEST-----\n",
                  again.stdout, re.S).group(0).encode()
    ).public_key() == csr.public_key()  # the same key: a certificate already signed stays valid
    bad = subprocess.run([*cmd[:-1], "1"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "--station: expected 3 digits" in bad.stderr


def test_the_upload_outbox_waits_for_the_clock_too(server, pki, tmp_path):
    from kiosk.receipt.outbox import run_outbox

    clock = SetClock(synced=False)
    with Store(tmp_path) as s:
        issue_receipt(s, LocalAuthority("001", upload=True), None, "id_card", "shenzhen", jpeg())
        c = _client(server.url, pki)
        with pytest.raises(ClockNotSet):
            run_outbox(s, c, clock=clock)
        assert c.attempts == 0 and [o["state"] for o in s.outbox()] == ["pending"]
        clock.t, clock.synced = time.time(), True
        assert run_outbox(s, c, clock=clock)["sent"] == 1
    assert [r["terminal"] for r in server.platform.records()] == ["001"]


def test_a_tls_refusal_is_one_line_in_the_service_status_and_on_the_idle_screen(server, pki, tmp_path):
    """What the console's `status` shows: the technician's line; the citizen sees the platform is down."""
    cfg = load_config(None, tmp_path / "state")
    foreign = pki.other.issue("svc-foreign", "001", client=True)
    cfg = replace(
        cfg,
        session=replace(cfg.session, ui_port=0),
        receipt=replace(cfg.receipt, authority="platform", platform_url=server.url, platform_retries=0,
                        platform_ca=str(pki.ca.pem), platform_cert=str(foreign.cert),
                        platform_key=str(foreign.key)),
    )
    svc = Service(cfg, sim=True, wall_clock=SetClock())
    svc.readiness_every_s = 0.05
    svc.start()
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    try:
        assert _wait(lambda: call(svc.api_path, "status")["numbers"] != "issuing")
        numbers = call(svc.api_path, "status")["numbers"]
        assert numbers == "REFUSED: the platform does not know the CA of this terminal's certificate " \
                          "(receipt.platform_cert is not from the platform's CA)"
        assert svc.receipts.authority.problem_code == "platform.tls.client_unknown_ca"
        assert _wait(lambda: svc.session.snapshot()["message"] is not None)
        assert "platform" in svc.session.snapshot()["message"]["en"]
    finally:
        svc.stop()
        thread.join(10)
        svc.close()


def test_platform_serve_names_a_missing_or_unusable_tls_file_in_one_line(tmp_path, pki):
    base = [sys.executable, "-m", "kiosk.cli", "platform", "serve", "--port", "0",
            "--state-dir", str(tmp_path)]
    missing = [*base, "--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(pki.server.key),
               "--client-ca", str(pki.ca.pem)]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    unusable = [*base, "--tls-cert", str(junk), "--tls-key", str(pki.server.key),
                "--client-ca", str(pki.ca.pem)]
    for cmd, says in ((missing, "--tls-cert: no such file"), (unusable, "TLS files not usable")):
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
