"""Console parts without a line: editor keys and noise, PIN hashes, attempt limits, config edits, text."""

from __future__ import annotations

import json
import os
import stat
import tomllib

import pytest

from kiosk import config_edit
from kiosk.config import ConfigError, ConsoleConfig, load_config
from kiosk.console.guard import LoginGuard
from kiosk.console.lineedit import EndOfInput, Interrupt, Line, LineEditor, TooLong
from kiosk.console.pin import hash_pin, verify_pin
from kiosk.console.text import WIDTH, render, to_terminal
from kiosk.errors import InputError

# --- line editor -----------------------------------------------------------------------------------


def test_editing_keys_and_echo():
    ed = LineEditor()
    assert ed.feed(b"stat") == []
    assert ed.take_output() == b"stat"
    ed.feed(b"x\x7f")  # DEL erases like Backspace
    assert ed.take_output() == b"x\b \b"
    assert ed.feed(b"us\r\n") == [Line("status")]  # CRLF is one Enter
    assert ed.take_output() == b"us\r\n"
    assert ed.feed(b"abc\x08\x08\r") == [Line("a")]
    assert ed.feed(b"junk\x03") == [Interrupt()]
    assert ed.take_output().endswith(b"^C\r\n")
    assert ed.feed(b"\n") == [Line("")]  # the interrupted text is gone
    assert ed.feed(b"\x04") == [EndOfInput()]


def test_history_with_arrow_keys():
    ed = LineEditor()
    ed.feed(b"status\rcounters\r")
    ed.take_output()
    assert ed.feed(b"\x1b[A\x1b[A\r") == [Line("status")]
    ed.feed(b"\x1b[A")  # newest first
    assert ed.text == "status"
    ed.feed(b"\x1b[B\x1b[B")  # back down to the (empty) line being typed
    assert ed.text == ""
    ed.feed(b"\x1bOA")  # SS3 form (application cursor keys)
    assert ed.text == "status"


def test_noise_is_ignored_and_overlong_lines_are_refused():
    ed = LineEditor(max_len=10)
    # NUL (a break), other controls, invalid UTF-8, a runaway escape sequence
    events = ed.feed(b"\x00\x01\xff\xfe\x1b[99999999999999999999Zst\x1b\x1b\xc3at\x9b")
    assert events == []
    assert ed.text == "stat"
    ed.reset()
    assert ed.feed(b"x" * 50 + b"\r") == [TooLong(10)]
    out = ed.take_output()
    assert out.count(b"\x07") == 1 and out.count(b"x") == 10  # one bell, echo stops at the limit
    assert ed.feed(b"ok\r") == [Line("ok")]


def test_utf8_split_across_reads_and_wide_backspace():
    ed = LineEditor()
    data = "灯".encode()
    ed.feed(data[:1])
    ed.feed(data[1:])
    assert ed.text == "灯"
    ed.take_output()
    ed.feed(b"\x7f")
    assert ed.take_output() == b"\b\b  \b\b"  # a wide character takes two columns


def test_secret_entry_echoes_stars_and_skips_history():
    ed = LineEditor()
    ed.reset("PIN: ", secret=True)
    assert ed.feed(b"1234\r") == [Line("1234")]
    assert b"1234" not in ed.take_output()
    assert ed.history == []


def test_tab_completion():
    from kiosk.console.commands import completions

    ed = LineEditor(completer=completions)
    ed.feed(b"sta\t")
    assert ed.text == "status "
    ed.reset()
    ed.feed(b"config s\t")
    assert ed.text == "config set "
    ed.reset("kiosk> ")
    ed.take_output()
    ed.feed(b"s\t")  # selftest, service, shutdown, status: listed, line kept
    out = ed.take_output().decode()
    assert "selftest" in out and "shutdown" in out and out.endswith("kiosk> s")


# --- PIN and attempts ------------------------------------------------------------------------------


