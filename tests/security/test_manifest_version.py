"""Issue 13, item 18 — a signed manifest with version "1.5.0\\n" was installed as a release
directory whose name ends in a newline (the version pattern's `$` matched before it). Versions are
now plain dotted ASCII numbers, checked with a full match at build, at verification and at install."""

from __future__ import annotations

import pytest

from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet.bundle import BundleError, parse_version
from kiosk.fleet.keys import load_signer, trusted_targets_keys
from tests.security.bundle_craft import bundle
from tests.test_fleet_support import make_fleet

BAD = ["1.5.0\n", "1.5.0\r\n", " 1.5.0", "1.5.0 ", "1.5.0\t", "１.５.０", "1.٥.0", "1.5.0/..", "", "1..5"]


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    f = make_fleet(tmp_path, monkeypatch)
    yield f
    f.stop_service()


@pytest.mark.parametrize("version", BAD)
def test_a_version_is_plain_dotted_numbers(version):
    with pytest.raises(BundleError, match="bad version"):
        parse_version(version)


def test_good_versions_still_parse():
    assert parse_version("1.5.0") == (1, 5, 0, 0)
    assert parse_version("2026.12.1.7") == (2026, 12, 1, 7)


@pytest.mark.parametrize("version", ["1.5.0\n", "１.５.０"])
def test_build_refuses_it(fleet, tmp_path, version):
    with pytest.raises(BundleError, match="bad version"):
        bundle_mod.build([("VERSION", b"x")], version, [load_signer(fleet.targets_key)], tmp_path / "b")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("version", ["1.5.0\n", "1.5.0 "])
def test_a_signed_manifest_with_it_is_refused_and_nothing_is_installed(fleet, tmp_path, version):
    path = bundle(tmp_path / "nl.kbundle", fleet.targets_key, version, {"VERSION": b"1.5.0"})
    trust = trusted_targets_keys(fleet.root / "state/tuf/root.json")
    with pytest.raises(BundleError, match="bad version"):
        bundle_mod.read_verified_manifest(path, *trust)
    with pytest.raises(BundleError, match="bad version"):
        bundle_mod.unpack(path, tmp_path / "rel", *trust)
    with pytest.raises(BundleError, match="bad version"):
        fleet.updater().apply(path)
    releases = fleet.root / "releases"
    assert not releases.exists() or not any(
        ch.isspace() for p in releases.iterdir() for ch in p.name
    ), "a release directory was created with whitespace in its name"
    assert fleet.current() is None


def test_the_installer_checks_the_version_itself(fleet):
    """Defence in depth: a manifest object that bypassed parsing is refused by the updater."""
    manifest = bundle_mod.Manifest("1.5.0\n", "any", "", (), b"")
    updater = fleet.updater()
    with pytest.raises(BundleError, match="bad version"):
        updater.check_acceptable(manifest, updater.load_state())
