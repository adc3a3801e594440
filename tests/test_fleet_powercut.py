"""SIGKILL of the updater after each durable step, then a re-run: the terminal always ends on the
old or the new release, complete and running, and the update can be finished afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.test_fleet_support import make_fleet, release_matches_manifest

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