def test_pin_hash_round_trip_and_salt():
    h1, h2 = hash_pin("246813", n=2**10), hash_pin("246813", n=2**10)
    assert h1 != h2  # salted
    assert verify_pin("246813", h1) and verify_pin("246813", h2)
    assert not verify_pin("246814", h1)
    assert not verify_pin("246813", "scrypt$1048576$8$1$AAAA$AAAA")  # too costly: refused, no hang
    assert not verify_pin("246813", "garbage")
    with pytest.raises(InputError):
        hash_pin("12a4")


def test_guard_delays_grow_then_lock_and_persist(tmp_path):
    now = [1000.0]
    cfg = ConsoleConfig(max_attempts=4, delay_base_s=2.0, delay_max_s=5.0, lockout_s=60.0)
    g = LoginGuard(cfg, tmp_path, clock=lambda: now[0])
    assert g.wait_s() == 0
    assert g.failure() == pytest.approx(2.0)
    now[0] += 2.0
    assert g.failure() == pytest.approx(4.0)
    now[0] += 4.0
    assert g.failure() == pytest.approx(5.0)  # capped
    now[0] += 5.0
    assert g.failure() == pytest.approx(60.0) and g.locked
    # a restarted console process sees the same lockout
    g2 = LoginGuard(cfg, tmp_path, clock=lambda: now[0])
    assert g2.locked and g2.wait_s() == pytest.approx(60.0)
    now[0] += 60.0
    assert g2.wait_s() == 0 and not g2.locked and g2.failures == 0


def test_guard_damaged_state_file_stays_locked(tmp_path):
    (tmp_path / "console-login.json").write_text("{not json")
    g = LoginGuard(ConsoleConfig(lockout_s=30.0), tmp_path)
    assert g.locked


def test_guard_makes_its_missing_state_folder_owner_only(tmp_path):
    """A wrong PIN is often the first thing that needs the state folder: it is made 0700 (also its
    missing parents) and the login state 0600, whatever the umask would have given."""
    state = tmp_path / "var" / "kiosk"
    old = os.umask(0o022)
    try:
        LoginGuard(ConsoleConfig(), state).failure()
    finally:
        os.umask(old)
    path = state / "console-login.json"
    assert json.loads(path.read_text())["failures"] == 1
    assert path.stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700 and state.parent.stat().st_mode & 0o777 == 0o700


def test_guard_state_reaches_the_disk_before_the_next_guess(tmp_path, monkeypatch):
    """Pulling the power right after a wrong PIN must not lose the count: the new state is fsynced
    in its file before the rename and the folder after it (what a power cut keeps)."""
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        data = b"" if stat.S_ISDIR(st.st_mode) else os.pread(fd, 4096, 0)
        events.append(("fsync", st.st_ino, data))
        return real_fsync(fd)

    def replace(src, dst, *a, **kw):
        events.append(("replace", os.stat(src).st_ino, str(dst)))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    now = [1000.0]
    cfg = ConsoleConfig(max_attempts=3, delay_base_s=1.0, lockout_s=60.0)
    g = LoginGuard(cfg, tmp_path, clock=lambda: now[0])
    path = tmp_path / "console-login.json"
    for n in (1, 2, 3):
        events.clear()
        g.failure()
        now[0] += 10.0
        ino, folder = path.stat().st_ino, tmp_path.stat().st_ino
        kinds = [(e[0], e[1]) for e in events]
        assert kinds == [("fsync", ino), ("replace", ino), ("fsync", folder)], kinds
        assert json.loads(events[0][2])["failures"] == n  # the fsynced bytes are the new count
        assert events[1][2] == str(path)
    g2 = LoginGuard(cfg, tmp_path, clock=lambda: now[0])  # the console after the power came back
    assert g2.locked and g2.failures == 3 and g2.wait_s() == pytest.approx(50.0)


