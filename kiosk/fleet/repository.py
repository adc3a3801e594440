"""The publishing side of the fleet repository: TUF metadata (root, targets, snapshot, timestamp)
signed with ed25519 keys, and the bundles as targets.

Used by `kiosk update build --publish` on the build machine and by the tests; the terminal only
reads (``kiosk.fleet.fetch``). The target name is per architecture (``kiosk-<arch>.kbundle``)
and carries the release version as custom metadata, so a terminal knows whether to download.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from kiosk.errors import KioskError
from kiosk.fleet.keys import generate_signer, load_signer, write_private_key

ROLES = ("root", "targets", "snapshot", "timestamp")


def target_name(arch: str) -> str:
    return f"kiosk-{arch}.kbundle"


def generate_keys(keys_dir: str | Path) -> Path:
    """One ed25519 key per role as <role>.pem (test and development fleets only)."""
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        path = keys_dir / f"{role}.pem"
        if path.exists():
            raise KioskError(f"{path} exists; refusing to overwrite a key")
        write_private_key(path, generate_signer())
    return keys_dir


def _expiry(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


class Repository:
    """A TUF repository on disk: ``metadata/`` and ``targets/`` below ``repo_dir``."""

    def __init__(self, repo_dir: str | Path, keys_dir: str | Path) -> None:
        self.dir = Path(repo_dir)
        self.meta_dir = self.dir / "metadata"
        self.targets_dir = self.dir / "targets"
        self.signers: dict[str, CryptoSigner] = {r: load_signer(Path(keys_dir) / f"{r}.pem") for r in ROLES}

    def _write(self, md: Metadata, name: str) -> None:
        md.signatures.clear()
        md.sign(self.signers[md.signed.type])
        data = md.to_bytes(JSONSerializer(compact=False))
        (self.meta_dir / name).write_bytes(data)

    def _load(self, role: str) -> Metadata:
        name = f"{role}.json"
        if role == "root":
            name = sorted(self.meta_dir.glob("*.root.json"), key=lambda p: int(p.name.split(".")[0]))[-1].name
        return Metadata.from_file(str(self.meta_dir / name))

    def init(self, expires_days: float = 365) -> Path:
        """Create version 1 of every role; returns the root.json a terminal is provisioned with."""
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        root = Root(expires=_expiry(expires_days), consistent_snapshot=False)
        for role in ROLES:
            root.add_key(self.signers[role].public_key, role)
        self._write(Metadata(root), "1.root.json")
        self._write(Metadata(Targets(expires=_expiry(expires_days))), "targets.json")
        self._write(Metadata(Snapshot(expires=_expiry(expires_days))), "snapshot.json")
        self._write(Metadata(Timestamp(expires=_expiry(1))), "timestamp.json")
        return self.meta_dir / "1.root.json"

    def publish(self, bundle: str | Path, version: str, arch: str, expires_days: float = 30) -> str:
        """Add (or replace) the architecture's bundle and re-sign targets, snapshot, timestamp."""
        name = target_name(arch)
        dest = self.targets_dir / name
        shutil.copyfile(bundle, dest)
        targets = self._load("targets")
        tf = TargetFile.from_file(name, str(dest), ["sha256"])
        tf.unrecognized_fields["custom"] = {"version": version}
        targets.signed.targets[name] = tf
        targets.signed.version += 1
        targets.signed.expires = _expiry(expires_days)
        self._write(targets, "targets.json")
        self.bump_snapshot(expires_days)
        return name

    def bump_snapshot(self, expires_days: float = 30) -> None:
        targets = self._load("targets")
        snapshot = self._load("snapshot")
        snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
        snapshot.signed.version += 1
        snapshot.signed.expires = _expiry(expires_days)
        self._write(snapshot, "snapshot.json")
        self.bump_timestamp()

    def bump_timestamp(self, expires_days: float = 1) -> None:
        """Re-sign the timestamp (a repository does this daily; an expired one means frozen)."""
        snapshot = self._load("snapshot")
        ts = self._load("timestamp")
        ts.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
        ts.signed.version += 1
        ts.signed.expires = _expiry(expires_days)
        self._write(ts, "timestamp.json")


__all__ = ["Repository", "generate_keys", "target_name", "Role"]
