"""The console over a real pseudo-terminal: the console opens the pty's device like a serial port,
the test types into the other end through pyserial, and a service with the console handlers runs
in-process on its UNIX socket (real store, virtual ESC/POS printer, gpiozero mock pins)."""

from __future__ import annotations

import ctypes
import json
import os
import random
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import serial

from kiosk.config import load_config
from kiosk.console.pin import hash_pin
from kiosk.console.shell import run_console
from kiosk.errors import KioskError
from kiosk.hw.camera import Camera, Frame
from kiosk.maintenance import MaintenanceContext, register_console_handlers
from kiosk.service_api import ServiceApi, socket_path

pytestmark = pytest.mark.slow

PIN = "482916"
PIN_HASH = hash_pin(PIN, n=2**12)
_libc = ctypes.CDLL(None, use_errno=True)


class Terminal:
    """The technician's end: the pty master opened through pyserial, like picocom would hold a port."""

    def __init__(self) -> None:
        self.ser = serial.Serial("/dev/ptmx", 115200, timeout=0.05)
        fd = self.ser.fileno()
        buf = ctypes.create_string_buffer(128)
        if _libc.grantpt(fd) or _libc.unlockpt(fd) or _libc.ptsname_r(fd, buf, 128):
            raise OSError(ctypes.get_errno(), "cannot set up the pty")
        self.device = buf.value.decode()
        self.seen = ""

    def send(self, data: bytes | str) -> None:
        self.ser.write(data.encode() if isinstance(data, str) else data)

    def line(self, text: str) -> None:
        self.send(text + "\r")

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Read until the regex matches the unread output; the output before and at the match is consumed."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.seen)
            if m:
                self.seen = self.seen[m.end() :]
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in console output: {self.seen[-2000:]!r}")
            chunk = self.ser.read(4096)
            self.seen += chunk.decode("utf-8", "replace")

    def drain(self, quiet: float = 0.3) -> str:
        """Everything the console sends until it has been quiet for a moment."""
        out, last = "", time.monotonic()
        while time.monotonic() - last < quiet:
            chunk = self.ser.read(65536)
            if chunk:
                out += chunk.decode("utf-8", "replace")
                last = time.monotonic()
        self.seen = ""
        return out

    def login(self, pin: str = PIN) -> None:
        self.expect("PIN: ")
        self.line(pin)
        self.expect(r"logged in.*\n")
        self.expect("kiosk> ")

    def run(self, command: str, timeout: float = 15.0) -> str:
        """A command line and its output up to the next prompt."""
        self.line(command)
        m = self.expect(r"(?s)(.*?)kiosk> ", timeout)
        out = m.group(1).replace("\r\n", "\n")
        first = out.split("\n", 1)
        return first[1] if len(first) > 1 else ""

    def close(self) -> None:
        self.ser.close()


class LitCamera(Camera):
    """A camera whose picture brightens where the LEDs shine (left LED: left half): enough to check
    that the selftest drives the lights and measures them through the camera."""

    name = "test-camera"

    def __init__(self, lights) -> None:
        self.lights = lights
        self.n = 0
        self.dead = ""  # an LED that does not light up

    def frame(self) -> Frame:
        lv = {k: (0.0 if k == self.dead else v) for k, v in self.lights.levels.items()}
        img = np.full((48, 64, 3), 40, np.uint8)
        img[:, :32] += np.uint8(100 * lv["left"] + 20 * lv["fill"])
        img[:, 32:] += np.uint8(100 * lv["right"] + 20 * lv["fill"])
        self.n += 1
        return Frame(img, time.monotonic(), self.n)

    def still(self) -> np.ndarray:
        return self.frame().rgb

    def describe(self) -> dict:
        return {"backend": self.name, "frames": self.n}


class Session:
    state = "idle"