@pytest.mark.parametrize(
    "content",
    [
        b"",  # a rename that reached the disk before the data (no fsync)
        b'{"failures": 4, "not_before": 0.0, "locked_',  # torn
        b"\xff\xfe{\x00",  # not UTF-8
        b"\x00" * 64,  # a block of zeros
        b"null",
        b'["failures", 4]',
        b'{"failures": 4, "not_before": 0.0}',
        b'{"failures": "x", "not_before": 0.0, "locked_until": 0.0, "lockouts": 0}',
        b'{"failures": 1e999, "not_before": 0.0, "locked_until": 0.0, "lockouts": 0}',
        b'{"failures": 0, "not_before": 0.0, "locked_until": NaN, "lockouts": 1}',
        b'{"failures": 0, "not_before": -Infinity, "locked_until": 0.0, "lockouts": 0}',
        b'{"failures": -3, "not_before": 0.0, "locked_until": 0.0, "lockouts": 0}',
        b"[" * 100_000,  # past the parser's recursion limit
    ],
    ids=[
        "empty",
        "torn",
        "not-utf8",
        "zeros",
        "null",
        "list",
        "missing-key",
        "string-count",
        "overflow",
        "nan",
        "minus-inf",
        "negative",
        "too-deep",
    ],
)
def test_guard_corrupt_state_fails_closed_and_is_logged(tmp_path, content):
    """A torn or corrupt login state is not a fresh start: the console is locked for the base lockout,
    the log says why (naming the file), and a restart neither lifts nor renews that lockout."""
    now = [5000.0]
    cfg = ConsoleConfig(max_attempts=5, lockout_s=900.0)
    path = tmp_path / "console-login.json"
    path.write_bytes(content)
    logged: list[str] = []
    g = LoginGuard(cfg, tmp_path, clock=lambda: now[0], log=logged.append)
    assert g.locked and g.wait_s() == pytest.approx(900.0)
    assert len(logged) == 1 and str(path) in logged[0] and "locked" in logged[0]
    now[0] += 300.0
    restarted = LoginGuard(cfg, tmp_path, clock=lambda: now[0], log=logged.append)
    assert restarted.locked and restarted.wait_s() == pytest.approx(600.0) and len(logged) == 1
    now[0] += 600.0
    assert restarted.wait_s() == 0 and not restarted.locked  # then attempts again, as after a lockout


def test_guard_with_a_huge_lockout_count_stays_capped(tmp_path):
    """A count of lockouts far past the day's cap (an old or edited file) still gives a day, no crash."""
    now = [0.0]
    path = tmp_path / "console-login.json"
    path.write_text(json.dumps({"failures": 4, "not_before": 0.0, "locked_until": 0.0, "lockouts": 5000}))
    g = LoginGuard(ConsoleConfig(max_attempts=5, lockout_s=60.0), tmp_path, clock=lambda: now[0])
    assert g.failure() == pytest.approx(86400.0) and g.locked


def test_guard_state_that_cannot_be_read_or_saved_is_logged(tmp_path):
    """No place for the login state (a file where the folder should be): what it held is unknown, so
    the console starts locked; the log says so and that the state is not saved; the attempts are
    still limited within this process."""
    now = [0.0]
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    logged: list[str] = []
    cfg = ConsoleConfig(max_attempts=5, delay_base_s=2.0, lockout_s=60.0)
    g = LoginGuard(cfg, blocker / "kiosk", clock=lambda: now[0], log=logged.append)
    assert g.locked and g.wait_s() == pytest.approx(60.0)
    assert len(logged) == 2 and "cannot be read" in logged[0] and "not saved" in logged[1]
    assert all(str(blocker) in line for line in logged)
    now[0] += 60.0
    assert g.wait_s() == 0 and g.failure() == pytest.approx(2.0) and g.failures == 1
    assert len(logged) == 4 and "not saved" in logged[-1]


# --- config get/set --------------------------------------------------------------------------------


