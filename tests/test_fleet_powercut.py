"""SIGKILL of the updater after each durable step, then a re-run: the terminal always ends on the
old or the new release, complete and running, and the update can be finished afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.fleet.service import CommandControl
from tests.test_fleet_support import RESTART, make_fleet, release_matches_manifest

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    f = make_fleet(tmp_path, monkeypatch)
    yield f
    f.stop_service()


def _consistent(fleet, bundles: dict[str, object]) -> dict:
    """Run the recovery (every command does) and check the invariants; return the status."""
    proc = fleet.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    cur = fleet.current()
    assert cur in bundles and cur == st["committed"], st
    assert release_matches_manifest(fleet.root / "releases" / cur, bundles[cur], fleet)
    assert st["phase"] in ("idle", "staged"), st
    assert not list((fleet.root / "releases").glob(".staging-*"))
    assert not os.path.lexists(fleet.root / ".current.tmp")
    assert fleet.started()[-1] == cur  # the release that runs is the one `current` names
    if st["phase"] == "staged":
        assert release_matches_manifest(
            fleet.root / "releases" / st["pending"], bundles[st["pending"]], fleet
        )
    return st


# step -> (phase after recovery, release after recovery, what a re-run of the same apply does)
STEPS = {
    "verified": ("idle", "1.0.0", "committed"),
    "staging": ("idle", "1.0.0", "committed"),
    "unpacking": ("idle", "1.0.0", "committed"),
    "staged": ("staged", "1.0.0", "committed"),
    "switching": ("staged", "1.0.0", "committed"),
    "switched": ("staged", "1.0.0", "committed"),
    "verifying": ("staged", "1.0.0", "committed"),
    "restarted": ("staged", "1.0.0", "committed"),
    "ready": ("staged", "1.0.0", "committed"),
    "committed": ("idle", "1.1.0", "already installed"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_sigkill_after_each_step_then_rerun(fleet, step):
    b0, b1 = fleet.bundle("1.0.0"), fleet.bundle("1.1.0")
    assert fleet.cli("apply", str(b0)).returncode == 0
    proc = fleet.cli("apply", str(b1), env={"KIOSK_UPDATE_KILL_AT": step})
    assert proc.returncode == -signal.SIGKILL, (step, proc.stdout, proc.stderr)
    phase, release, rerun = STEPS[step]
    st = _consistent(fleet, {"1.0.0": b0, "1.1.0": b1})
    assert (st["phase"], fleet.current()) == (phase, release)
    proc = fleet.cli("apply", str(b1))
    assert rerun in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    st = _consistent(fleet, {"1.0.0": b0, "1.1.0": b1})
    assert st["committed"] == "1.1.0" and st["highest"] == "1.1.0" and st["phase"] == "idle"


def test_sigkill_during_rollback_finishes_the_rollback(fleet):
    b0, bad = fleet.bundle("1.0.0"), fleet.bundle("1.1.0", "never-ready")
    assert fleet.cli("apply", str(b0)).returncode == 0
    proc = fleet.cli(
        "apply", str(bad), env={"KIOSK_UPDATE_KILL_AT": "rolling-back"}, extra=("--ready-timeout", "1")
    )
    assert proc.returncode == -signal.SIGKILL
    st = _consistent(fleet, {"1.0.0": b0})
    assert st["committed"] == "1.0.0" and "no READY" in st["failed"]["1.1.0"]
    assert not (fleet.root / "releases/1.1.0").exists()
    proc = fleet.cli("apply", str(bad))
    assert proc.returncode == 1 and "failed before" in proc.stderr  # loop breaker survives the kill


def test_repeated_kills_during_health_check_trip_the_loop_breaker(fleet):
    """A release that takes the terminal down during its health check each time is given up."""
    b0, b1 = fleet.bundle("1.0.0"), fleet.bundle("1.1.0")
    assert fleet.cli("apply", str(b0)).returncode == 0
    for _ in range(2):
        proc = fleet.cli("apply", str(b1), env={"KIOSK_UPDATE_KILL_AT": "restarted"})
        assert proc.returncode == -signal.SIGKILL
    st = _consistent(fleet, {"1.0.0": b0})
    assert "interrupted during the health check 2 times" in st["failed"]["1.1.0"]


def test_real_sigkill_while_waiting_for_ready(fleet):
    """Not a fault-injection point: an outside SIGKILL while the new release hangs before READY."""
    b0, hang = fleet.bundle("1.0.0"), fleet.bundle("1.1.0", "never-ready")
    assert fleet.cli("apply", str(b0)).returncode == 0
    env = dict(os.environ, FLEET_TEST_RUN=str(fleet.run))
    proc = subprocess.Popen(fleet.cli_command("apply", str(hang), extra=("--ready-timeout", "60")), env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = json.loads((fleet.root / "state/update.json").read_text())
            if state["phase"] == "verifying" and fleet.started()[-1:] == ["1.1.0"]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the updater never reached the health check")
        assert fleet.current() == "1.1.0"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    st = _consistent(fleet, {"1.0.0": b0, "1.1.0": hang})
    assert fleet.current() == "1.0.0" and st["phase"] == "staged"


# --- boot: kiosk-update-recover.service, then kiosk.service -------------------------------------

UNITS = Path(__file__).resolve().parent.parent / "systemd"


def _unit_deps(name: str) -> dict[str, list[str]]:
    """[Unit] Before=/After= and [Service] ExecStart= of a unit file (repeated keys add up)."""
    out: dict[str, list[str]] = {"Before": [], "After": [], "ExecStart": []}
    for line in (UNITS / name).read_text().splitlines():
        key, _, value = line.partition("=")
        if key in out:
            out[key] += value.split() if key != "ExecStart" else [value]
    return out


def _boot_order(names: list[str]) -> list[str]:
    """The start order systemd derives from Before=/After= among ``names`` (a topological sort)."""
    after = {n: set() for n in names}
    for n in names:
        deps = _unit_deps(n)
        after[n] |= {d for d in deps["After"] if d in after}
        for d in deps["Before"]:
            if d in after:
                after[d].add(n)
    order: list[str] = []
    while len(order) < len(names):
        ready = sorted(n for n in names if n not in order and after[n] <= set(order))
        assert ready, f"ordering cycle among {names}"
        order.append(ready[0])
    return order


def _recover_argv(fleet, boot: bool = True) -> list[str]:
    """The recovery unit's ExecStart with the terminal's paths mapped to the test fleet's."""
    (exec_start,) = _unit_deps("kiosk-update-recover.service")["ExecStart"]
    argv = exec_start.split()
    assert argv[0] == "/opt/kiosk/current/bin/kiosk"
    paths = {"/opt/kiosk": str(fleet.root), "/var/lib/kiosk": str(fleet.state_dir)}
    args = [paths.get(a, a) for a in argv[1:] if boot or a != "--boot"]
    # A restart from inside the recovery would be a deadlock at boot: here it leaves a mark.
    forbidden = fleet.run / "restart-from-recovery"
    script = fleet.run / "forbidden-restart"
    script.write_text(f"#!/bin/sh\necho called >> {forbidden}\nexit 1\n")
    script.chmod(0o755)
    return [sys.executable, "-m", "kiosk.cli", *args, "--restart-command", str(script)]


