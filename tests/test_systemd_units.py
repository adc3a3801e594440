"""The units under systemd's own tools: `systemd-analyze verify` clean, `security --offline` exposure
<= 2.0 for every long-running unit, and sysusers/tmpfiles applied to a temporary root."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
LONG_RUNNING = ["kiosk.service", "kiosk-console.service", "kiosk-ui.service"]
ALL_UNITS = LONG_RUNNING + [
    "kiosk-update.service",
    "kiosk-update.timer",
    "kiosk-update-recover.service",
    "kiosk-purge.service",
    "kiosk-purge.timer",
]
# Executables the units start; stand-ins are created in the temporary root so verify can stat them.
EXECUTABLES = ["opt/kiosk/current/bin/kiosk", "usr/bin/cage"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: install the Debian package 'systemd'"
    return path


def _unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, empty_lines_in_values=False)
    cp.optionxform = str  # keys are case-sensitive in systemd

    # systemd allows repeated keys; keep the last for these structural checks
    cp.read_string(_dedupe((UNITS / name).read_text()))
    return cp


def _dedupe(text: str) -> str:
    seen: dict[tuple[str, str], int] = {}
    lines = []
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line
        elif "=" in line and not line.startswith("#"):
            key = line.split("=", 1)[0]
            n = seen.get((section, key), 0)
            seen[(section, key)] = n + 1
            if n:
                line = f"{key}__{n}={line.split('=', 1)[1]}"
        lines.append(line)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sysroot")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    dest = root / "etc/systemd/system"
    dest.mkdir(parents=True)
    for name in ALL_UNITS:
        shutil.copy(UNITS / name, dest / name)
    for rel in EXECUTABLES:
        exe = root / rel
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return root


def _verify(root: Path, names: list[str]) -> subprocess.CompletedProcess:
    cmd = [_tool("systemd-analyze"), "verify", "--man=no", "--generators=no", f"--root={root}"]
    cmd += [str(root / "etc/systemd/system" / n) for n in names]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_verify_is_clean(fake_root):
    proc = _verify(fake_root, ALL_UNITS)
    assert proc.returncode == 0 and proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr


def test_verify_reports_a_broken_unit(fake_root):
    """The check above can fail: a typo and a bad value are reported on stderr."""
    bad = fake_root / "etc/systemd/system/broken.service"
    bad.write_text("[Service]\nExecStart=/usr/bin/cage\nWatchdogSecs=30\nRestart=sometimes\n")
    proc = _verify(fake_root, ["broken.service"])
    assert "Unknown key 'WatchdogSecs'" in proc.stderr
    assert "restart specifier" in proc.stderr


@pytest.mark.parametrize(
    "name", LONG_RUNNING + ["kiosk-update.service", "kiosk-update-recover.service", "kiosk-purge.service"]
)
def test_security_exposure_at_most_2(name):
    proc = subprocess.run(
        [_tool("systemd-analyze"), "security", "--offline=true", "--no-pager", str(UNITS / name)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert m, proc.stdout[-500:] + proc.stderr
    assert float(m.group(1)) <= 2.0, f"{name}: exposure {m.group(1)}"


def test_kiosk_service_contract():
    svc = _unit("kiosk.service")["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main"
    assert int(svc["WatchdogSec"]) > 0 and svc["Restart"] == "on-failure"
    assert "StartLimitBurst" in _unit("kiosk.service")["Unit"]
    assert svc["User"] == "kiosk" and svc["ProtectSystem"] == "strict"
    assert svc["DevicePolicy"] == "closed" and "PrivateDevices" not in svc
    assert svc["CapabilityBoundingSet"] == "" and svc["NoNewPrivileges"] == "yes"
    assert svc["SystemCallFilter"] == "@system-service"


def test_update_timer_starts_update_service_and_tempfail_is_success():
    assert _unit("kiosk-update.timer")["Timer"]["OnUnitInactiveSec"]
    svc = _unit("kiosk-update.service")["Service"]
    assert "75" in svc["SuccessExitStatus"].split()
    assert "update" in svc["ExecStart"] and "--root" in svc["ExecStart"]


def test_sysusers_and_tmpfiles_apply_to_a_temporary_root(tmp_path):
    (tmp_path / "etc").mkdir()
    conf = UNITS / "sysusers.d/kiosk.conf"
    proc = subprocess.run(
        [_tool("systemd-sysusers"), f"--root={tmp_path}", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    passwd = (tmp_path / "etc/passwd").read_text()
    group = (tmp_path / "etc/group").read_text()
    assert re.search(r"^kiosk:x:\d+:\d+:.*:/usr/sbin/nologin$", passwd, re.M)
    members = {line.split(":")[0]: line.split(":")[3] for line in group.splitlines()}
    for grp in ("video", "gpio", "dialout", "lp"):
        assert "kiosk" in members[grp].split(","), grp
    proc = subprocess.run(
        [_tool("systemd-tmpfiles"), "--create", f"--root={tmp_path}", str(UNITS / "tmpfiles.d/kiosk.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    photos = tmp_path / "var/lib/kiosk/photos"
    assert photos.is_dir() and (photos.stat().st_mode & 0o777) == 0o750
    assert (tmp_path / "opt/kiosk/releases").is_dir()
    assert (tmp_path / "var/lib/kiosk/update.inhibit").is_file()


def test_purge_timer_runs_the_store_purge_daily_as_the_kiosk_user():
    timer = _unit("kiosk-purge.timer")["Timer"]
    assert timer["Unit"] == "kiosk-purge.service" and timer["Persistent"] == "true"
    assert "03:30" in timer["OnCalendar"]
    svc = _unit("kiosk-purge.service")["Service"]
    assert svc["ExecStart"].split()[-2:] == ["store", "purge"]
    assert svc["User"] == "kiosk" and svc["PrivateNetwork"] == "yes"