def test_config_set_validates_and_writes_the_technicians_file_atomically(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[session]\ncountdown_s = 3.0\n\n[hardware]\ncamera = "sim"\n')
    base_before = path.read_bytes()
    local = tmp_path / "local" / "kiosk.toml"
    assert config_edit.set_value(path, "session.max_retakes", "4") == 4
    assert config_edit.set_value(path, "vision.iris", "off") is False
    assert config_edit.set_value(path, "hardware.camera_device", 'a "quoted" path\\x') == 'a "quoted" path\\x'
    assert path.read_bytes() == base_before  # the base file is root's: never written
    data = tomllib.loads(local.read_text())
    assert data["session"] == {"max_retakes": 4} and data["vision"]["iris"] is False
    cfg = load_config(path)
    assert cfg.session.max_retakes == 4 and cfg.session.countdown_s == 3.0
    assert cfg.hardware.camera_device == 'a "quoted" path\\x' and not cfg.source.fallback
    before = local.read_bytes()
    with pytest.raises(ConfigError, match="session.max_retakes: must be between 0 and 10"):
        config_edit.set_value(path, "session.max_retakes", "11")
    with pytest.raises(InputError, match="expected a whole number"):
        config_edit.set_value(path, "session.max_retakes", "many")
    with pytest.raises(InputError, match="unknown config key 'session.nope'"):
        config_edit.set_value(path, "session.nope", "1")
    with pytest.raises(InputError, match="is a section"):
        config_edit.set_value(path, "session", "1")
    with pytest.raises(InputError, match="use the `pin` command"):
        config_edit.set_value(path, "console.pin_hash", "x")
    with pytest.raises(ConfigError, match="pin_hash"):
        config_edit.set_value(path, "console.pin_hash", "x", allow_secret=True)
    with pytest.raises(InputError, match="control characters"):
        config_edit.set_value(path, "session.default_profile", "id\x1b[2J")
    assert local.read_bytes() == before  # refused changes leave the file as it was
    left = sorted(p.name for p in local.parent.iterdir())
    assert left == [".config.lock", "kiosk.toml"]  # no temp files left


def test_config_set_keeps_the_comments_and_layout_of_the_file(config_files):
    path, local = config_files(
        "# changed on site, ticket 4711\n[session]\ncountdown_s = 4.0  # the elderly need longer\n\n"
        "[receipt]\npaper_mm = 80\n"
    )
    config_edit.set_value(path, "session.countdown_s", "5")
    config_edit.set_value(path, "session.max_retakes", "3")
    assert local.read_text() == (
        "# changed on site, ticket 4711\n[session]\ncountdown_s = 5.0  # the elderly need longer\n"
        "max_retakes = 3\n\n[receipt]\npaper_mm = 80\n"
    )
    with pytest.raises(ConfigError, match="printer_target: usb printer needs VID:PID"):
        config_edit.set_value(path, "receipt.printer", "usb")  # no target yet: refused
    config_edit.set_value(path, "receipt.printer", "virtual")
    assert load_config(path).receipt.paper_mm == 80


def test_config_get_masks_the_pin_hash():
    cfg = load_config(None)
    listing = config_edit.keys(cfg)
    assert listing["console.baud"] == 115200 and listing["console.pin_hash"] == "(not set)"
    assert "state_dir" not in listing
    assert config_edit.get(cfg, "session.countdown_s") == {"session.countdown_s": cfg.session.countdown_s}
    section = config_edit.get(cfg, "console")
    assert (
        section["console.idle_timeout_s"] == cfg.console.idle_timeout_s and "session.steady_s" not in section
    )
    assert config_edit.is_secret("receipt.platform_token") and not config_edit.is_secret("console.port")
    with pytest.raises(InputError, match="unknown config key 'sess'"):
        config_edit.get(cfg, "sess")


# --- terminal text ---------------------------------------------------------------------------------


def test_output_is_80_columns_and_has_no_control_characters():
    text = "log: " + "word " * 40 + "\x1b[2J evil \x07 bell " + "灯" * 60
    out = to_terminal(text).decode()
    assert "\x1b" not in out and "\x07" not in out
    from kiosk.console.lineedit import char_width

    for line in out.split("\r\n"):
        assert sum(char_width(c) for c in line) <= WIDTH
    assert render({"a": {"b": 1.5, "c": None}, "d": []}) == ["a:", "  b: 1.5", "  c: -", "d: (none)"]


def test_render_of_the_audit_detail_is_json():
    from kiosk.console.audit import detail_of

    d = json.loads(detail_of("config set x " + "y" * 1000, "ok"))
    assert d["result"] == "ok" and len(d["command"]) <= 300
    assert os.environ.get("NOPE") is None


def test_both_ends_of_the_audit_append_a_line_per_entry(tmp_path):
    """The console's spool (service down) and the service's fallback log (no store) each append one
    line per entry through kiosk.durable.append_line."""
    from kiosk.console.audit import SPOOL_NAME, ConsoleAudit
    from kiosk.maintenance.audit import FALLBACK_NAME, AuditSink
    from kiosk.service_api import ServiceDown

    class Down:
        def call(self, *args, **kwargs):
            raise ServiceDown("not running")

    console = ConsoleAudit(Down(), tmp_path)
    for n in range(3):
        console.record("command", f"status {n}", "error: not running")
    spool = tmp_path / SPOOL_NAME
    commands = [json.loads(json.loads(x)["detail"])["command"] for x in spool.read_text().splitlines()]
    assert commands == ["status 0", "status 1", "status 2"]
    assert spool.stat().st_mode & 0o777 == 0o600  # the first entry is written whole, the next appended

    sink = AuditSink(store=None, state_dir=tmp_path / "service")
    sink.record("console", "command", "a")
    sink.record("console", "command", "b")
    assert [r["detail"] for r in sink.tail(5).rows] == ["a", "b"]
    assert (tmp_path / "service" / FALLBACK_NAME).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "service").stat().st_mode & 0o777 == 0o700  # a folder it made is owner-only