class Rig:
    """Service (in-process, on the state dir's socket) + console thread on a pty link."""

    def __init__(self, tmp: Path, with_status: bool = True, start: bool = True, **cfg_changes) -> None:
        from kiosk.hw.lights import Lights, pin_factory
        from kiosk.station import open_printer
        from kiosk.store import Store

        self.state = tmp / "state"
        self.state.mkdir()
        self.config_path = tmp / "kiosk.toml"
        self.config_path.write_text(f'[console]\npin_hash = "{PIN_HASH}"\n')
        self.cfg = replace(load_config(self.config_path, self.state).console, **cfg_changes)
        self.store = Store(self.state, durable=False)
        self.lights = Lights({"left": 12, "right": 13, "fill": 18}, pin_factory(True))
        self.printer = open_printer("virtual")
        self.session = Session()
        self.power_calls: list[str] = []
        self.restarts = 0
        self.camera = LitCamera(self.lights)
        self.ctx = MaintenanceContext(
            config=load_config(self.config_path, self.state),
            store=self.store,
            session=self.session,
            lights=self.lights,
            camera=lambda: self.camera,
            reprint=self._reprint,
            printer=self.printer,
            power=self.power_calls.append,
            restart=self._restart,
            log_file=tmp / "kiosk.log",
        )
        (tmp / "kiosk.log").write_text("".join(f"line {i}\n" for i in range(100)) + "evil \x1b[2J end\n")
        self.api = ServiceApi()
        if with_status:  # the service's own status (issue 5's); without it the console falls back
            self.api.register("status", lambda args: {"version": "test", "session": self.session.state})
        register_console_handlers(self.api, self.ctx)
        self.api.serve(socket_path(self.state))
        self.link = tmp / "ttyCONSOLE"
        self.term = self.plug()
        self.stop = threading.Event()
        self.log: list[str] = []
        self.thread = threading.Thread(
            target=run_console,
            args=(self.cfg, self.state, str(self.link), self.stop, self.log.append),
            kwargs={
                "reload": lambda: replace(load_config(self.config_path, self.state).console, **cfg_changes),
                "config_file": self.config_path,
            },
            daemon=True,
        )
        if start:
            self.thread.start()

    def _reprint(self, number: str, actor: str) -> str | None:
        """What the service's receipts do (kiosk.receipt.wiring.ReceiptService.reprint)."""
        from zoneinfo import ZoneInfo

        from kiosk.receipt.issue import reprint

        return reprint(self.store, self.printer, number, ZoneInfo("Asia/Shanghai"), actor=actor)

    def _restart(self) -> None:
        self.restarts += 1

    def plug(self) -> Terminal:
        """A new cable: a new pty behind the same device path (like a USB adapter coming back)."""
        term = Terminal()
        tmp_link = self.link.with_suffix(".new")
        tmp_link.unlink(missing_ok=True)
        os.symlink(term.device, tmp_link)
        os.replace(tmp_link, self.link)
        return term

    def audit(self) -> list[dict]:
        """The console's own entries (the store adds its own, e.g. "reprint", under the same actor)."""
        rows = self.store.audit_log()
        return [r for r in rows if r["actor"] == "console" and r["action"] in ("login", "logout", "command")]

    def commands_audited(self) -> list[tuple[str, str]]:
        out = []
        for r in self.audit():
            d = json.loads(r["detail"])
            out.append((r["action"] if r["action"] != "command" else d["command"], d["result"]))
        return out

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        self.term.close()
        self.api.close()
        self.store.close()
        self.lights.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, idle_timeout_s=60.0)
    yield r
    r.close()


# --- login -----------------------------------------------------------------------------------------


def test_login_then_status(rig):
    t = rig.term
    t.expect("maintenance console")
    t.expect("PIN: ")
    t.line(PIN)
    assert PIN not in t.expect(r"logged in").string  # the PIN is echoed as stars
    t.expect("kiosk> ")
    out = t.run("status")
    assert "version: test" in out and "session: idle" in out
    assert rig.commands_audited()[:2] == [("login", "ok"), ("status", "ok")]
    assert PIN not in json.dumps(rig.store.audit_log())


