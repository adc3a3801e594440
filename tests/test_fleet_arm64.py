"""The Pi's release, built here on x86 with `kiosk update build --arch aarch64`, proven on arm64.

The bundle holds only AArch64 shared objects, an x86 terminal refuses it by target, and in an
arm64 Debian Bookworm root (glibc 2.36, CPython 3.11.2: what Raspberry Pi OS Bookworm has) run
under qemu-user-static as a Raspberry Pi 4's Cortex-A72, the bundle's own launcher and site
directory run `kiosk analyze --sample --json` and `kiosk check` with the results of this machine,
and its updater installs the bundle there (`kiosk update apply`: target and ABI are the Pi's own).

The root is made once with debootstrap (first stage, arm64 .debs unpacked) and kept as a tarball
in the test cache ($KIOSK_TEST_CACHE, default ~/.cache/kiosk-tests), like the downloaded wheels.
Needs root (chroot, a private mount namespace) and the Debian packages qemu-user-static and
debootstrap (.ci/run installs them).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet.keys import trusted_targets_keys
from kiosk.fleet.repository import Repository, generate_keys
from kiosk.fleet.wheels import ELF_MAGIC, elf_machine

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("KIOSK_TEST_CACHE") or Path.home() / ".cache" / "kiosk-tests")
ROOT_TARBALL = CACHE / "arm64-bookworm-python3.11.tar.gz"
KIOSK = [sys.executable, "-m", "kiosk.cli"]
EM_AARCH64 = 183
BINFMT = Path("/proc/sys/fs/binfmt_misc")

# qemu-user (7.2) shows the host's x86 /proc/cpuinfo to the guest; LiteRT's XNNPACK reads it to
# pick kernels and fails on x86 text. A Raspberry Pi 4's is bound over it, as the Pi would show.
PI4_CPUINFO = (
    "".join(
        f"processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
        "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n"
        "CPU revision\t: 3\n\n"
        for n in range(4)
    )
    + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
)


def _run(cmd: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _binfmt_aarch64() -> str | None:
    """Register qemu-aarch64 with binfmt_misc (fix-binary, so it works inside a chroot); None if
    ready, else why not."""
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists():
        if not (BINFMT / "register").exists():
            _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
        conf = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
        if not conf.exists():
            return f"{conf} missing (qemu-user-static without its binfmt registration)"
        proc = _run(["/usr/lib/systemd/systemd-binfmt", str(conf)])
        if proc.returncode != 0 or not entry.exists():
            return f"cannot register qemu-aarch64 with binfmt_misc: {proc.stderr.strip()[:200]}"
    text = entry.read_text()
    if not text.startswith("enabled") or "F" not in text.split("flags:")[1].split()[0]:
        return "qemu-aarch64 binfmt entry is disabled or lacks the fix-binary flag"
    return None


def _build_root_tarball() -> None:
    """debootstrap's first stage for arm64 (downloads and unpacks; no emulated scripts), then every
    downloaded .deb unpacked too: enough for python3 and its shared libraries."""
    work = CACHE / "arm64-root.tmp"
    shutil.rmtree(work, ignore_errors=True)
    proc = _run(
        [
            "debootstrap",
            "--arch=arm64",
            "--variant=minbase",
            "--foreign",
            "--include=python3",
            "bookworm",
            str(work),  # debootstrap's default Debian mirror
        ],
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    archives = work / "var/cache/apt/archives"
    for deb in sorted(archives.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work)], check=True, timeout=300)
        deb.unlink()
    tmp = ROOT_TARBALL.with_suffix(".tmp")
    subprocess.run(["tar", "-C", str(work), "-czf", str(tmp), "."], check=True, timeout=600)
    os.replace(tmp, ROOT_TARBALL)
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def arm64_root_tarball() -> Path:
    if not shutil.which("qemu-aarch64-static"):
        pytest.skip("qemu-user-static is not installed (apt-get install qemu-user-static debootstrap)")
    if os.geteuid() != 0:
        pytest.skip("the arm64 root needs root: chroot and a private mount namespace")
    why = _binfmt_aarch64()
    if why:
        pytest.skip(why)
    CACHE.mkdir(parents=True, exist_ok=True)
    if not ROOT_TARBALL.exists():
        assert shutil.which("debootstrap"), "debootstrap is not installed (apt-get install debootstrap)"
        _build_root_tarball()
    return ROOT_TARBALL


@pytest.fixture(scope="module")
def pi_release(tmp_path_factory) -> dict:
    """`kiosk update build --arch aarch64` of this tree, with the fleet keys that verify it."""
    base = tmp_path_factory.mktemp("pi-release")
    keys = generate_keys(base / "keys")
    Repository(base / "repo", keys).init()
    out = base / "kiosk-aarch64.kbundle"
    cmd = KIOSK + ["update", "build", "--version", "1.0.0", "--key", str(keys / "targets.pem")]
    cmd += ["-o", str(out), "--arch", "aarch64", "--state-dir", str(CACHE / "build-state"), "--json"]
    proc = _run(cmd, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return {
        "bundle": out,
        "info": json.loads(proc.stdout),
        "trust": trusted_targets_keys(base / "repo/metadata/1.root.json"),
        "root_json": base / "repo/metadata/1.root.json",
    }


def _locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "locks/aarch64-cp311.txt").read_text().splitlines():
        if line and line[0].isalpha() and "==" in line:
            name, version = line.split(" ")[0].split("==")
            pins[name.lower().replace("_", "-").replace(".", "-")] = version
    return pins


def test_every_shared_object_of_the_pi_bundle_is_aarch64(pi_release, tmp_path):
    info = pi_release["info"]
    assert (info["arch"], info["abi"]) == ("aarch64", "cp311")
    rel = tmp_path / "rel"
    manifest = bundle_mod.unpack(pi_release["bundle"], rel, *pi_release["trust"])
    assert (manifest.arch, manifest.abi) == ("aarch64", "cp311")
    machines: dict[str, int] = {}
    for p in rel.rglob("*"):
        if p.is_file() and p.open("rb").read(4) == ELF_MAGIC:
            machines[p.relative_to(rel).as_posix()] = elf_machine(p)
    shared = [p for p in machines if p.endswith(".so") or ".so." in p]
    assert len(shared) > 50, shared  # numpy, OpenCV, LiteRT, cryptography, Pillow ...
    assert set(machines.values()) == {EM_AARCH64}, {p: m for p, m in machines.items() if m != EM_AARCH64}
    assert not (rel / "site/bin").exists()  # console scripts would name this machine's Python
    # What ships is what the lock says, version for version.
    shipped = {}
    for d in (rel / "site").glob("*.dist-info"):
        name, version = d.name[: -len(".dist-info")].rsplit("-", 1)
        shipped[name.lower().replace("_", "-").replace(".", "-")] = version
    assert shipped == _locked_versions()
    assert shipped["numpy"].startswith("1.")  # apt's picamera2 modules need the numpy 1 ABI
    assert (rel / "app/models/MANIFEST.json").is_file() and any((rel / "app/kiosk").glob("cli*"))


@pytest.mark.skipif(platform.machine() != "x86_64", reason="shows an x86_64 terminal refusing it")
def test_an_x86_terminal_refuses_the_pi_bundle_by_target(pi_release, tmp_path):
    from kiosk.fleet.fetch import provision_root

    root = tmp_path / "terminal"
    provision_root(pi_release["root_json"], root / "state" / "tuf")
    proc = _run(
        KIOSK
        + ["update", "apply", str(pi_release["bundle"]), "--root", str(root)]
        + ["--state-dir", str(tmp_path / "state"), "--restart-command", "/bin/false"]
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "kiosk: bundle 1.0.0 is built for aarch64, this terminal is x86_64"
    assert not (root / "releases/1.0.0").exists() and not (root / "current").exists()


def _in_arm64(root: Path, cpuinfo: Path, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run argv in the arm64 root as a Pi 4 would: chroot (binfmt starts qemu-aarch64 for every
    arm64 binary, the launcher's /bin/sh and readlink included), /proc and /sys mounted in a
    private mount namespace, the CPU model a Cortex-A72 (ARMv8.0: no dotprod, no LSE atomics)."""
    script = (
        'mount -t proc proc "$R/proc" && mount --rbind /sys "$R/sys" && '
        'mount --bind "$CPUINFO" "$R/proc/cpuinfo" && exec chroot "$R" /usr/bin/env -i '
        "QEMU_CPU=cortex-a72 HOME=/root PATH=/usr/bin:/bin KIOSK_STATE_DIR=/var/lib/kiosk "
        'PYTHONPATH="$PROBE" "$@"'
    )
    env = {"R": str(root), "CPUINFO": str(cpuinfo), "PROBE": "/probe", "PATH": os.environ["PATH"]}
    return _run(["unshare", "--mount", "--fork", "sh", "-c", script, "sh", *argv], timeout=timeout, env=env)


