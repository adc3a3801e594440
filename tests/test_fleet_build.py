"""`kiosk update build`: a signed bundle from this working tree, verifiable with the fleet's keys,
whose launcher runs the release it belongs to; and publishing it into a TUF repository."""

from __future__ import annotations

import json
import subprocess
import sys

from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet.keys import trusted_targets_keys
from kiosk.fleet.repository import Repository, generate_keys

KIOSK = [sys.executable, "-m", "kiosk.cli", "update"]


def test_build_from_the_working_tree_and_publish(tmp_path):
    keys, repo = tmp_path / "keys", tmp_path / "repo"
    proc = subprocess.run(
        KIOSK + ["init-repo", str(repo), "--keys-dir", str(keys), "--new-keys"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "kiosk.kbundle"
    proc = subprocess.run(
        KIOSK
        + [
            "build",
            "--version",
            "2.3.4",
            "--key",
            str(keys / "targets.pem"),
            "-o",
            str(out),
            "--arch",
            "aarch64",
        ]
        + ["--publish", str(repo), "--keys-dir", str(keys), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["version"] == "2.3.4" and info["arch"] == "aarch64" and info["files"] > 20
    trust = trusted_targets_keys(repo / "metadata/1.root.json")
    rel = tmp_path / "rel"
    m = bundle_mod.unpack(out, rel, *trust)
    paths = {f.path for f in m.files}
    assert {"bin/kiosk", "app/kiosk/cli/__init__.py", "app/kiosk/fleet/updater.py", "app/pyproject.toml"} <= paths
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)
    assert (rel / "bin/kiosk").stat().st_mode & 0o111
    targets = json.loads((repo / "metadata/targets.json").read_text())["signed"]["targets"]
    assert targets["kiosk-aarch64.kbundle"]["custom"] == {"version": "2.3.4"}


def test_launcher_runs_its_own_release(tmp_path):
    """bin/kiosk resolves its release directory, so `current/bin/kiosk` runs releases/<v>/app."""
    generate_keys(tmp_path / "keys")
    Repository(tmp_path / "repo", tmp_path / "keys").init()
    out = tmp_path / "b.kbundle"
    from kiosk.fleet.manage import build_from_checkout

    build_from_checkout("1.0.0", [str(tmp_path / "keys/targets.pem")], str(out), "any")
    rel = tmp_path / "releases/1.0.0"
    bundle_mod.unpack(out, rel, *trusted_targets_keys(tmp_path / "repo/metadata/1.root.json"))
    (rel / "app/kiosk/__init__.py").write_text('__version__ = "launcher-test"\n')
    (tmp_path / "current").symlink_to("releases/1.0.0")
    proc = subprocess.run(
        [str(tmp_path / "current/bin/kiosk"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == "kiosk launcher-test", proc.stderr


def test_build_errors_are_one_line(tmp_path):
    proc = subprocess.run(
        KIOSK + ["build", "--version", "1.x", "--key", str(tmp_path / "none.pem"), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert (
        proc.returncode == 2
        and proc.stderr.startswith("kiosk: bad version '1.x'")
        and "Traceback" not in proc.stderr
    )
