"""Issue 13, item 12 — bundles: a 1 GiB member before the manifest peaked at 1.1 GB before the
signature was looked at (tarfile reads an extended header whole), and 300,000 directory entries the
signed manifest did not list were accepted in a signed bundle. Now the manifest and signature must
come first and small, extended headers are bounded, any member the manifest does not list is refused
(directories too), and memory stays bounded while streaming."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet.bundle import PAYLOAD, BundleError
from kiosk.fleet.keys import trusted_targets_keys
from tests.security.bundle_craft import bundle, directory, huge_header_first, regular, write_bundle
from tests.test_fleet_support import make_fleet

HEADER_SIZE = 256 << 20  # a quarter of the reported GiB: the same tarfile path, a quicker test
PEAK_LIMIT = 64 << 20  # what reading the head of any bundle may take, above the process's baseline

CHILD = """
import json, sys
from pathlib import Path
from kiosk.fleet import bundle as bundle_mod

def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = kib("VmRSS")
try:
    bundle_mod.read_verified_manifest(Path(sys.argv[1]), {}, 1)
    out = {"error": None}
except bundle_mod.BundleError as exc:
    out = {"error": str(exc)}
out["peak"] = (kib("VmHWM") - base) * 1024
print(json.dumps(out))
"""


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    f = make_fleet(tmp_path, monkeypatch)
    yield f
    f.stop_service()


@pytest.fixture
def trust(fleet):
    return trusted_targets_keys(fleet.root / "state/tuf/root.json")


def head_in_child(path) -> dict:
    cmd = [sys.executable, "-c", CHILD, str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME], ids=["pax", "gnu-longname"])
def test_a_huge_header_before_the_manifest_is_refused_in_bounded_memory(fleet, tmp_path, kind):
    path = huge_header_first(tmp_path / "bomb.kbundle", fleet.targets_key, kind, HEADER_SIZE)
    assert path.stat().st_size < 4 << 20
    result = head_in_child(path)
    assert result["peak"] <= PEAK_LIMIT, f"peak {result['peak'] >> 20} MiB reading the head"
    assert result["error"] and "\n" not in result["error"]


@pytest.mark.slow
def test_a_big_member_before_the_manifest_is_refused_without_reading_it(fleet, tmp_path):
    junk = regular("junk")
    junk.size = HEADER_SIZE  # declared, never read: refused on its header
    path = tmp_path / "junk-first.kbundle"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        tar.addfile(junk, _Zeros(junk.size))
    result = head_in_child(path)
    assert result["peak"] <= PEAK_LIMIT
    assert "must start with manifest.json" in result["error"]


class _Zeros:
    """A file of ``n`` zero bytes that is never held in memory."""

    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return bytes(size)


def test_an_oversized_manifest_is_refused_before_its_signature_is_checked(fleet, trust, tmp_path):
    path = write_bundle(
        tmp_path / "fat.kbundle",
        [(regular("manifest.json"), b" " * (bundle_mod.MAX_MANIFEST + 1)), (regular("manifest.sig"), b"{}")],
    )
    with pytest.raises(BundleError, match="manifest.json of .* bytes is too large"):
        bundle_mod.read_verified_manifest(path, *trust)


@pytest.mark.parametrize("count", [1, 5000])
def test_directories_the_manifest_does_not_list_are_refused(fleet, trust, tmp_path, count):
    files = {"VERSION": b"1.0.0", "app/kiosk/__init__.py": b"x = 1\n"}
    extra = [(directory(f"{PAYLOAD}unsigned/{i:06d}"), None) for i in range(count)]
    path = bundle(tmp_path / "dirs.kbundle", fleet.targets_key, "1.0.0", files, extra)
    bundle_mod.read_verified_manifest(path, *trust)  # the signed head is genuine
    dest = tmp_path / "release"
    with pytest.raises(BundleError, match="directory 'unsigned/000000' is not in the signed manifest"):
        bundle_mod.unpack(path, dest, *trust)
    assert not dest.exists()


def test_an_updater_refuses_the_bundle_with_unsigned_directories(fleet, tmp_path):
    extra = [(directory(PAYLOAD + "x"), None)]
    path = bundle(tmp_path / "dirs.kbundle", fleet.targets_key, "1.0.0", {"VERSION": b"1.0.0"}, extra)
    with pytest.raises(BundleError, match="not in the signed manifest"):
        fleet.updater().apply(path)
    assert fleet.current() is None
    assert not any((fleet.root / "releases").glob("1.0.0*"))


def test_a_sparse_member_is_refused(fleet, trust, tmp_path):
    """GNU sparse members (never built) would write holes the manifest's size does not describe."""
    sparse = regular(PAYLOAD + "VERSION")
    sparse.type = tarfile.GNUTYPE_SPARSE
    path = bundle(tmp_path / "sparse.kbundle", fleet.targets_key, "1.0.0", {}, [(sparse, b"1.0.0")])
    with pytest.raises(BundleError, match="sparse member"):
        bundle_mod.unpack(path, tmp_path / "rel", *trust)
    assert not (tmp_path / "rel").exists()
