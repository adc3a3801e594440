"""Issue 13, High 3 — one bad `config set` bricked the terminal: `session.ui_host "bad host name"`, a
missing `hardware.sim_face` or a bad `printer_target` made every start fail, and `config set` could
not repair it because it went through the service. Now: what start needs is checked before writing;
the last configuration that started is kept and used when the technician's file cannot start
(audited, shown by `status`); and the console edits the configuration while the service is down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kiosk.config import load_config, remember_started
from kiosk.service_api import ApiError, call, socket_path

BAD = [
    ("session.ui_host", "bad host name", "session.ui_host: the UI listens on loopback only"),
    ("session.ui_host", "0.0.0.0", "session.ui_host: the UI listens on loopback only"),
    ("hardware.sim_face", "/nonexistent/face.jpg", "hardware.sim_face: no such file"),
    ("receipt.printer_target", "not a device", "receipt.printer_target: serial printer needs /dev/DEVICE"),
    ("receipt.printer", "usb", "receipt.printer_target: usb printer needs VID:PID"),
]


@pytest.fixture
def served(console_api):
    return console_api('[receipt]\nprinter = "serial"\nprinter_target = "/dev/ttyUSB0:19200"\n')


@pytest.mark.parametrize(("key", "value", "message"), BAD)
def test_config_set_refuses_what_would_not_start(served, key, value, message):
    base, state = served
    call(socket_path(state), "console.config_set", key="session.countdown_s", value="4")
    local = base.parent / "local" / "kiosk.toml"
    before = local.read_bytes()
    with pytest.raises(ApiError, match=message):
        call(socket_path(state), "console.config_set", key=key, value=value)
    assert local.read_bytes() == before
    cfg = load_config(base, state)
    assert not cfg.source.fallback and cfg.session.countdown_s == 4.0


def test_a_technicians_file_that_cannot_start_falls_back_to_the_last_that_did(tmp_path, config_files):
    base, local = config_files("# on site\n[session]\ncountdown_s = 4.0\n")
    started = load_config(base, tmp_path / "state")
    assert not started.source.fallback
    remember_started(started)  # what the service does once READY
    face = tmp_path / "face.jpg"  # a face file that is not there (removed, or a typo in a hand edit)
    local.write_text(f'[hardware]\nsim_face = "{face}"\n[session]\ncountdown_s = 6.0\n')
    cfg = load_config(base, tmp_path / "state")
    assert cfg.session.countdown_s == 4.0 and cfg.hardware.sim_face == ""  # the last good one...
    assert "hardware.sim_face: no such file" in cfg.source.fallback  # ...and why
    remember_started(cfg)  # a start on the fallback does not overwrite the last good one
    assert (local.parent / "last-good.toml").read_text() == "# on site\n[session]\ncountdown_s = 4.0\n"
    face.write_bytes(b"")
    cfg = load_config(base, tmp_path / "state")
    assert cfg.session.countdown_s == 6.0 and not cfg.source.fallback


@pytest.mark.slow
def test_kiosk_run_starts_on_the_last_good_configuration_and_says_so(tmp_path, config_files):
    """The real service, twice: once on a good file (it keeps it), then on a file that cannot start."""
    base, local = config_files("[session]\ncountdown_s = 4.0\n")
    state = tmp_path / "state"
    env = {**os.environ, "KIOSK_CONFIG": str(base), "KIOSK_STATE_DIR": str(state)}
    env.pop("NOTIFY_SOCKET", None)

    def run() -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "run", "--sim", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = proc.stdout.readline()
        if not line.startswith("kiosk: UI on http://127.0.0.1:"):
            proc.kill()
            err = proc.communicate(timeout=20)[1]
            raise AssertionError(f"the service did not start: {line!r} {err[-800:]}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (local.parent / "last-good.toml").exists():
            time.sleep(0.05)
        return proc

    def stop(proc: subprocess.Popen) -> str:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err
        return err

    proc = run()
    assert call(socket_path(state), "console.status")["config"] == "as written"
    stop(proc)
    assert (local.parent / "last-good.toml").read_text() == local.read_text()
    local.write_text('[session]\ncountdown_s = 5.0\nui_host = "bad host name"\n')  # as the old config set did
    proc = run()
    try:
        status = call(socket_path(state), "console.status")
        assert status["config"].startswith("FALLBACK: config key session.ui_host")
        assert call(socket_path(state), "console.config_get", key="session.countdown_s") == {
            "session.countdown_s": 4.0
        }
        audit = call(socket_path(state), "console.audit_tail", n=20)
        assert any("config-fallback" in line and "session.ui_host" in line for line in audit)
        # repaired from the console while it runs; the next start uses it and keeps it
        call(socket_path(state), "console.config_set", key="session.ui_host", value="127.0.0.1")
    finally:
        err = stop(proc)
    assert "session.ui_host" in err  # the fallback is logged too
    assert (local.parent / "last-good.toml").read_text().startswith("[session]\ncountdown_s = 4.0")
    proc = run()
    try:
        assert call(socket_path(state), "console.status")["config"] == "as written"
    finally:
        stop(proc)
    assert json.dumps(load_config(base, state).session.countdown_s) == "5.0"


def test_the_console_edits_the_configuration_while_the_service_is_down(tmp_path):
    from tests.test_console_pty import PIN, Rig

    rig = Rig(tmp_path, idle_timeout_s=60.0)
    try:
        t = rig.term
        rig.api.close()  # the service is down: it cannot start on a hand-edited file
        local = rig.config_path.parent / "local" / "kiosk.toml"
        local.parent.mkdir()
        local.write_text('# hand edit\n[session]\nui_host = "bad host name"\n')
        t.expect("PIN: ")
        t.line(PIN)
        t.expect(r"NOTE: the service is not running; configuration: config key session.ui_host:\s+the UI")
        t.expect("kiosk> ")
        out = t.run("config set session.ui_host 127.0.0.1")
        assert "the service is not running: written directly" in out
        assert local.read_text().startswith("# hand edit\n")
        out = t.run("config set session.countdown_s 5")
        assert "the service is not running: written directly" in out
        cfg = load_config(rig.config_path, rig.state)
        assert cfg.session.countdown_s == 5.0 and not cfg.source.fallback
        out = t.run('config set session.ui_host "bad host"')
        assert "session.ui_host: the UI listens on loopback only" in out
        assert "fleet.unit is root-only" in t.run("config set fleet.unit reboot.target")
        assert t.run("config get session.countdown_s").strip() == "session.countdown_s: 5"
        assert load_config(rig.config_path, rig.state).session.ui_host == "127.0.0.1"
    finally:
        rig.close()
