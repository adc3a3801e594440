"""hardware/: the provisioning script run into a temporary root, and the pin map the configuration
reads agreeing with the wiring document."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.fleet.manage import build_from_checkout
from kiosk.fleet.repository import Repository, generate_keys

HW = Path(__file__).resolve().parent.parent / "hardware"

SERVICE = """#!{python}
import time
from kiosk.fleet.sdnotify import Notifier
Notifier().ready("ready")
time.sleep(20)
"""


@pytest.fixture
def sysroot(tmp_path):
    root = tmp_path / "sys"
    yield root
    try:
        os.killpg(int((root / "opt/kiosk/run/service.pid").read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _provision(sysroot: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KIOSK_PYTHON=sys.executable)
    env.pop("KIOSK_CONFIG", None)
    return subprocess.run(
        [str(HW / "provision.sh"), "--root", str(sysroot), "--no-system", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_provision_into_a_temporary_root(tmp_path, sysroot):
    generate_keys(tmp_path / "keys")
    root_json = Repository(tmp_path / "repo", tmp_path / "keys").init()
    bundle = tmp_path / "kiosk-1.0.0.kbundle"
    build_from_checkout("1.0.0", [str(tmp_path / "keys/targets.pem")], str(bundle), "any")
    svc = tmp_path / "svc.py"
    svc.write_text(SERVICE.replace("{python}", sys.executable))
    svc.chmod(0o755)
    proc = _provision(
        sysroot,
        "--bundle", str(bundle),
        "--trusted-root", str(root_json),
        "--repo", "https://fleet.invalid/kiosk",
        "--restart-command", str(svc),
        "--update-option", "--stable=0.5",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "committed: release 1.0.0" in proc.stdout
    assert os.readlink(sysroot / "opt/kiosk/current") == "releases/1.0.0"
    assert (sysroot / "opt/kiosk/current/bin/kiosk").is_file()
    assert re.search(r"^kiosk:x:\d+:", (sysroot / "etc/passwd").read_text(), re.M)
    for unit in ("kiosk.service", "kiosk-update.timer", "kiosk-ui.service", "kiosk-console.service"):
        assert (sysroot / "etc/systemd/system" / unit).is_file()
    assert (sysroot / "etc/udev/rules.d/99-kiosk.rules").is_file()
    cfg = load_config(sysroot / "etc/kiosk/kiosk.toml")
    pins = tomllib.loads((HW / "pinmap.toml").read_text())["hardware"]
    for key, value in pins.items():
        assert getattr(cfg.hardware, key) == value, key
    assert cfg.console.port == "/dev/serial0"
    assert cfg.fleet.repository_url == "https://fleet.invalid/kiosk"

    # Re-running (here without a bundle) keeps one config.txt block and the existing configuration.
    boot = sysroot / "boot/firmware/config.txt"
    boot.write_text("# the image's own lines\narm_64bit=1\n" + boot.read_text())
    proc = _provision(sysroot, "--trusted-root", str(root_json))
    assert proc.returncode == 0, proc.stderr
    text = boot.read_text()
    assert text.count("# >>> kiosk") == 1 and text.count("enable_uart=1") == 1 and "arm_64bit=1" in text


def test_provision_refuses_bad_arguments(tmp_path):
    proc = _provision(tmp_path / "sys", "--bundle", str(tmp_path / "missing.kbundle"))
    assert proc.returncode == 2 and "bundle not found" in proc.stderr
    proc = _provision(tmp_path / "sys", "--frobnicate")
    assert proc.returncode == 2 and "unknown option --frobnicate" in proc.stderr


def test_pin_map_matches_the_wiring_document():
    pins = tomllib.loads((HW / "pinmap.toml").read_text())["hardware"]
    readme = (HW / "README.md").read_text()
    pin_keys = {k: v for k, v in pins.items() if k.endswith("_pin")}
    assert len(pin_keys) == 6 and len(set(pin_keys.values())) == 6
    for key, gpio in pin_keys.items():
        rows = [line for line in readme.splitlines() if f"`hardware.{key}`" in line]
        assert len(rows) == 1, key
        assert f"| GPIO{gpio} " in rows[0] or f"| GPIO{gpio} (" in rows[0], (key, rows[0])


def test_config_txt_enables_what_the_units_expect():
    lines = {line.strip() for line in (HW / "config.txt").read_text().splitlines()}
    assert {"enable_uart=1", "dtoverlay=disable-bt", "camera_auto_detect=1", "dtparam=watchdog=on"} <= lines
    rules = (HW / "udev/99-kiosk.rules").read_text()
    assert 'SYMLINK+="kiosk-printer"' in rules and 'SYMLINK+="kiosk-camera"' in rules


def test_bill_of_materials_is_well_formed():
    import csv

    rows = list(csv.DictReader((HW / "bom.csv").open()))
    assert rows and all(r["item"] and r["qty"].isdigit() and r["part"] for r in rows)
    items = {r["item"] for r in rows}
    assert {"computer", "camera", "LED drivers", "buttons", "printer"} <= items


# apt's Python packages provision.sh may name, and the module each puts in /usr/lib/python3/dist-packages
APT_MODULES = {
    "python3-numpy": "numpy",
    "python3-opencv": "cv2",
    "python3-pil": "PIL",
    "python3-gpiozero": "gpiozero",
    "python3-serial": "serial",
    "python3-lgpio": "lgpio",
    "python3-picamera2": "picamera2",
}


def _apt_packages() -> list[str]:
    script = (HW / "provision.sh").read_text().replace("\\\n", " ")
    lines = [x for x in script.splitlines() if "apt-get install" in x and not x.strip().startswith("#")]
    assert len(lines) == 1, lines
    return [w for w in lines[0].split("apt-get install", 1)[1].split() if not w.startswith("-")]


def _pi_lock_modules() -> set[str]:
    """The top-level modules of the distributions the Pi's bundle ships (its lock), as installed here."""
    import importlib.metadata

    lock = (HW.parent / "locks" / "aarch64-cp311.txt").read_text()
    dists = {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    return {
        mod
        for mod, owners in importlib.metadata.packages_distributions().items()
        if {o.lower().replace("_", "-") for o in owners} & dists
    }


def test_apt_installs_no_python_library_the_bundle_ships():
    """The release's site/ (hash-pinned, first on the launcher's path) supplies numpy, OpenCV, Pillow,
    gpiozero and pyserial: apt must not install them by name, so the two never disagree. What stays
    from apt (picamera2 with libcamera's bindings, lgpio) is not in the lock."""
    packages = _apt_packages()
    python = [p for p in packages if p.startswith("python3-") and p != "python3-venv"]
    assert set(python) <= set(APT_MODULES), "a new python3-* package: add it to APT_MODULES and decide"
    bundled = _pi_lock_modules()
    assert {"numpy", "cv2", "PIL", "gpiozero", "serial"} <= bundled  # what the kiosk imports at run time
    assert not {APT_MODULES[p] for p in python} & bundled, python
    assert {"python3", "python3-picamera2", "python3-lgpio", "espeak-ng"} <= set(packages)