def _boot(fleet) -> list[tuple[str, str | None]]:
    """Start the units as systemd would at boot; returns (event, release) in the order they happened."""
    events: list[tuple[str, str | None]] = []
    for unit in _boot_order(["kiosk.service", "kiosk-update-recover.service"]):
        if unit == "kiosk-update-recover.service":
            proc = subprocess.run(_recover_argv(fleet), capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            events.append(("recovered", fleet.current()))
        else:  # kiosk.service: Type=notify, `current`'s release; its start ends at READY=1
            ctl = CommandControl(RESTART, fleet.root)
            ctl.restart()
            assert ctl.wait_ready(10) is None
            events.append(("ready", fleet.started()[-1]))
    return events


@pytest.mark.slow
@pytest.mark.parametrize("step", ["switched", "verifying", "restarted", "ready"])
def test_power_cut_during_an_update_then_boot_recovers_before_the_service_is_ready(fleet, step):
    """SIGKILL while `current` already names the new, unverified release; the power cut takes the
    service too. At boot the recovery unit puts the committed release back before the service's
    start, without starting anything itself; the service's first READY is the committed release;
    the timer's next run finishes the update."""
    b0, b1 = fleet.bundle("1.0.0"), fleet.bundle("1.1.0")
    assert fleet.cli("apply", str(b0)).returncode == 0
    proc = fleet.cli("apply", str(b1), env={"KIOSK_UPDATE_KILL_AT": step})
    assert proc.returncode == -signal.SIGKILL
    fleet.stop_service()
    assert fleet.current() == "1.1.0"  # a boot straight into the service would run the unverified one
    before = fleet.started()

    assert _boot(fleet) == [("recovered", "1.0.0"), ("ready", "1.0.0")]
    assert not (fleet.run / "restart-from-recovery").exists()
    assert fleet.started() == before + ["1.0.0"]
    state = json.loads((fleet.root / "state/update.json").read_text())
    assert (state["phase"], state["committed"], state["pending"]["version"]) == ("staged", "1.0.0", "1.1.0")
    assert release_matches_manifest(fleet.root / "releases/1.1.0", b1, fleet)

    proc = fleet.cli("check", "--json")  # kiosk-update.timer, later: the staged release is tried again
    assert proc.returncode == 0, proc.stderr
    assert [o["status"] for o in json.loads(proc.stdout)["outcomes"]] == ["committed", "no-repository"]
    assert fleet.current() == "1.1.0" and fleet.started()[-1] == "1.1.0"


@pytest.mark.slow
def test_recovery_without_boot_mode_would_restart_the_service_from_inside_its_start(fleet):
    """The control for the test above: the same recovery without --boot restarts the service,
    which at boot is a start job waiting on this very unit."""
    b0, b1 = fleet.bundle("1.0.0"), fleet.bundle("1.1.0")
    assert fleet.cli("apply", str(b0)).returncode == 0
    assert (
        fleet.cli("apply", str(b1), env={"KIOSK_UPDATE_KILL_AT": "restarted"}).returncode == -signal.SIGKILL
    )
    fleet.stop_service()
    subprocess.run(_recover_argv(fleet, boot=False), capture_output=True, text=True, timeout=60)
    assert (fleet.run / "restart-from-recovery").read_text() == "called\n"


def test_the_recovery_unit_runs_before_the_service_and_never_restarts_it():
    deps = _unit_deps("kiosk-update-recover.service")
    assert "kiosk.service" in deps["Before"]
    assert _boot_order(["kiosk.service", "kiosk-update-recover.service", "kiosk-update.service"])[0] == (
        "kiosk-update-recover.service"
    )
    (exec_start,) = deps["ExecStart"]
    assert exec_start.split()[1:4] == ["update", "recover", "--boot"]
    text = (UNITS / "kiosk-update-recover.service").read_text()
    assert "Type=oneshot" in text and "WantedBy=multi-user.target kiosk.service" in text
    assert "systemctl" not in exec_start and "ExecStartPost" not in text
