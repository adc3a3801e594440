"""SystemdControl's reading of the unit's state, against a stand-in `systemctl` that answers from a
file the test changes (the real one needs a running systemd)."""

from __future__ import annotations

import sys
import threading
import time

from kiosk.fleet.service import SystemdControl

FAKE = """#!{python}
import sys
from pathlib import Path
here = Path(__file__).parent
with open(here / "calls.log", "a") as fh:
    fh.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "show":
    print((here / "state").read_text(), end="")
elif sys.argv[1] == "restart" and (here / "refuse").exists():
    print("Unit kiosk.service not found.", file=sys.stderr)
    sys.exit(5)
"""


def _fake(tmp_path, state: str):
    exe = tmp_path / "systemctl"
    exe.write_text(FAKE.replace("{python}", sys.executable))
    exe.chmod(0o755)
    (tmp_path / "state").write_text(state)
    return SystemdControl("kiosk.service", systemctl=str(exe))


def _state(active="active", pid=100, restarts=0, result="success"):
    return f"ActiveState={active}\nSubState=running\nMainPID={pid}\nNRestarts={restarts}\nResult={result}\n"


def test_restart_is_no_block_and_errors_are_one_line(tmp_path):
    ctl = _fake(tmp_path, _state())
    ctl.restart()
    assert (tmp_path / "calls.log").read_text().splitlines() == ["restart --no-block kiosk.service"]
    (tmp_path / "refuse").touch()
    try:
        ctl.restart()
    except Exception as exc:  # noqa: BLE001
        assert str(exc) == "systemctl restart kiosk.service: Unit kiosk.service not found."
    else:
        raise AssertionError("restart of a missing unit did not fail")


def test_ready_when_active_and_stable_while_nothing_changes(tmp_path):
    ctl = _fake(tmp_path, _state("activating", pid=0))

    def becomes_active():
        time.sleep(0.6)
        (tmp_path / "state").write_text(_state(pid=4242))

    threading.Thread(target=becomes_active).start()
    assert ctl.wait_ready(10) is None
    assert ctl.wait_stable(1.2) is None


def test_failed_unit_and_timeout(tmp_path):
    ctl = _fake(tmp_path, _state("failed", pid=0, result="watchdog"))
    assert ctl.wait_ready(5) == "kiosk.service failed (watchdog) before READY"
    (tmp_path / "state").write_text(_state("activating", pid=0))
    assert ctl.wait_ready(0.6) == "no READY from kiosk.service within 0.6 s"


def test_restart_by_systemd_during_stable_period_is_noticed(tmp_path):
    ctl = _fake(tmp_path, _state(pid=10, restarts=0))
    assert ctl.wait_ready(5) is None
    (tmp_path / "state").write_text(_state(pid=11, restarts=1))  # watchdog killed it, systemd restarted
    assert "restarted or stopped during the stable period" in ctl.wait_stable(3)
