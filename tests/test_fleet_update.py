"""The A/B switch end to end with a real child process as the service, READY over a real socket."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from kiosk.fleet.bundle import BundleError
from kiosk.fleet.inhibit import inhibit_updates
from kiosk.fleet.updater import EX_TEMPFAIL, UpdateRefused
from kiosk.fleet.wheels import python_abi
from tests.test_fleet_support import make_fleet, release_matches_manifest

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    f = make_fleet(tmp_path, monkeypatch)
    yield f
    f.stop_service()


def _installed(fleet, version="1.0.0"):
    b = fleet.bundle(version)
    out = fleet.updater().apply(b)
    assert out.status == "committed", out
    return b


def test_first_install_then_upgrade_commits_and_keeps_one_to_go_back_to(fleet):
    b1 = _installed(fleet, "1.0.0")
    assert fleet.current() == "1.0.0" and fleet.started() == ["1.0.0"]
    assert release_matches_manifest(fleet.root / "releases/1.0.0", b1, fleet)
    upd = fleet.updater()
    out = upd.apply(fleet.bundle("1.1.0"))
    assert (out.status, out.exit_code) == ("committed", 0)
    assert fleet.current() == "1.1.0" and fleet.started() == ["1.0.0", "1.1.0"]
    st = upd.status()
    assert (st["committed"], st["previous"], st["highest"], st["phase"]) == (
        "1.1.0",
        "1.0.0",
        "1.1.0",
        "idle",
    )
    upd.apply(fleet.bundle("1.2.0"))
    assert sorted(p.name for p in (fleet.root / "releases").iterdir()) == ["1.1.0", "1.2.0"]
    # The state file on disk says the same (it is what survives a power cut).
    disk = json.loads((fleet.root / "state/update.json").read_text())
    assert disk["committed"] == "1.2.0" and disk["previous"] == "1.1.0"


def test_downgrade_and_reinstall_are_refused(fleet):
    _installed(fleet, "1.1.0")
    with pytest.raises(UpdateRefused, match="downgrade refused: bundle 1.0.9 is not newer than 1.1.0"):
        fleet.updater().apply(fleet.bundle("1.0.9"))
    with pytest.raises(UpdateRefused, match="already installed"):
        fleet.updater().apply(fleet.bundle("1.1.0"))
    assert fleet.current() == "1.1.0" and not (fleet.root / "releases/1.0.9").exists()


def test_wrong_architecture_is_refused(fleet):
    with pytest.raises(UpdateRefused, match="built for sparc64"):
        fleet.updater().apply(fleet.bundle("1.0.0", arch="sparc64"))


def _bundle_for_abi(fleet, version: str, abi: str):
    """A working release (the stand-in service) whose manifest names the Python ABI ``abi``."""
    from kiosk.fleet import bundle as bundle_mod
    from kiosk.fleet.keys import load_signer
    from tests.test_fleet_support import SERVICE

    out = fleet.base / f"kiosk-{version}-{abi}.kbundle"
    files = [
        ("bin/service", SERVICE.replace("{python}", sys.executable).encode()),
        ("behaviour", b"ready"),
        ("VERSION", version.encode()),
    ]
    bundle_mod.build(files, version, [load_signer(fleet.targets_key)], out, arch="any", abi=abi)
    return out


def test_another_python_abi_is_refused_and_the_same_one_installs(fleet):
    here = python_abi()
    other = "cp312" if here != "cp312" else "cp313"
    proc = fleet.cli("apply", str(_bundle_for_abi(fleet, "1.0.0", other)))
    assert proc.returncode == 1
    assert proc.stderr == f"kiosk: bundle 1.0.0 is built for Python {other}, this terminal runs {here}\n"
    assert not (fleet.root / "releases/1.0.0").exists() and fleet.current() is None
    out = fleet.updater().apply(_bundle_for_abi(fleet, "1.0.0", here))
    assert out.status == "committed" and fleet.started() == ["1.0.0"]


def test_forged_bundle_changes_nothing(fleet):
    _installed(fleet)
    with pytest.raises(BundleError, match="does not trust"):
        fleet.updater().apply(fleet.bundle("2.0.0", key=fleet.keys / "root.pem"))
    assert fleet.current() == "1.0.0" and fleet.updater().status()["phase"] == "idle"


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("never-ready", "no READY from the service within 1 s"),
        ("crash", "service exited with status 3 before READY"),
        ("crash-after-ready", "service exited with status 4 during the stable period"),
        ("unhealthy", "WATCHDOG=trigger"),
    ],
)
def test_unhealthy_release_is_rolled_back_and_not_retried(fleet, behaviour, reason):
    _installed(fleet, "1.0.0")
    upd = fleet.updater(ready_timeout=1.0, stable_seconds=1.0)
    out = upd.apply(fleet.bundle("1.1.0", behaviour))
    assert out.status == "rolled-back" and reason in out.message and out.exit_code == 1
    assert fleet.current() == "1.0.0"
    assert fleet.started() == ["1.0.0", "1.1.0", "1.0.0"]  # the old release was started again
    st = upd.status()
    assert st["committed"] == "1.0.0" and st["highest"] == "1.0.0" and reason in st["failed"]["1.1.0"]
    assert not (fleet.root / "releases/1.1.0").exists()
    with pytest.raises(UpdateRefused, match="failed before"):  # loop breaker
        upd.apply(fleet.bundle("1.1.0"))
    assert upd.apply(fleet.bundle("1.1.1")).status == "committed"  # a fixed release goes through


def test_update_waits_for_a_session_then_resumes(fleet):
    _installed(fleet, "1.0.0")
    upd = fleet.updater()
    with inhibit_updates(fleet.state_dir):
        out = upd.apply(fleet.bundle("1.1.0"))
        assert (out.status, out.exit_code) == ("deferred", EX_TEMPFAIL)
        assert fleet.current() == "1.0.0" and fleet.started() == ["1.0.0"]
        assert upd.status()["phase"] == "staged"
        assert upd.resume().status == "deferred"  # the timer's next try, session still running
    out = upd.resume()  # the timer after the session ended
    assert out.status == "committed" and fleet.current() == "1.1.0"


def test_deferred_too_long_gives_up_with_clear_status(fleet):
    _installed(fleet, "1.0.0")
    upd = fleet.updater(give_up_after=0.2)
    with inhibit_updates(fleet.state_dir):
        assert upd.apply(fleet.bundle("1.1.0")).status == "deferred"
        time.sleep(1.1)  # `since` is kept in whole seconds
        out = upd.resume()
    assert out.status == "gave-up" and "a citizen's session was running at every try" in out.message
    st = upd.status()
    assert st["phase"] == "idle" and st["last"]["status"] == "gave-up" and fleet.current() == "1.0.0"
    assert not (fleet.root / "releases/1.1.0").exists()


def test_newer_bundle_replaces_a_deferred_one(fleet):
    _installed(fleet, "1.0.0")
    upd = fleet.updater()
    with inhibit_updates(fleet.state_dir):
        upd.apply(fleet.bundle("1.1.0"))
    assert upd.apply(fleet.bundle("1.2.0")).status == "committed"
    assert not (fleet.root / "releases/1.1.0").exists()


def test_manual_rollback(fleet):
    _installed(fleet, "1.0.0")
    upd = fleet.updater()
    upd.apply(fleet.bundle("1.1.0"))
    out = upd.rollback()
    assert out.status == "rolled-back" and fleet.current() == "1.0.0" and fleet.started()[-1] == "1.0.0"
    st = upd.status()
    assert st["committed"] == "1.0.0" and st["highest"] == "1.1.0" and "by hand" in st["failed"]["1.1.0"]
    with pytest.raises(Exception, match="no previous release"):
        upd.rollback()


def test_recover_repairs_a_broken_current_link(fleet):
    _installed(fleet, "1.0.0")
    (fleet.root / "current").unlink()
    out = fleet.updater().recover()
    assert out.status == "recovered" and fleet.current() == "1.0.0"
    assert fleet.updater().recover() is None


def test_cli_apply_status_and_errors(fleet):
    b = fleet.bundle("1.0.0")
    proc = fleet.cli("apply", str(b))
    assert proc.returncode == 0 and proc.stdout.startswith("committed: release 1.0.0"), proc.stderr
    proc = fleet.cli("status", "--json")
    st = json.loads(proc.stdout)
    assert st["current"] == "1.0.0" and st["committed"] == "1.0.0"
    proc = fleet.cli("apply", str(fleet.base / "missing.kbundle"))
    assert (
        proc.returncode == 2
        and proc.stderr.startswith("kiosk: bundle not found")
        and "Traceback" not in proc.stderr
    )
    proc = fleet.cli("apply", str(b))
    assert proc.returncode == 1 and "already installed" in proc.stderr
    proc = fleet.cli("rollback")
    assert proc.returncode == 1 and "no previous release" in proc.stderr


def test_cli_deferred_exit_code(fleet):
    fleet.cli("apply", str(fleet.bundle("1.0.0")))
    with inhibit_updates(fleet.state_dir):
        proc = fleet.cli("apply", str(fleet.bundle("1.1.0")))
    assert proc.returncode == EX_TEMPFAIL and "deferred" in proc.stdout


def test_two_updaters_do_not_run_at_once(fleet):
    upd = fleet.updater()
    with upd.locked():
        proc = fleet.cli("apply", str(fleet.bundle("1.0.0")))
    assert proc.returncode == 1 and "another update is running" in proc.stderr
    assert not os.path.lexists(fleet.root / "current")


def test_disk_full_during_an_update_keeps_the_old_release(fleet):
    """releases/ on a real small filesystem: the second release does not fit."""
    import subprocess

    rel = fleet.root / "releases"
    rel.mkdir(parents=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=80k", "tmpfs", str(rel)], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"mounting a tmpfs needs root: {proc.stderr}"
    try:
        b0 = _installed(fleet, "1.0.0")
        proc = fleet.cli("apply", str(fleet.bundle("1.1.0")))
        assert proc.returncode == 1 and proc.stderr.startswith("kiosk: disk full while unpacking"), (
            proc.stderr
        )
        st = fleet.updater().status()
        assert st["phase"] == "idle" and st["committed"] == "1.0.0" and st["last"]["status"] == "refused"
        assert sorted(p.name for p in rel.iterdir()) == ["1.0.0"]
        assert fleet.current() == "1.0.0" and release_matches_manifest(rel / "1.0.0", b0, fleet)
    finally:
        fleet.stop_service()
        subprocess.run(["umount", str(rel)], check=True)
