"""Fetching from the fleet repository through python-tuf: a real repository on disk (file://),
the terminal's trusted root, and the attacks TUF exists to refuse."""

from __future__ import annotations

import shutil

import pytest

from kiosk.fleet import manage
from kiosk.fleet.fetch import FetchError
from kiosk.fleet.keys import load_signer
from tests.test_fleet_support import make_fleet

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    f = make_fleet(tmp_path, monkeypatch)
    yield f
    f.stop_service()


def _url(fleet) -> str:
    return (fleet.base / "repo").as_uri()


def _publish(fleet, version: str, behaviour: str = "ready") -> None:
    fleet.repo.publish(fleet.bundle(version, behaviour), version, "any")


def test_check_reports_and_install_commits_through_tuf(fleet):
    _publish(fleet, "1.0.0")
    upd = fleet.updater()
    outcomes, available = manage.check(upd, _url(fleet), install=False)
    assert outcomes == [] and available.version == "1.0.0"
    assert fleet.current() is None
    outcomes, _ = manage.check(upd, _url(fleet), install=True)
    assert [o.status for o in outcomes] == ["committed"] and fleet.current() == "1.0.0"
    assert manage.check(upd, _url(fleet), install=True) == ([], None)  # nothing newer
    _publish(fleet, "1.1.0")
    outcomes, _ = manage.check(upd, _url(fleet), install=True)
    assert outcomes[-1].status == "committed" and fleet.current() == "1.1.0"
    assert not list((fleet.root / "state/downloads").iterdir())  # the bundle is not kept twice


def test_cli_check_install(fleet):
    _publish(fleet, "1.0.0")
    proc = fleet.cli("check", "--repo", _url(fleet))
    assert proc.returncode == 0 and "release 1.0.0 is available" in proc.stdout, proc.stderr
    proc = fleet.cli("check", "--repo", _url(fleet), "--install")
    assert proc.returncode == 0 and "committed: release 1.0.0" in proc.stdout, proc.stderr
    proc = fleet.cli("check")  # no repository configured: not an error for a USB-only terminal
    assert proc.returncode == 0 and proc.stdout.startswith("no-repository: no fleet repository configured")


def test_expired_timestamp_is_refused(fleet):
    """A frozen repository (or an attacker replaying old metadata forever) is noticed."""
    _publish(fleet, "1.0.0")
    fleet.repo.bump_timestamp(expires_days=-1)
    with pytest.raises(FetchError, match="expired metadata"):
        manage.check(fleet.updater(), _url(fleet), install=True)
    assert fleet.current() is None


def test_rolled_back_metadata_is_refused(fleet, tmp_path):
    _publish(fleet, "1.0.0")
    old = tmp_path / "old-metadata"
    shutil.copytree(fleet.repo.meta_dir, old)
    _publish(fleet, "1.1.0")
    upd = fleet.updater()
    manage.check(upd, _url(fleet), install=False)  # the terminal has now seen the newer metadata
    shutil.rmtree(fleet.repo.meta_dir)
    shutil.copytree(old, fleet.repo.meta_dir)  # a mirror serves the older, validly signed metadata
    with pytest.raises(FetchError, match="rolled-back metadata"):
        manage.check(upd, _url(fleet), install=True)
    assert fleet.current() is None


def test_mix_and_match_is_refused(fleet, tmp_path):
    """New timestamp and snapshot with an old targets file: the versions do not add up."""
    _publish(fleet, "1.0.0")
    old_targets = (fleet.repo.meta_dir / "targets.json").read_bytes()
    _publish(fleet, "1.1.0")
    (fleet.repo.meta_dir / "targets.json").write_bytes(old_targets)
    with pytest.raises(FetchError, match=r"Expected targets v3, got v2"):
        manage.check(fleet.updater(), _url(fleet), install=True)


def test_tampered_target_is_refused(fleet):
    _publish(fleet, "1.0.0")
    target = fleet.repo.targets_dir / "kiosk-any.kbundle"
    data = bytearray(target.read_bytes())
    data[-100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(FetchError, match="does not match its signed hash"):
        manage.check(fleet.updater(), _url(fleet), install=True)
    assert fleet.current() is None


def test_metadata_signed_with_the_wrong_key_is_refused(fleet):
    _publish(fleet, "1.0.0")
    fleet.repo.signers["targets"] = load_signer(fleet.keys / "snapshot.pem")  # a key not trusted for targets
    _publish(fleet, "1.1.0")
    with pytest.raises(FetchError, match="not signed by the trusted keys: targets was signed by 0/1 keys"):
        manage.check(fleet.updater(), _url(fleet), install=False)


def test_unprovisioned_terminal_is_told_so(fleet):
    (fleet.root / "state/tuf/root.json").unlink()
    _publish(fleet, "1.0.0")
    with pytest.raises(FetchError, match="provision the terminal first"):
        manage.check(fleet.updater(), _url(fleet), install=False)


def test_usb_bundle_is_checked_with_the_same_keys(fleet):
    """The bundle a repository serves can be applied from a stick: same targets key, same trust."""
    _publish(fleet, "1.0.0")
    stick = fleet.repo.targets_dir / "kiosk-any.kbundle"
    assert fleet.updater().apply(stick).status == "committed"
    forged = fleet.bundle("1.1.0", key=fleet.keys / "timestamp.pem")
    with pytest.raises(Exception, match="does not trust"):
        fleet.updater().apply(forged)


def test_failed_release_from_the_repository_is_not_fetched_again(fleet):
    _publish(fleet, "1.0.0")
    upd = fleet.updater(ready_timeout=1.0)
    manage.check(upd, _url(fleet), install=True)
    _publish(fleet, "1.1.0", "never-ready")
    outcomes, _ = manage.check(upd, _url(fleet), install=True)
    assert outcomes[-1].status == "rolled-back" and fleet.current() == "1.0.0"
    outcomes, _ = manage.check(upd, _url(fleet), install=True)  # the timer's next run
    assert [o.status for o in outcomes] == ["skipped"] and "not retried" in outcomes[0].message
    assert fleet.started() == ["1.0.0", "1.1.0", "1.0.0"]
