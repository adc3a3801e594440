"""Signed bundles: what verification refuses, and unpacking that never leaves a partial release."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet.bundle import BundleError, DiskFull, parse_version
from kiosk.fleet.keys import FleetKeyError, load_signer, trusted_targets_keys
from tests.test_fleet_support import make_fleet


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    f = make_fleet(tmp_path, monkeypatch)
    yield f
    f.stop_service()


@pytest.fixture
def trust(fleet):
    return trusted_targets_keys(fleet.root / "state/tuf/root.json")


def _members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path, "r:gz") as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar]


def _rewrite(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def test_round_trip_unpacks_exactly_the_signed_files(fleet, trust, tmp_path):
    b = fleet.bundle("1.2.0")
    m = bundle_mod.unpack(b, tmp_path / "rel", *trust)
    assert m.version == "1.2.0" and m.arch == "any"
    assert (tmp_path / "rel/VERSION").read_text() == "1.2.0"
    assert (tmp_path / "rel/bin/service").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "rel/behaviour").stat().st_mode & 0o777 == 0o644
    assert sorted(
        p.relative_to(tmp_path / "rel").as_posix() for p in (tmp_path / "rel").rglob("*") if p.is_file()
    ) == sorted(f.path for f in m.files)


def test_bad_signature_is_refused(fleet, trust, tmp_path):
    b = fleet.bundle("1.2.0")
    members = _members(b)
    sig = json.loads(members[1][1])
    s = sig["signatures"][0]["sig"]
    sig["signatures"][0]["sig"] = ("0" if s[0] != "0" else "1") + s[1:]
    members[1] = (members[1][0], json.dumps(sig).encode())
    _rewrite(b, members)
    with pytest.raises(BundleError, match="bad signature"):
        bundle_mod.read_verified_manifest(b, *trust)
    with pytest.raises(BundleError, match="bad signature"):
        bundle_mod.unpack(b, tmp_path / "rel", *trust)
    assert not (tmp_path / "rel").exists()


def test_altered_manifest_is_refused(fleet, trust):
    b = fleet.bundle("1.2.0")
    members = _members(b)
    members[0] = (members[0][0], members[0][1].replace(b'"1.2.0"', b'"9.9.9"'))
    _rewrite(b, members)
    with pytest.raises(BundleError, match="bad signature"):
        bundle_mod.read_verified_manifest(b, *trust)


def test_wrong_key_is_refused(fleet, trust):
    # The snapshot key is a real fleet key, but not one that may sign releases.
    b = fleet.bundle("1.2.0", key=fleet.keys / "snapshot.pem")
    with pytest.raises(BundleError, match="does not trust"):
        bundle_mod.read_verified_manifest(b, *trust)


def test_tampered_payload_file_is_refused_and_nothing_is_left(fleet, trust, tmp_path):
    b = fleet.bundle("1.2.0")
    members = _members(b)
    for i, (info, data) in enumerate(members):
        if info.name == "payload/app/models/blob.bin":
            members[i] = (info, bytes([data[0] ^ 1]) + data[1:])
    _rewrite(b, members)
    bundle_mod.read_verified_manifest(b, *trust)  # the manifest itself is genuine
    with pytest.raises(BundleError, match="tampered"):
        bundle_mod.unpack(b, tmp_path / "rel", *trust)
    assert not (tmp_path / "rel").exists()


def test_extra_file_not_in_manifest_is_refused(fleet, trust, tmp_path):
    b = fleet.bundle("1.2.0")
    members = _members(b)
    members.append((tarfile.TarInfo("payload/bin/backdoor"), b"#!/bin/sh\n"))
    _rewrite(b, members)
    with pytest.raises(BundleError, match="not in the signed manifest"):
        bundle_mod.unpack(b, tmp_path / "rel", *trust)


def test_symlink_member_is_refused(fleet, trust, tmp_path):
    b = fleet.bundle("1.2.0")
    members = [(i, d) for i, d in _members(b) if i.name != "payload/VERSION"]
    link = tarfile.TarInfo("payload/VERSION")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    members.append((link, b""))
    _rewrite(b, members)
    with pytest.raises(BundleError, match="only regular files"):
        bundle_mod.unpack(b, tmp_path / "rel", *trust)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.97])
def test_truncated_bundle_is_refused(fleet, trust, tmp_path, keep):
    b = fleet.bundle("1.2.0")
    data = b.read_bytes()
    b.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BundleError, match="truncated|corrupt|not a bundle|must start"):
        bundle_mod.unpack(b, tmp_path / "rel", *trust)
    assert not (tmp_path / "rel").exists()


def test_not_a_bundle(trust, tmp_path):
    junk = tmp_path / "junk.kbundle"
    junk.write_bytes(b"hello")
    with pytest.raises(BundleError, match="not a bundle"):
        bundle_mod.read_verified_manifest(junk, *trust)
    with pytest.raises(BundleError, match="not found"):
        bundle_mod.read_verified_manifest(tmp_path / "missing", *trust)
    plain = tmp_path / "plain.kbundle"
    plain.write_bytes(gzip.compress(b"\0" * 2048))  # valid gzip, empty tar
    with pytest.raises(BundleError, match="must start with manifest.json"):
        bundle_mod.read_verified_manifest(plain, *trust)


def test_unsafe_path_in_a_genuinely_signed_manifest_is_refused(fleet, trust, tmp_path):
    """Even a bundle signed by the fleet key may not write outside its release directory."""
    src = tmp_path / "f"
    src.write_text("x")
    out = tmp_path / "evil.kbundle"
    with pytest.raises(BundleError, match="unsafe file path"):
        bundle_mod.build([("../../etc/cron.d/x", src)], "1.0.0", [load_signer(fleet.targets_key)], out)
    # Hand-made manifest with the same path, signed with the real key:
    signer = load_signer(fleet.targets_key)
    raw = json.dumps(
        {
            "format": 1,
            "version": "1.0.0",
            "arch": "any",
            "files": [{"path": "../escape", "size": 1, "sha256": "0" * 64, "mode": 420}],
        }
    ).encode()
    sig = json.dumps({"signatures": [signer.sign(raw).to_dict()]}).encode()
    members = [(tarfile.TarInfo("manifest.json"), raw), (tarfile.TarInfo("manifest.sig"), sig)]
    _rewrite(out, members)
    with pytest.raises(BundleError, match="unsafe file path"):
        bundle_mod.unpack(out, tmp_path / "rel", *trust)


def test_disk_full_while_unpacking_leaves_nothing(fleet, trust, tmp_path):
    """A real small filesystem (tmpfs) that fills up half-way through the payload."""
    b = fleet.bundle("1.2.0")  # ~50 kB of incompressible payload
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"mounting a tmpfs needs root: {proc.stderr}"
    try:
        with pytest.raises(DiskFull, match="disk full while unpacking"):
            bundle_mod.unpack(b, mnt / "rel", *trust)
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_versions():
    assert parse_version("1.10.0") > parse_version("1.9.9")
    assert parse_version("2") == parse_version("2.0.0")
    for bad in ("1.2.3-rc1", "", "v1", "1..2", None):
        with pytest.raises(BundleError, match="bad version"):
            parse_version(bad)


def test_trusted_root_problems_are_one_line(tmp_path):
    with pytest.raises(FleetKeyError, match="provision the terminal"):
        trusted_targets_keys(tmp_path / "root.json")
    (tmp_path / "root.json").write_text("{}")
    with pytest.raises(FleetKeyError, match="unusable"):
        trusted_targets_keys(tmp_path / "root.json")
    with pytest.raises(FleetKeyError, match="not found"):
        load_signer(tmp_path / "nokey.pem")