# --- audit logs after a power cut ------------------------------------------------------------------


class _ServiceDown:
    def call(self, *args, **kwargs):
        from kiosk.service_api import ServiceDown

        raise ServiceDown("not running")


class _ServiceUp:
    def __init__(self):
        self.got = []

    def call(self, method, timeout=None, **item):
        assert method == "console.audit"
        self.got.append(item)
        return "recorded"


def _torn(line: bytes, cut: str) -> bytes:
    """``line`` as a power cut leaves it: no newline, cut in the middle or inside the é's two bytes."""
    at = line.index("é".encode()) + 1 if cut == "mid-character" else len(line) // 2
    return line[:at]


@pytest.mark.parametrize("cut", ["mid-line", "mid-character"])
def test_console_spool_survives_a_torn_last_line(tmp_path, cut):
    """A torn last line of the spool loses that entry only: the good ones before it are kept and
    forwarded, the next entry is not glued to it, and the loss itself reaches the audit."""
    from kiosk.console.audit import SPOOL_NAME, ConsoleAudit

    down = ConsoleAudit(_ServiceDown(), tmp_path)
    down.record("command", "status 0", "error: not running")
    down.record("command", "config set ui.name café", "error: not running")
    spool = tmp_path / SPOOL_NAME
    first, second = spool.read_bytes().splitlines(keepends=True)
    spool.write_bytes(first + _torn(second, cut))
    down.record("command", "status 2", "error: not running")
    assert spool.stat().st_mode & 0o777 == 0o600

    up = _ServiceUp()
    ConsoleAudit(up, tmp_path).record("command", "status 3", "ok")
    commands = [i["action"] + " " + json.loads(i["detail"])["command"] for i in up.got]
    assert commands == ["command status 0", "spool ", "command status 2", "command status 3"]
    assert "1 damaged line" in json.loads(up.got[1]["detail"])["result"]
    assert not spool.exists()