def test_wrong_pins_delay_grow_then_lockout(tmp_path):
    r = Rig(tmp_path, max_attempts=3, delay_base_s=1.0, delay_max_s=5.0, lockout_s=2.0)
    try:
        t = r.term
        t.expect("PIN: ")
        t.line("1111")
        t.expect("wrong PIN; wait 1 s")
        t0 = time.monotonic()
        t.line(PIN)  # typed during the delay: not an attempt, even when right
        t.expect(r"wait 1 s")
        t.expect("PIN: ")
        assert time.monotonic() - t0 >= 0.9
        t.line("2222")
        t.expect("wrong PIN; wait 2 s")
        t0 = time.monotonic()
        t.expect("PIN: ")
        assert time.monotonic() - t0 >= 1.8  # the second delay is twice the first
        t.line("3333")
        t.expect("locked for 2 s")
        t0 = time.monotonic()
        t.line(PIN)
        t.expect(r"wait \d s")  # the right PIN is refused during the lockout
        t.expect("PIN: ", timeout=5)
        assert time.monotonic() - t0 >= 1.5
        t.line("12ab")  # line noise is not an attempt
        t.expect("6 to 16 digits")
        t.expect("PIN: ")
        t.line(PIN)
        t.expect("logged in")
        results = [res for what, res in r.commands_audited() if what == "login"]
        assert results == ["wrong PIN (1 of 3)", "wrong PIN (2 of 3)", "wrong PIN; locked for 2 s", "ok"]
    finally:
        r.close()


def test_lockout_survives_a_console_restart(tmp_path):
    r = Rig(tmp_path, max_attempts=1, lockout_s=30.0)
    try:
        r.term.expect("PIN: ")
        r.term.line("0000")
        r.term.expect("locked for 30 s")
        r.stop.set()
        r.thread.join(5)
        r.stop.clear()
        r.term.close()
        r.term = r.plug()
        r.thread = threading.Thread(
            target=run_console, args=(r.cfg, r.state, str(r.link), r.stop), daemon=True
        )
        r.thread.start()
        r.term.expect(r"locked after failed logins; try again in \d+ s")
        r.term.line(PIN)
        r.term.expect(r"wait \d+ s")
        assert "logged in" not in r.term.drain()
    finally:
        r.close()


def test_idle_logout(tmp_path):
    r = Rig(tmp_path, idle_timeout_s=1.0)
    try:
        r.term.login()
        t0 = time.monotonic()
        r.term.expect("no input for 1 s: logged out", timeout=5)
        assert time.monotonic() - t0 >= 0.9
        r.term.expect("PIN: ")
        r.term.line("status")  # not logged in: not a command
        r.term.expect("6 to 16 digits")
        assert ("logout", "idle") in r.commands_audited()
    finally:
        r.close()


# --- commands --------------------------------------------------------------------------------------


def test_help_lists_every_command_and_explains_one(rig):
    rig.term.login()
    out = rig.term.run("help")
    from kiosk.console.commands import COMMANDS

    for name, cmd in COMMANDS.items():
        if name == cmd.name:
            assert re.search(rf"^  {name}\s", out, re.M), name
    assert all(len(line) <= 80 for line in out.split("\n"))
    assert "receipt reprint NUMBER" in rig.term.run("help receipt")
    assert "unknown command 'frobnicate'" in rig.term.run("frobnicate now")
    assert rig.term.run('config get "oops').strip() == "error: unbalanced quotes"


def test_line_editing_over_the_pty(rig):
    t = rig.term
    t.login()
    t.send("statux\x7fs\r")  # backspace fixes a typo
    t.expect("version: test")
    t.expect("kiosk> ")
    t.send("reboot --force half typed\x03")  # Ctrl-C abandons the line
    t.expect(r"\^C")
    t.expect("kiosk> ")
    t.send("\x1b[A\x1b[A\r")  # history: up twice is `status` (the abandoned line is not kept)
    t.expect("version: test")
    t.expect("kiosk> ")
    t.send("coun\t\r")
    t.expect("kiosk> ")
    assert rig.power_calls == []
    assert [c for c, _ in rig.commands_audited()] == ["login", "status", "status", "counters"]


