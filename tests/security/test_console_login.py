"""Issue 13, Low 13 and 14 — the console's login.

13: after logging out with Ctrl-D there was no `PIN:` prompt and the next PIN was echoed in clear.
14: the lockout did not escalate (≈ 470 guesses a day with the defaults) and 4-digit PINs could be
set: each lockout now lasts twice the one before (until a good login), and a PIN that is set or
changed has at least six digits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kiosk.config import ConsoleConfig
from kiosk.console.guard import LoginGuard
from kiosk.console.pin import hash_pin, valid_pin_format, verify_pin
from kiosk.errors import InputError

DAY = 86400.0


def _guesses_in_a_day(tmp_path, cfg: ConsoleConfig) -> int:
    """An attacker at the cable, guessing whenever the console lets them (restarts do not help)."""
    now = [0.0]
    guesses = 0
    while now[0] < DAY:
        g = LoginGuard(cfg, tmp_path, clock=lambda: now[0])  # a fresh process each time
        wait = g.wait_s()
        if wait > 0:
            now[0] += wait
            continue
        g.failure()
        guesses += 1
    return guesses


def test_the_lockout_doubles_until_a_good_login(tmp_path):
    cfg = ConsoleConfig()  # the shipped defaults: 5 attempts, 15 min lockout
    assert _guesses_in_a_day(tmp_path, cfg) <= 50  # was ≈ 470

    now = [0.0]
    g = LoginGuard(
        ConsoleConfig(max_attempts=2, delay_base_s=0.0, lockout_s=60.0), tmp_path / "b", lambda: now[0]
    )
    lockouts = []
    for _ in range(4):
        g.failure()
        lockouts.append(g.failure())
        now[0] += lockouts[-1]
        assert g.wait_s() == 0
    assert lockouts == [60.0, 120.0, 240.0, 480.0]
    g.success()  # the technician logs in: back to the first lockout
    g.failure()
    assert g.failure() == 60.0


def test_a_damaged_login_state_stays_locked(tmp_path):
    (tmp_path / "console-login.json").write_text('{"failures": "x"}')
    assert LoginGuard(ConsoleConfig(lockout_s=30.0), tmp_path).locked


@pytest.mark.parametrize("pin", ["1234", "12345"])
def test_a_new_pin_has_at_least_six_digits(pin):
    assert not valid_pin_format(pin)
    with pytest.raises(InputError, match="6 to 16 digits"):
        hash_pin(pin)
    assert verify_pin("123456", hash_pin("123456", n=2**10))
    bad = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "console", "--hash-pin"],
        input=f"{pin}\n".encode(),
        capture_output=True,
    )
    assert bad.returncode == 2 and "6 to 16 digits" in bad.stderr.decode()


@pytest.mark.slow
def test_ctrl_d_logout_asks_for_the_pin_and_hides_it(tmp_path):
    from tests.test_console_pty import PIN, Rig

    rig = Rig(tmp_path, idle_timeout_s=60.0)
    try:
        t = rig.term
        t.login()
        t.send(b"\x04")  # Ctrl-D on an empty line
        t.expect("logged out")
        t.expect("PIN: ")
        t.send(PIN)
        echoed = t.drain()
        assert PIN not in echoed and "*" * len(PIN) in echoed
        t.send("\r")
        t.expect(r"logged in.*\n")
        t.expect("kiosk> ")
        # changing the PIN: fewer than six digits is refused
        t.line("pin")
        t.expect(r"new PIN \(6-16 digits\): ")
        t.line("12345")
        t.expect("6 to 16 digits; nothing changed")
        assert ("logout", "logout (Ctrl-D)") in rig.commands_audited()
    finally:
        rig.close()
