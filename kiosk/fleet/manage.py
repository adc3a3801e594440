"""What each `kiosk update` subcommand does, so the CLI stays argument parsing and output.

Every command that touches releases takes the updater lock and first runs ``recover()``: an
update interrupted by a power cut is finished or undone before anything else happens.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import kiosk
from kiosk.config import FleetConfig
from kiosk.errors import KioskError
from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet import fetch, wheels
from kiosk.fleet.keys import load_signer
from kiosk.fleet.repository import Repository, generate_keys
from kiosk.fleet.service import CommandControl, SystemdControl
from kiosk.fleet.updater import Outcome, Policy, Updater

LAUNCHER = b"""#!/bin/sh
# Runs the release this file belongs to: the `current` link is resolved once, at start, so a
# running service keeps its release while the updater switches the link.
here=$(dirname "$(dirname "$(readlink -f "$0")")")
# -P: the working directory must not shadow the release's own package. PYTHONPATH puts the release
# (app, then its locked site) before the system's paths, which stay on sys.path after them: on the
# Pi, apt's picamera2/libcamera/lgpio in /usr/lib/python3/dist-packages are found there.
PYTHONPATH="$here/app:$here/site${PYTHONPATH:+:$PYTHONPATH}" exec /usr/bin/python3 -P -m kiosk.cli "$@"
"""


def make_updater(fleet: FleetConfig, state_dir: Path, root: str | None = None, **overrides: Any) -> Updater:
    """An Updater from the [fleet] configuration; command-line values in ``overrides`` win."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    fleet = replace(fleet, **overrides)
    root_path = Path(root) if root else fleet.root
    if fleet.restart_command:
        service = CommandControl(fleet.restart_command, root_path)
    else:
        service = SystemdControl(fleet.unit)
    policy = Policy(
        ready_timeout=fleet.ready_timeout_s,
        stable_seconds=fleet.stable_s,
        give_up_after=fleet.give_up_after_s,
        max_attempts=fleet.max_attempts,
    )
    return Updater(root_path, service, state_dir, policy)


def _locked(upd: Updater, action: Callable[[], Outcome | None]) -> list[Outcome]:
    with upd.locked():
        out = [o for o in (upd.recover(),) if o]
        result = action()
        if result:
            out.append(result)
        return out


def apply(upd: Updater, bundle: str) -> list[Outcome]:
    return _locked(upd, lambda: upd.apply(bundle))


def rollback(upd: Updater) -> list[Outcome]:
    return _locked(upd, upd.rollback)


def recover(upd: Updater, boot: bool = False) -> list[Outcome]:
    """``boot``: before kiosk.service starts; repair only, never restart the service."""
    with upd.locked():
        return [o for o in (upd.recover(boot=boot),) if o]


def check(upd: Updater, url: str, install: bool) -> tuple[list[Outcome], fetch.Available | None]:
    """Timer's run: resume a deferred release, then ask the fleet repository (TUF) for a newer one."""
    tuf_dir = upd.root / "state" / "tuf"
    downloads = upd.root / "state" / "downloads"
    with upd.locked():
        outcomes = [o for o in (upd.recover(), upd.resume()) if o]
        if outcomes and outcomes[-1].status == "deferred":
            return outcomes, None
        if not url:  # a terminal updated from USB sticks only: the timer still resumes deferred work
            msg = "no fleet repository configured (fleet.repository_url or --repo); nothing fetched"
            return outcomes + [Outcome("no-repository", None, msg)], None
        available = fetch.check(tuf_dir, url, upd.policy.arch, downloads)
        state = upd.load_state()
        newer = available is not None and (
            not state["highest"]
            or bundle_mod.parse_version(available.version) > bundle_mod.parse_version(state["highest"])
        )
        if not newer:
            return outcomes, None
        if available.version in state["failed"]:
            return outcomes + [
                Outcome("skipped", available.version, f"{available.version} failed before; not retried")
            ], None
        if install:
            _, path = fetch.download(tuf_dir, url, upd.policy.arch, downloads)
            try:
                outcomes.append(upd.apply(path))
            finally:
                path.unlink(missing_ok=True)
        return outcomes, available


def source_checkout() -> Path:
    tree = Path(kiosk.__file__).resolve().parent.parent
    if not (tree / "pyproject.toml").is_file():
        raise KioskError("update build needs a source checkout of kiosk (pyproject.toml not found)")
    return tree


def build_from_checkout(
    version: str,
    key_paths: list[str],
    out: str,
    arch: str,
    site: str | None = None,
    cache: Path | None = None,
) -> bundle_mod.Manifest:
    """The application from the working tree, the models, a launcher and ``site/``: the target's
    lock installed from wheels for ``arch`` (locks/targets.toml), or a prepared ``site`` directory;
    ``arch`` "any" ships the application alone. Signed with the given targets key(s).

    Every ELF file is checked against the target's machine before anything is signed."""
    bundle_mod.parse_version(version)  # before reading keys or downloading: the cheapest mistake first
    tree = source_checkout()
    signers = [load_signer(k) for k in key_paths]
    target = None if arch == "any" else wheels.target_for(tree / "locks", arch)
    files: list[tuple[str, Path | bytes]] = list(bundle_mod.tree_files(tree / "kiosk", "app/kiosk"))
    for extra in ("pyproject.toml", "README.md"):
        if (tree / extra).is_file():
            files.append((f"app/{extra}", tree / extra))
    if (tree / "models").is_dir():
        files += bundle_mod.tree_files(tree / "models", "app/models")
    files.append(("bin/kiosk", LAUNCHER))
    with tempfile.TemporaryDirectory(prefix="kiosk-site-") as tmp:
        if site:
            if not Path(site).is_dir():
                raise KioskError(f"--site {site}: not a directory")
            files += bundle_mod.tree_files(Path(site), "site")
        elif target is not None:
            if cache is None:
                raise KioskError("build: a wheel cache directory is needed to build a site directory")
            files += bundle_mod.tree_files(wheels.install_site(target, cache, Path(tmp) / "site"), "site")
        wheels.check_binaries(files, arch, target.e_machine if target else None)
        abi = target.abi if target is not None and any(rel.startswith("site/") for rel, _ in files) else None
        return bundle_mod.build(files, version, signers, out, arch=arch, abi=abi)


def init_repository(repo: str, keys: str, new_keys: bool) -> Path:
    if new_keys:
        generate_keys(keys)
    return Repository(repo, keys).init()


def publish(repo: str, keys: str, bundle: str) -> str:
    # The bundle is checked against the repository's own targets key before it is published.
    r = Repository(repo, keys)
    key = r.signers["targets"].public_key
    manifest = bundle_mod.read_verified_manifest(bundle, {key.keyid: key}, 1)
    return r.publish(bundle, manifest.version, manifest.arch)


def provision(upd: Updater, root_json: str) -> Path:
    if not Path(root_json).is_file():
        raise KioskError(f"trusted root not found: {root_json}")
    return fetch.provision_root(Path(root_json), upd.root / "state" / "tuf")
