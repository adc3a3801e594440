"""A bundle's ``site/`` for a target that is not this machine: the target's lock, wheels only.

The release is built on an x86 machine for Raspberry Pis (aarch64, CPython 3.11): ``locks/``
holds one hash-pinned lock per target (``locks/targets.toml`` says which wheel tags and ELF
machine each target has). pip downloads the lock's wheels for the target's platform (kept in a
cache, so a second build does not download again) and installs them for that platform into the
bundle's site directory. Every ELF file that ends up in a bundle is then checked against the
target's machine, so a wheel compiled for the build machine can never reach a terminal.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import KioskError

ELF_MAGIC = b"\x7fELF"
# e_machine values of the ELF header (System V ABI), for messages.
MACHINES = {3: "i386", 20: "ppc", 21: "ppc64", 40: "arm", 62: "x86_64", 183: "aarch64", 243: "riscv"}


class BuildError(KioskError):
    """The bundle cannot be built for that target (no lock, a download failed, a foreign binary)."""


@dataclass(frozen=True)
class Target:
    name: str  # the architecture, as `platform.machine()` says it on the terminal
    python: str  # "3.11"
    abi: str  # "cp311"
    glibc: str  # newest manylinux glibc the lock's wheels may need, e.g. "2.17"
    e_machine: int
    lock: Path

    @property
    def platforms(self) -> list[str]:
        """pip's --platform tags: pip does not expand manylinux_2_N to older ones, so list them."""
        top = int(self.glibc.split(".")[1])
        return [f"manylinux_2_{m}_{self.name}" for m in range(top, 16, -1)] + [f"manylinux2014_{self.name}"]

    def pip_target_args(self) -> list[str]:
        args = ["--only-binary=:all:", "--implementation", "cp", "--abi", self.abi]
        args += ["--python-version", self.python]
        for tag in self.platforms:
            args += ["--platform", tag]
        return args


def load_targets(locks_dir: Path) -> dict[str, Target]:
    path = locks_dir / "targets.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return {
            name: Target(
                name,
                str(t["python"]),
                str(t["abi"]),
                str(t["glibc"]),
                int(t["e_machine"]),
                locks_dir / t["lock"],
            )
            for name, t in data.items()
        }
    except FileNotFoundError:
        raise BuildError(f"{path} not found: release targets and their locks live in locks/") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BuildError(f"{path}: bad target table ({exc!r})") from None


def target_for(locks_dir: Path, arch: str) -> Target:
    targets = load_targets(locks_dir)
    if arch not in targets:
        known = ", ".join(sorted(targets))
        raise BuildError(f"no lock for architecture {arch!r} (locks/targets.toml: {known}; or --site)")
    target = targets[arch]
    if not target.lock.is_file():
        raise BuildError(f"lock {target.lock} is missing: run locks/refresh.sh {arch}")
    return target


def python_abi() -> str:
    """This interpreter's CPython ABI tag, e.g. 'cp311' (what a terminal's /usr/bin/python3 runs)."""
    return f"cp{sys.version_info.major}{sys.version_info.minor}"


# --- ELF ---------------------------------------------------------------------------------------


def elf_machine(path: Path) -> int | None:
    """The ELF header's e_machine, or None if the file is not ELF."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or not head.startswith(ELF_MAGIC):
        return None
    order = "little" if head[5] == 1 else "big"  # EI_DATA: 1 = little-endian, 2 = big-endian
    return int.from_bytes(head[18:20], order)


def foreign_binaries(files: list[tuple[str, Path | bytes]], e_machine: int | None) -> list[str]:
    """Bundle paths that are compiled for another machine; ``.so`` files must be ELF at all.

    ``e_machine`` None means an architecture-independent bundle: no ELF file may be in it.
    """
    bad = []
    for rel, src in files:
        if isinstance(src, bytes):
            head = src[:20]
            machine = (
                int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
                if len(head) == 20 and head.startswith(ELF_MAGIC)
                else None
            )
        else:
            machine = elf_machine(src)
        is_so = rel.endswith(".so") or ".so." in rel.rsplit("/", 1)[-1]
        if machine is None:
            if is_so:
                bad.append(f"{rel} (not an ELF file)")
        elif machine != e_machine:
            bad.append(f"{rel} ({MACHINES.get(machine, f'e_machine {machine}')})")
    return bad


def check_binaries(files: list[tuple[str, Path | bytes]], arch: str, e_machine: int | None) -> int:
    """Refuse the bundle if any binary is not for ``arch``; returns how many ELF files were checked."""
    bad = foreign_binaries(files, e_machine)
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise BuildError(f"refusing to build for {arch}: {bad[0]} is compiled for another machine{more}")
    return sum(1 for _, src in files if isinstance(src, Path) and elf_machine(src) is not None)


# --- pip ---------------------------------------------------------------------------------------


def _pip(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def _pip_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR:")]
    tail = lines or proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
    return tail[-1][:300]


def download(target: Target, cache: Path) -> Path:
    """The lock's wheels in ``cache`` (hash-checked): from the cache alone if it has them all."""
    cache.mkdir(parents=True, exist_ok=True)
    common = ["download", "--require-hashes", "--no-deps", "-r", str(target.lock), "-d", str(cache)]
    common += target.pip_target_args()
    offline = _pip([*common, "--no-index", "--find-links", str(cache)])
    if offline.returncode == 0:
        return cache
    online = _pip(common)
    if online.returncode != 0:
        raise BuildError(f"cannot download the {target.name} lock's wheels: {_pip_error(online)}")
    return cache


def install_site(target: Target, cache: Path, dest: Path) -> Path:
    """Install the lock into ``dest`` (a bundle's site/) for the target platform, no resolution."""
    download(target, cache)
    if dest.exists():
        shutil.rmtree(dest)
    proc = _pip(
        [
            "install",
            "--target",
            str(dest),
            "--no-deps",
            "--no-compile",  # the terminal's /opt is read-only; bytecode would be stale anyway
            "--require-hashes",
            "--no-index",
            "--find-links",
            str(cache),
            "-r",
            str(target.lock),
            *target.pip_target_args(),
        ]
    )
    if proc.returncode != 0:
        raise BuildError(f"cannot install the {target.name} lock: {_pip_error(proc)}")
    # Console scripts carry this machine's interpreter in their #! line: useless on the terminal.
    shutil.rmtree(dest / "bin", ignore_errors=True)
    return dest


def cache_dir(state_dir: Path) -> Path:
    """Where downloaded wheels are kept between builds: the state directory's cache."""
    return Path(state_dir) / "cache" / "wheels"