def test_the_pi_bundle_runs_analysis_and_checks_on_arm64(pi_release, arm64_root_tarball, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xzf", str(arm64_root_tarball)], check=True, timeout=600)
    # Installed as the updater installs it: releases/<v> from the verified bundle, `current` link.
    bundle_mod.unpack(pi_release["bundle"], root / "opt/kiosk/releases/1.0.0", *pi_release["trust"])
    (root / "opt/kiosk/current").symlink_to("releases/1.0.0")
    # picamera2 comes from apt on the Pi: a stand-in in dist-packages, to see the release finds it.
    dist = root / "usr/lib/python3/dist-packages/picamera2"
    dist.mkdir(parents=True)
    (dist / "__init__.py").write_text("APT = True\n")
    # A probe the launcher's own interpreter runs at start-up (sitecustomize on PYTHONPATH).
    (root / "probe").mkdir()
    (root / "probe/sitecustomize.py").write_text(
        "import json, platform, sys\n"
        "import numpy, picamera2\n"
        "json.dump({'machine': platform.machine(), 'libc': platform.libc_ver(),\n"
        "  'version': sys.version_info[:2], 'numpy': [numpy.__version__, numpy.__file__],\n"
        "  'picamera2': picamera2.__file__},\n"
        "  open('/tmp/probe.json', 'w'))\n"
    )
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(PI4_CPUINFO)

    photo = root / "tmp/photo.jpg"
    made = _run(
        KIOSK
        + ["make-photo", str(REPO / "tests/fixtures/faces/grace_hopper.jpg"), "--profile", "id_card"]
        + ["-o", str(photo), "--json"]
    )
    assert made.returncode in (0, 1), made.stderr
    host_analyze = _run(KIOSK + ["analyze", "--sample", "--json"])
    host_check = _run(KIOSK + ["check", str(photo), "--profile", "id_card", "--json"])
    assert host_analyze.returncode == 0 and host_check.returncode in (0, 1), host_check.stderr

    arm_analyze = _in_arm64(root, cpuinfo, "/opt/kiosk/current/bin/kiosk", "analyze", "--sample", "--json")
    assert arm_analyze.returncode == 0, arm_analyze.stderr[-3000:]
    probe = json.loads((root / "tmp/probe.json").read_text())
    assert probe["machine"] == "aarch64" and probe["version"] == [3, 11]
    assert probe["libc"][0] == "glibc" and tuple(map(int, probe["libc"][1].split("."))) >= (2, 28)
    assert probe["numpy"] == [_locked_versions()["numpy"], "/opt/kiosk/releases/1.0.0/site/numpy/__init__.py"]
    assert probe["picamera2"] == "/usr/lib/python3/dist-packages/picamera2/__init__.py"

    arm, host = json.loads(arm_analyze.stdout), json.loads(host_analyze.stdout)
    assert len(arm["faces"]) == len(host["faces"]) == 1
    fa, fh = arm["faces"][0], host["faces"][0]
    assert max(abs(a - b) for a, b in zip(fa["box"], fh["box"], strict=True)) < 2.0
    for angle in ("yaw", "pitch", "roll"):
        assert abs(fa["pose"][angle] - fh["pose"][angle]) < 1.5, (angle, fa["pose"], fh["pose"])
    assert len(fa["eye_centers"]) == 2

    check = ["check", "/tmp/photo.jpg", "--profile", "id_card", "--json"]
    arm_check = _in_arm64(root, cpuinfo, "/opt/kiosk/current/bin/kiosk", *check)
    assert arm_check.returncode == host_check.returncode, arm_check.stderr[-3000:]
    arm_report, host_report = json.loads(arm_check.stdout), json.loads(host_check.stdout)
    assert arm_report["compliant"] == host_report["compliant"]
    verdicts = {c["id"]: c["passed"] for c in arm_report["checks"]}
    assert verdicts == {c["id"]: c["passed"] for c in host_report["checks"]}
    assert {"background_uniformity", "head_top_margin", "eyes_open", "yaw"} <= set(verdicts)

    # The terminal's side: this release's updater, on arm64, takes the bundle (its target and ABI
    # are the terminal's own) and installs it into a release root, health-checked by a stand-in
    # service that reports READY=1 over the notify socket the updater gives it.
    term = root / "opt/terminal"
    (term / "state/tuf").mkdir(parents=True)
    (root / "var/lib/kiosk").mkdir(parents=True, exist_ok=True)
    shutil.copy(pi_release["root_json"], term / "state/tuf/root.json")
    shutil.copy(pi_release["bundle"], root / "tmp/kiosk.kbundle")
    (root / "tmp/ready.py").write_text(
        "import os, socket, time\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "s.connect(os.environ['NOTIFY_SOCKET'])\n"
        "s.send(b'READY=1')\n"
        "time.sleep(30)\n"
    )
    apply = [
        "update",
        "apply",
        "/tmp/kiosk.kbundle",
        "--root",
        "/opt/terminal",
        "--state-dir",
        "/var/lib/kiosk",
    ]
    apply += [
        "--restart-command",
        "/usr/bin/python3 /tmp/ready.py",
        "--stable",
        "0.5",
        "--ready-timeout",
        "120",
    ]
    try:
        applied = _in_arm64(root, cpuinfo, "/opt/kiosk/current/bin/kiosk", *apply)
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int((term / "run/service.pid").read_text()), signal.SIGKILL)
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert applied.stdout.startswith("committed: release 1.0.0"), applied.stdout
    assert os.readlink(term / "current") == "releases/1.0.0"
    assert (term / "releases/1.0.0/site/ai_edge_litert").is_dir()