def test_parts_lights_camera_printer_selftest(rig):
    t = rig.term
    t.login()
    out = t.run("lights set 30 70")
    assert "left: 0.3" in out and "right: 0.7" in out
    assert rig.lights.levels["right"] == pytest.approx(0.7)
    out = t.run("lights test")
    assert "left: ok, left half +100, right half +0" in out
    assert "right: ok, left half +0, right half +100" in out
    assert "fill: ok, left half +20, right half +20" in out
    assert rig.lights.levels["left"] == pytest.approx(0.3)  # restored after the test
    t.run("lights off")
    assert rig.lights.levels == {"left": 0.0, "right": 0.0, "fill": 0.0}
    assert "backend: test-camera" in t.run("camera")
    out = t.run("camera test")
    assert "size: 64x48" in out and "brightness" in out
    assert "paper_out: no" in t.run("printer status")
    device = rig.printer.device
    assert "test slip printed" in t.run("printer test")
    assert b"KIOSK TEST SLIP" in bytes(device.received) and len(device.slips()) == 1
    out = t.run("selftest", timeout=30)
    for part in ("camera", "lights", "printer", "test_slip"):
        assert re.search(rf"{part}: PASS", out), out
    assert "result: PASS" in out and len(device.slips()) == 2
    rig.camera.dead = "right"
    out = t.run("selftest", timeout=30)
    assert "lights: FAIL no effect: right" in out and "result: FAIL lights" in out
    rig.camera.dead = ""
    device.status.paper_out = True
    out = t.run("selftest", timeout=30)
    assert "printer: FAIL printer reports paper_out" in out and "test_slip: skipped" in out
    assert "result: FAIL printer" in out
    assert ("selftest", "ok: FAIL printer") in rig.commands_audited()
    t.run("lights set 20 20")
    assert t.run("lights set 101 5").strip() == "error: LEFT must be between 0 and 100"
    assert rig.lights.levels["left"] == pytest.approx(0.2)  # refused: nothing changed
    assert ("lights set 101 5", "error: LEFT must be between 0 and 100") in rig.commands_audited()


def test_receipt_reprint_is_audited_and_unknown_numbers_refused(rig):
    from kiosk.receipt.layouts import load_layouts

    city = load_layouts().cities_for("id_card")[0].id
    sid = rig.store.begin_session("id_card", city, "001")
    with rig.store.transaction() as db:
        rig.store.record_number(db, number="3301001000123", session_id=sid, authority="local")
    t = rig.term
    t.login()
    out = t.run("receipt reprint 3301001000123")
    assert "result: reprinted" in out
    assert b"3301001000123" in bytes(rig.printer.device.received) and len(rig.printer.device.slips()) == 1
    assert [j.reprint for j in rig.store.print_jobs("3301001000123")][-1] is True
    assert ("receipt reprint 3301001000123", "ok: reprinted") in rig.commands_audited()
    assert any(r["action"] == "reprint" and r["detail"] == "3301001000123" for r in rig.store.audit_log())
    rig.printer.device.status.cover_open = True
    out = t.run("receipt reprint 3301001000123")
    assert "queued, not printed: printer cover_open" in out
    out = t.run("receipt reprint 999999")
    assert "error: no issued number 999999" in out
    assert ("receipt reprint 999999", "error: no issued number 999999") in rig.commands_audited()
    assert "NUMBER: letters and digits" in t.run("receipt reprint ../../etc")


def test_queue_counters_logs_audit(rig):
    t = rig.term
    t.login()
    assert "total: 0" in t.run("queue")
    assert "upload retry not available" in t.run("queue retry")
    rig.store.bump_counter("sessions", 3)
    assert "sessions: 3" in t.run("counters")
    out = t.run("logs 3")
    assert "line 98" in out and "line 97" not in out and "evil ?[2J end" in out and "\x1b" not in out
    assert "N must be between 1 and 500" in t.run("logs 100000")
    out = t.run("audit 2").split("\n")
    assert re.match(r"- \d\d-\d\d [\d:]{8} console command: logs 3 -> ok: 3 lines$", out[0])
    assert out[1].endswith("logs 100000 -> error: N must be between 1 and")  # wrapped at 80 columns
    assert out[2] == "  500"