@pytest.mark.parametrize("cut", ["mid-line", "mid-character"])
def test_fallback_audit_log_survives_a_torn_last_line(tmp_path, config_files, cut):
    """The service's fallback log with a torn last line: `audit` shows every good entry and says
    how many lines were damaged; the next entry starts on a fresh line and is read back."""
    from kiosk.console.audit import detail_of
    from kiosk.maintenance import MaintenanceContext
    from kiosk.maintenance.audit import FALLBACK_NAME
    from kiosk.maintenance.handlers import ConsoleHandlers

    state = tmp_path / "state"
    base, _ = config_files()
    handlers = ConsoleHandlers(MaintenanceContext(config=load_config(base, state)))
    handlers.audit_record({"action": "command", "detail": detail_of("status", "ok")})
    handlers.audit_record({"action": "command", "detail": detail_of("config set ui.name café", "ok")})
    log = state / FALLBACK_NAME
    first, second = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(first + _torn(second, cut))

    def shown() -> list[str]:
        return [line.split(" console ", 1)[-1] for line in handlers.audit_tail({"n": 10})]

    assert shown()[0] == "command: status -> ok" and "1 damaged line" in shown()[-1]
    handlers.audit_record({"action": "command", "detail": detail_of("counters", "ok")})
    assert shown()[:2] == ["command: status -> ok", "command: counters -> ok"]
    assert len(shown()) == 3 and "1 damaged line" in shown()[-1]
    assert log.read_bytes().startswith(first + _torn(second, cut) + b"\n{")


def test_fallback_audit_lines_that_are_not_entries_count_as_damaged(tmp_path):
    """JSON that is not an entry (a list, a missing field, a time no clock can show) is damaged,
    not a failure of the whole `audit` command."""
    from kiosk.maintenance.audit import FALLBACK_NAME, AuditSink

    sink = AuditSink(store=None, state_dir=tmp_path)
    sink.record("console", "command", "a")
    with open(tmp_path / FALLBACK_NAME, "ab") as fh:
        fh.write(b'[1, 2]\n{"actor": "console", "action": "x", "detail": "y"}\n')
        fh.write(b'{"at": 1e300, "actor": "console", "action": "x", "detail": "y"}\n\x00\x00\x00\n')
    sink.record("console", "command", "b")
    tail = sink.tail(10)
    assert [r["detail"] for r in tail.rows] == ["a", "b"] and tail.damaged == 4
    assert [r["detail"] for r in sink.tail(1).rows] == ["b"]


def test_console_spool_creates_its_missing_folder_owner_only(tmp_path):
    """The first entry spooled into a state folder that does not exist yet is kept: the folders are
    made owner-only (0700), the spool 0600."""
    from kiosk.console.audit import SPOOL_NAME, ConsoleAudit

    state = tmp_path / "var" / "kiosk"
    ConsoleAudit(_ServiceDown(), state).record("login", "", "ok")
    spool = state / SPOOL_NAME
    assert [json.loads(x)["action"] for x in spool.read_text().splitlines()] == ["login"]
    assert spool.stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700 and state.parent.stat().st_mode & 0o777 == 0o700


def test_console_spool_that_cannot_be_written_is_reported(tmp_path):
    """No place for the spool (a file where the folder should be): the technician and the log are
    told that the entry was not kept, instead of silence."""
    from kiosk.console.shell import Console

    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    logged = []
    console = Console(ConsoleConfig(), _ServiceDown(), blocker / "console", log=logged.append)
    console.audit.record("login", "", "ok")
    lost = [line for line in logged if "not kept" in line]  # the login state says its own (guard)
    assert len(lost) == 1 and str(blocker) in lost[0]


def test_audit_detail_nested_too_deep_is_shown_as_text(tmp_path, config_files):
    """A detail that is JSON nested past the parser's recursion (any local client may send one) is
    shown as it is, not a failure of `audit`."""
    from kiosk.maintenance import MaintenanceContext
    from kiosk.maintenance.handlers import ConsoleHandlers

    base, _ = config_files()
    handlers = ConsoleHandlers(MaintenanceContext(config=load_config(base, tmp_path / "state")))
    handlers.audit_record({"action": "command", "detail": "[" * 1999})
    assert handlers.audit_tail({"n": 1})[0].endswith("command: " + "[" * 1999)
