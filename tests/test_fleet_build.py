"""`kiosk update build`: a signed bundle from this working tree, verifiable with the fleet's keys,
whose launcher runs the release it belongs to; and publishing it into a TUF repository."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet.keys import trusted_targets_keys
from kiosk.fleet.repository import Repository, generate_keys

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full

KIOSK = [sys.executable, "-m", "kiosk.cli", "update"]
REPO = Path(__file__).resolve().parent.parent
EM_AARCH64, EM_X86_64 = 183, 62


def _elf(e_machine: int, big_endian: bool = False) -> bytes:
    """A 64-byte ELF64 header of a shared object (ET_DYN) for ``e_machine``: enough for the check."""
    order = "big" if big_endian else "little"
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1]) + bytes(9)
    return ident + (3).to_bytes(2, order) + e_machine.to_bytes(2, order) + bytes(44)


def _site(path: Path, e_machine: int, name: str = "_core.so") -> Path:
    (path / "native").mkdir(parents=True)
    (path / "native/__init__.py").write_text("")
    (path / "native" / name).write_bytes(_elf(e_machine))
    return path


def _build(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not (tmp_path / "keys").exists():
        generate_keys(tmp_path / "keys")
    cmd = ["build", "--version", "1.0.0", "--key", str(tmp_path / "keys/targets.pem")]
    cmd += ["-o", str(tmp_path / "out.kbundle"), "--state-dir", str(tmp_path / "state"), *args]
    return subprocess.run(KIOSK + cmd, capture_output=True, text=True, timeout=120)


def test_build_from_the_working_tree_and_publish(tmp_path):
    keys, repo = tmp_path / "keys", tmp_path / "repo"
    proc = subprocess.run(
        KIOSK + ["init-repo", str(repo), "--keys-dir", str(keys), "--new-keys"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "kiosk.kbundle"
    site = _site(tmp_path / "site", EM_AARCH64)  # a prepared site; the lock's own: test_fleet_arm64
    proc = subprocess.run(
        KIOSK
        + ["build", "--version", "2.3.4", "--key", str(keys / "targets.pem"), "-o", str(out)]
        + ["--arch", "aarch64", "--site", str(site)]
        + ["--publish", str(repo), "--keys-dir", str(keys), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["version"] == "2.3.4" and info["arch"] == "aarch64" and info["files"] > 20
    assert info["abi"] == "cp311"
    trust = trusted_targets_keys(repo / "metadata/1.root.json")
    rel = tmp_path / "rel"
    m = bundle_mod.unpack(out, rel, *trust)
    paths = {f.path for f in m.files}
    assert {
        "bin/kiosk",
        "app/kiosk/fleet/updater.py",
        "app/pyproject.toml",
        "app/models/MANIFEST.json",
        "site/native/_core.so",
    } <= paths
    assert (m.arch, m.abi) == ("aarch64", "cp311")
    assert any(p.startswith("app/kiosk/cli") for p in paths)
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


@pytest.mark.parametrize(
    ("e_machine", "name", "why"),
    [
        (EM_X86_64, "_core.so", "(x86_64)"),
        (40, "_core.so.1", "(arm)"),
        (None, "_core.so", "(not an ELF file)"),
    ],
)
def test_a_binary_for_another_machine_is_refused(tmp_path, e_machine, name, why):
    site = tmp_path / "site"
    if e_machine is None:
        (site / "native").mkdir(parents=True)
        (site / "native" / name).write_text("INPUT(-lfoo)\n")  # a linker script is no loadable object
    else:
        _site(site, e_machine, name)
    proc = _build(tmp_path, "--arch", "aarch64", "--site", str(site))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == (
        f"kiosk: refusing to build for aarch64: site/native/{name} {why} is compiled for another machine\n"
    )
    assert not (tmp_path / "out.kbundle").exists()


def test_an_app_only_bundle_takes_no_binary_and_unknown_targets_are_named(tmp_path):
    proc = _build(tmp_path, "--arch", "any", "--site", str(_site(tmp_path / "site", EM_AARCH64)))
    assert proc.returncode == 1 and "site/native/_core.so (aarch64)" in proc.stderr
    proc = _build(tmp_path, "--arch", "sparc64")
    assert proc.returncode == 1
    assert (
        proc.stderr
        == "kiosk: no lock for architecture 'sparc64' (locks/targets.toml: aarch64, x86_64; or --site)\n"
    )


def test_elf_header_reading():
    from kiosk.fleet.wheels import MACHINES, elf_machine, foreign_binaries

    assert MACHINES[elf_machine(Path(sys.executable).resolve())] == platform.machine()
    assert elf_machine(REPO / "pyproject.toml") is None
    files = [("a.so", _elf(20, big_endian=True)), ("b.so", _elf(EM_AARCH64)), ("c.py", b"print()")]
    assert foreign_binaries(files, EM_AARCH64) == ["a.so (ppc)"]


def test_each_target_has_a_hash_pinned_lock_of_the_project_dependencies():
    """The locks are refresh.sh's output for pyproject's dependencies, every pin with its hashes."""
    from kiosk.fleet.wheels import load_targets

    targets = load_targets(REPO / "locks")
    assert {"aarch64", "x86_64"} <= set(targets)
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.split(r"[<>=;\[ ]", d, maxsplit=1)[0].lower() for d in deps}
    for name, t in targets.items():
        text = t.lock.read_text()
        assert "Made by locks/refresh.sh" in text, name
        pins = [line for line in text.splitlines() if line and line[0].isalpha()]
        assert all(re.fullmatch(r"[a-z0-9-]+==\S+ \\", line) for line in pins), name
        missing = wanted - {line.split("==")[0] for line in pins}
        assert not missing, f"{name}: {sorted(missing)} not in {t.lock.name}: run locks/refresh.sh"
        assert text.count("--hash=sha256:") >= len(pins)
        assert t.platforms[-1] == f"manylinux2014_{name}" and t.abi == "cp311"
    pi = targets["aarch64"]
    assert pi.e_machine == EM_AARCH64 and "\nnumpy==1." in pi.lock.read_text()


@pytest.mark.slow
def test_wheels_come_from_the_cache_once_downloaded(tmp_path, monkeypatch):
    """A second build does not download: with every index unreachable it still gets the lock's wheels."""
    from kiosk.fleet import wheels

    pi = wheels.load_targets(REPO / "locks")["aarch64"]
    text = pi.lock.read_text()
    start = text.index("\nsix==") + 1
    lock = tmp_path / "lock.txt"
    lock.write_text(text[start : text.index("\n    # via", start)] + "\n")  # six: one small wheel, hashed
    target = wheels.Target("aarch64", pi.python, pi.abi, pi.glibc, pi.e_machine, lock)
    cache = wheels.cache_dir(tmp_path / "state")
    wheels.download(target, cache)
    assert [p.name for p in cache.iterdir()] == ["six-1.17.0-py2.py3-none-any.whl"]
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/simple")
    site = wheels.install_site(target, cache, tmp_path / "site")
    assert (site / "six.py").is_file()
    (cache / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"not the locked wheel")
    with pytest.raises(wheels.BuildError, match="cannot download the aarch64 lock's wheels"):
        wheels.download(target, cache)  # a cached file that fails its hash is not used