def test_config_get_set_and_validation_errors(rig):
    t = rig.term
    t.login()
    out = t.run("config get")
    assert "console.baud: 115200" in out and "console.pin_hash: (set)" in out and "scrypt" not in out
    assert t.run("config get session.countdown_s").strip() == "session.countdown_s: 3"
    out = t.run("config get console")
    assert "console.lockout_s: 900" in out and "session." not in out
    out = t.run("config set session.countdown_s 5")
    assert "takes effect after `service restart`" in out
    assert load_config(rig.config_path).session.countdown_s == 5.0
    assert load_config(rig.config_path).console.pin_hash == PIN_HASH  # the rest of the file kept
    assert "session.countdown_s: must be between 0 and 30" in t.run("config set session.countdown_s 99")
    assert "expected a number" in t.run("config set session.countdown_s soon")
    assert "unknown config key 'session.nope'" in t.run("config set session.nope 1")
    assert "use the `pin` command" in t.run("config set console.pin_hash x")
    assert "usage: config get" in t.run("config set session.countdown_s")
    assert load_config(rig.config_path).session.countdown_s == 5.0
    audited = rig.commands_audited()
    assert ("config set session.countdown_s 5", "ok: session.countdown_s = 5.0") in audited
    assert any(c == "config set session.countdown_s 99" and r.startswith("error:") for c, r in audited)


def test_pin_change(rig):
    t = rig.term
    t.login()
    t.line("pin")
    t.expect("new PIN")
    t.line("135790")
    t.expect("again")
    t.line("135790")
    t.expect("PIN changed")
    new_hash = load_config(rig.config_path).console.pin_hash
    from kiosk.console.pin import verify_pin

    assert verify_pin("135790", new_hash) and not verify_pin(PIN, new_hash)
    assert ("pin", "ok: PIN changed") in rig.commands_audited()
    t.expect("kiosk> ")
    t.line("logout")
    t.expect("PIN: ")
    t.line(PIN)  # the old PIN no longer opens the console, without a restart
    t.expect("wrong PIN")
    t.login("135790")
    t.line("pin")
    t.expect("new PIN")
    t.line("222222")
    t.expect("again")
    t.line("333333")
    t.expect("the PINs differ; nothing changed")
    assert load_config(rig.config_path).console.pin_hash == new_hash
    assert "135790" not in json.dumps(rig.store.audit_log())


def test_reboot_needs_confirmation_and_is_refused_during_a_session(rig):
    t = rig.term
    t.login()
    t.line("reboot")
    t.expect("type yes to confirm: ")
    t.line("no")
    t.expect("cancelled")
    t.expect("kiosk> ")
    rig.session.state = "guidance"
    t.line("reboot")
    t.expect("confirm: ")
    t.line("yes")
    t.expect("a citizen's session is running")
    t.expect("kiosk> ")
    t.line("shutdown --force")
    t.expect("even during a citizen's session\\? type yes to confirm: ")
    t.line("yes")
    t.expect("shutdown in progress")
    t.expect("kiosk> ")
    deadline = time.monotonic() + 5
    while not rig.power_calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rig.power_calls == ["shutdown"]
    audited = rig.commands_audited()
    assert ("reboot", "cancelled") in audited and ("shutdown --force", "ok: shutdown in progress") in audited
    assert any(c == "reboot" and "session is running" in r for c, r in audited)


def test_service_restart_and_update_not_available(rig):
    t = rig.term
    t.login()
    t.line("service restart")
    t.expect("confirm: ")
    t.line("yes")
    t.expect("restarting the kiosk service")
    t.expect("kiosk> ")
    deadline = time.monotonic() + 5
    while not rig.restarts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rig.restarts == 1
    assert "the updater not available" in t.run("update status")


