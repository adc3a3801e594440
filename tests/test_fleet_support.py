"""Shared helpers for the fleet tests (no tests here; fixtures live in each file): a test fleet's
keys and TUF repository, bundles whose ``bin/service`` behaves as asked, and an updater wired to
run that service itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet.fetch import provision_root
from kiosk.fleet.keys import load_signer
from kiosk.fleet.repository import Repository, generate_keys
from kiosk.fleet.service import CommandControl
from kiosk.fleet.updater import Policy, Updater

RESTART = "{root}/current/bin/service"

# The stand-in for `kiosk run`: records which release started, then behaves as told.
SERVICE = textwrap.dedent(
    """\
    #!{python}
    import os, signal, sys, time
    from pathlib import Path
    from kiosk.fleet.sdnotify import Notifier
    here = Path(__file__).resolve().parent.parent
    behaviour = (here / "behaviour").read_text().strip()
    run = Path(os.environ.get("FLEET_TEST_RUN", "/nonexistent"))
    with open(run / "started.log", "a") as fh:
        fh.write((here / "VERSION").read_text().strip() + "\\n")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    n = Notifier()
    if behaviour == "crash":
        sys.exit(3)
    if behaviour != "never-ready":
        n.ready("ready: camera ok")
    if behaviour == "crash-after-ready":
        time.sleep(0.05)
        sys.exit(4)
    if behaviour == "unhealthy":
        time.sleep(0.05)
        n.watchdog_trigger()
    time.sleep(60)
    """
)


class Fleet:
    """Keys, a TUF repository and a provisioned terminal root, all under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.keys = generate_keys(base / "keys")
        self.repo = Repository(base / "repo", self.keys)
        self.root_json = self.repo.init()
        self.root = base / "terminal"
        self.state_dir = base / "var-lib-kiosk"
        self.run = self.root / "run"
        self.run.mkdir(parents=True)
        self.state_dir.mkdir()
        provision_root(self.root_json, self.root / "state" / "tuf")

    @property
    def targets_key(self) -> Path:
        return self.keys / "targets.pem"

    def bundle(
        self, version: str, behaviour: str = "ready", key: Path | None = None, arch: str = "any"
    ) -> Path:
        out = self.base / f"kiosk-{version}-{behaviour}.kbundle"
        files: list[tuple[str, Path | bytes]] = [
            ("bin/service", SERVICE.replace("{python}", sys.executable).encode()),
            ("behaviour", behaviour.encode()),
            ("VERSION", version.encode()),
            ("app/kiosk/__init__.py", f'__version__ = "{version}"\n'.encode()),
            ("app/models/blob.bin", os.urandom(50_000)),
        ]
        bundle_mod.build(files, version, [load_signer(key or self.targets_key)], out, arch=arch)
        return out

    def updater(self, **policy) -> Updater:
        policy.setdefault("ready_timeout", 10.0)
        policy.setdefault("stable_seconds", 0.3)
        return Updater(self.root, CommandControl(RESTART, self.root), self.state_dir, Policy(**policy))

    def cli_command(self, *args: str, extra: tuple[str, ...] = ()) -> list[str]:
        cmd = [sys.executable, "-m", "kiosk.cli", "update", *args, "--root", str(self.root)]
        cmd += ["--state-dir", str(self.state_dir), "--restart-command", RESTART]
        return cmd + ["--ready-timeout", "10", "--stable", "0.3", *extra]  # later options win

    def cli(
        self, *args: str, env: dict | None = None, timeout: float = 60, extra: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess:
        cmd = self.cli_command(*args, extra=extra)
        full_env = dict(os.environ, FLEET_TEST_RUN=str(self.run), **(env or {}))
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)

    def started(self) -> list[str]:
        log = self.run / "started.log"
        return log.read_text().split() if log.exists() else []

    def current(self) -> str | None:
        link = self.root / "current"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def stop_service(self) -> None:
        pidfile = self.run / "service.pid"
        try:
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def release_matches_manifest(release: Path, bundle: Path, fleet: Fleet) -> bool:
    """The installed release holds exactly the signed files, byte for byte."""
    import hashlib

    from kiosk.fleet.keys import trusted_targets_keys

    keys, threshold = trusted_targets_keys(fleet.root / "state/tuf/root.json")
    manifest = bundle_mod.read_verified_manifest(bundle, keys, threshold)
    on_disk = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    if on_disk != {f.path for f in manifest.files}:
        return False
    return all(
        hashlib.sha256((release / f.path).read_bytes()).hexdigest() == f.sha256 for f in manifest.files
    )


def make_fleet(tmp_path: Path, monkeypatch):
    """For a fixture: the fleet, with the service's log directory exported to services we start."""
    fleet = Fleet(tmp_path)
    monkeypatch.setenv("FLEET_TEST_RUN", str(fleet.run))
    return fleet