def test_service_down_is_a_clear_error_and_audit_is_spooled(rig):
    t = rig.term
    t.login()
    rig.api.close()
    out = t.run("counters")
    assert "error: the kiosk service is not running" in out or "cannot reach" in out
    spool = rig.state / "console-audit-spool.jsonl"
    assert spool.exists() and "counters" in spool.read_text()
    rig.api = ServiceApi()
    register_console_handlers(rig.api, rig.ctx)
    rig.api.serve(socket_path(rig.state))
    t.run("counters")
    assert not spool.exists()
    cmds = [c for c, _ in rig.commands_audited()]
    assert cmds[-2:] == ["counters", "counters"]  # the spooled entry arrived first


# --- the line itself -------------------------------------------------------------------------------


def test_cable_pulled_mid_command_then_reconnect(rig):
    t = rig.term
    t.login()
    t.send("coun")  # half a command, then the cable goes
    rig.term = rig.plug()  # the path points at the new pty before the old one dies: no race
    t.close()
    rig.term.expect("maintenance console", timeout=10)
    rig.term.expect("PIN: ")  # logged out: a new cable is a new login
    rig.term.line("counters")
    rig.term.expect("6 to 16 digits")
    rig.term.login()
    assert "version: test" in rig.term.run("status")
    assert ("logout", "line lost") in rig.commands_audited()
    assert any("line lost" in m for m in rig.log)


def test_console_waits_for_a_missing_port(tmp_path):
    r = Rig(tmp_path)
    try:
        r.link.unlink()
        r.term.close()
        time.sleep(1.0)
        assert r.thread.is_alive()
        assert any("cannot open" in m for m in r.log)
        r.term = r.plug()
        r.term.login()
        assert "version: test" in r.term.run("status")
    finally:
        r.close()


def _noise(rng: random.Random, i: int) -> bytes:
    """Random bytes, overlong lines, editing keys and controls, long CJK lines. A break on a real
    UART reads as NUL in raw mode (a pty cannot send one), so NULs stand in for breaks."""
    kind = i % 4
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000)))
    if kind == 1:
        return b"x" * rng.randint(150, 5000) + b"\r"
    if kind == 2:
        return bytes(rng.choice(b"\x00\x03\x04\x08\x1b[\x7f\t\r\nAZ09~\xc3\xa9\xff") for _ in range(500))
    return "配置".encode() * 300 + b"\r\n"


def test_fuzz_random_bytes_and_long_lines_then_status(tmp_path):
    # noise that looks like PIN attempts must not lock this test out: no delays, many attempts
    r = Rig(tmp_path, max_attempts=20, delay_base_s=0.0, delay_max_s=0.0)
    try:
        t = r.term
        rng = random.Random(7)
        t.expect("PIN: ")
        for i in range(16):  # at the login prompt
            t.send(_noise(rng, i))
            if i % 4 == 3:
                t.drain(0.1)
        t.drain(0.3)
        t.send(b"\x03")
        t.login()
        for i in range(40):  # logged in; the terminal reads only now and then (write timeouts)
            t.send(_noise(rng, i))
            if i % 8 == 7:
                t.drain(0.1)
        t.drain(0.5)
        t.send(b"\x03")  # abandon whatever partial line the noise left
        # the noise may have held a Ctrl-D on an empty line (a logout): then log in again
        if t.expect("kiosk> |PIN: ").group(0) == "PIN: ":
            t.line(PIN)
            t.expect("kiosk> ")
        t.drain(0.2)
        out = t.run("status")
        assert "version: test" in out
        assert r.thread.is_alive()
        assert all(row["actor"] == "console" for row in r.store.audit_log())
        assert ("login", "ok") in r.commands_audited()
        assert any(res == "unknown command" for _, res in r.commands_audited())
    finally:
        r.close()


def test_service_api_errors_never_reach_the_line_as_tracebacks(rig):
    rig.api.register("console.counters", lambda args: (_ for _ in ()).throw(KioskError("store busy")))
    rig.term.login()
    out = rig.term.run("counters")
    assert out.strip() == "error: store busy"
    assert "Traceback" not in out


def test_status_without_a_service_status_uses_the_console_one(tmp_path):
    r = Rig(tmp_path, with_status=False)
    try:
        r.lights.set({"left": 0.25})
        r.term.login()
        out = r.term.run("status")
        assert re.search(r"^version: \d", out, re.M) and re.search(r"^uptime_s: \d+", out, re.M)
        assert "session: idle" in out and "backend: test-camera" in out and "left: 0.25" in out
        assert "paper_out: no" in out and re.search(r"^disk: [\d.]+ GiB free of", out, re.M)
        assert "queue: (none)" in out
        assert all(len(line) <= 80 for line in out.split("\n"))
    finally:
        r.close()


def test_kiosk_console_command_line(tmp_path):
    """`kiosk console --port DEV` as the systemd unit runs it: its own process, the service on the socket."""
    import subprocess
    import sys

    r = Rig(tmp_path, start=False)
    env = {**os.environ, "KIOSK_CONFIG": str(r.config_path), "KIOSK_STATE_DIR": str(r.state)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "console", "--port", str(r.link), "--baud", "9600"],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        r.term.login()
        r.session.state = "review"
        assert "session: review" in r.term.run("status")
        assert ("login", "ok") in r.commands_audited()
        proc.terminate()  # systemd stopping the unit
        assert proc.wait(10) == 0
        assert r.commands_audited()[-1] == ("logout", "console stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        r.close()
    assert b"Traceback" not in proc.stderr.read()


def test_hash_pin_command_line(tmp_path):
    import subprocess
    import sys

    from kiosk.console.pin import verify_pin

    out = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "console", "--hash-pin"],
        input=b"975310\n",
        capture_output=True,
        check=True,
    ).stdout.decode()
    conf = tmp_path / "k.toml"
    conf.write_text(out)
    assert verify_pin("975310", load_config(conf).console.pin_hash)
    bad = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "console", "--hash-pin"], input=b"12\n", capture_output=True
    )
    assert bad.returncode == 2 and bad.stderr.decode().strip() == "kiosk: the PIN must be 6 to 16 digits"


def test_update_status_and_refusals_through_the_real_updater(rig, tmp_path):
    from kiosk.fleet.updater import Policy, Updater

    (tmp_path / "opt").mkdir()  # a provisioned release root: the console takes the CLI's lock in it
    rig.ctx.updater = Updater(tmp_path / "opt", None, rig.state, Policy())
    t = rig.term
    t.login()
    out = t.run("update status")
    assert "phase: idle" in out and "current: -" in out
    t.line("update rollback")
    t.expect("type yes to confirm: ")
    t.line("yes")
    t.expect("error: no previous release to roll back to")
    t.expect("kiosk> ")
    rig.session.state = "countdown"
    t.line("update apply /tmp/x.kbundle")
    t.expect("confirm: ")
    t.line("yes")
    t.expect("a citizen's session is running")
    t.expect("kiosk> ")
    assert "usage: update" in t.run("update apply")
    audited = rig.commands_audited()
    assert ("update rollback", "error: no previous release to roll back to") in audited


def test_tests_that_drive_the_hardware_wait_for_an_idle_terminal(rig):
    t = rig.term
    t.login()
    rig.session.state = "live"
    for command in (
        "selftest",
        "lights test",
        "lights set 10 10",
        "camera test",
        "printer test",
        "receipt reprint 1",
    ):
        assert "a citizen's session is running" in t.run(command), command
    assert "levels" in t.run("lights") and "paper_out: no" in t.run("printer")  # looking is fine
    assert rig.printer.device.received == bytearray() or b"KIOSK TEST SLIP" not in bytes(
        rig.printer.device.received
    )
    assert rig.lights.levels == {"left": 0.0, "right": 0.0, "fill": 0.0}


def test_cable_pulled_while_a_command_runs(rig):
    started = threading.Event()

    def slow_counters(args):
        started.set()
        time.sleep(0.5)
        return {"sessions": 1}

    rig.api.register("console.counters", slow_counters)
    t = rig.term
    t.login()
    t.line("counters")
    assert started.wait(5)
    rig.term = rig.plug()
    t.close()  # gone before the answer is written
    rig.term.login()
    assert "version: test" in rig.term.run("status")
    assert rig.thread.is_alive()
    assert ("counters", "ok") in rig.commands_audited() and ("logout", "line lost") in rig.commands_audited()
