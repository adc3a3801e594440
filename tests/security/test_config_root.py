"""Issue 13, High 1 — root from the console: `config set fleet.restart_command "sh -c …"` was accepted
and the root-run updater executed it. Nothing the service user or a technician can write may be
executed by root: root-only settings live in a root-owned file, the console sets only allow-listed
data keys, and the units give the service no write access to the root-owned file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kiosk.config import ConfigError, load_config
from kiosk.fleet.manage import make_updater
from kiosk.fleet.service import CommandControl, SystemdControl
from kiosk.service_api import ApiError, call, socket_path
from tests.test_systemd_units import ALL_UNITS, UNITS, _tool, _verify, fake_root  # noqa: F401

ATTACKS = [
    ("fleet.restart_command", "sh -c 'id > /tmp/pwned'"),
    ("fleet.unit", "reboot.target"),
    ("fleet.repository_url", "https://evil.example/repo"),
    ("fleet.root", "/tmp/evil"),
    ("console.restart_command", "sh -c 'id > /tmp/pwned'"),
    ("receipt.platform_url", "https://evil.example/photos"),  # where citizens' photos go
]


@pytest.fixture
def served(tmp_path, console_api):
    return console_api('[fleet]\nroot = "/opt/kiosk"\n', at=tmp_path / "etc" / "kiosk" / "kiosk.toml")


@pytest.mark.parametrize(("key", "value"), ATTACKS)
def test_the_console_cannot_set_what_root_executes(served, key, value):
    base, state = served
    before = base.read_bytes()
    with pytest.raises(ApiError, match=f"{key} is root-only"):
        call(socket_path(state), "console.config_set", key=key, value=value)
    assert base.read_bytes() == before
    assert not (base.parent / "local" / "kiosk.toml").exists()
    cfg = load_config(base, state)
    upd = make_updater(cfg.fleet, state)
    assert isinstance(upd.service, SystemdControl) and upd.service.unit == "kiosk.service"
    # data keys still work
    reply = call(socket_path(state), "console.config_set", key="session.countdown_s", value="4")
    assert reply["value"] == 4.0


def test_the_console_cannot_point_a_file_printer_at_any_file(tmp_path):
    """The service would write slips into it: the store's database, say. Devices only."""
    from kiosk import config_edit

    base = tmp_path / "kiosk.toml"
    base.write_text('[receipt]\nprinter = "file"\nprinter_target = "/dev/usb/lp0"\n')
    with pytest.raises(ConfigError, match="printer_target: a file printer set from the console must be"):
        config_edit.set_value(base, "receipt.printer_target", "/var/lib/kiosk/kiosk.db")
    assert config_edit.set_value(base, "receipt.printer_target", "/dev/usb/lp1") == "/dev/usb/lp1"
    assert load_config(base).receipt.printer_target == "/dev/usb/lp1"


def test_root_keys_written_into_the_technicians_file_are_never_used(tmp_path, config_files):
    """The service user can write local/kiosk.toml directly (a compromised service): root ignores it."""
    base, _ = config_files(
        '[fleet]\nrestart_command = "sh -c id"\nunit = "reboot.target"\n[session]\ncountdown_s = 4.0\n'
    )
    cfg = load_config(base, tmp_path / "state")
    assert cfg.fleet.restart_command == "" and cfg.fleet.unit == "kiosk.service"
    assert "fleet.restart_command: not settable" in cfg.source.fallback
    upd = make_updater(cfg.fleet, cfg.state_dir)
    assert isinstance(upd.service, SystemdControl) and upd.service.unit == "kiosk.service"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the check applies to processes running as root")
def test_root_refuses_commands_from_a_file_others_can_change(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o755)
    base = etc / "kiosk.toml"
    base.write_text('[fleet]\nrestart_command = "sh -c id"\n')
    base.chmod(0o644)
    os.chown(base, 1000, 1000)  # owned by the service user
    with pytest.raises(ConfigError, match="fleet.restart_command: .* can be changed by a user other than"):
        load_config(base)
    os.chown(base, 0, 0)
    etc.chmod(0o775)  # the old /etc/kiosk: group-writable, a rename replaces the file
    with pytest.raises(ConfigError, match="refusing to act on it as root"):
        load_config(base)
    etc.chmod(0o755)
    upd = make_updater(load_config(base).fleet, tmp_path)  # root's own file: used
    assert isinstance(upd.service, CommandControl) and upd.service.argv == ["sh", "-c", "id"]


def _read_write_paths(unit: str) -> list[str]:
    out = []
    for line in (UNITS / unit).read_text().splitlines():
        if line.startswith("ReadWritePaths="):
            out += [p.lstrip("-+") for p in line.split("=", 1)[1].split()]
    return out


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("*.service")))
def test_no_unit_may_write_the_root_owned_file(unit):
    for path in _read_write_paths(unit):
        target = "/etc/kiosk/kiosk.toml"
        covered = target == path or target.startswith(path.rstrip("/") + "/")
        assert not covered, f"{unit}: ReadWritePaths={path} lets it replace /etc/kiosk/kiosk.toml"
    if unit in ("kiosk.service", "kiosk-console.service"):
        assert "/etc/kiosk/local" in _read_write_paths(unit)  # config set (and while the service is down)


def test_units_verify_and_tmpfiles_make_the_root_file_roots(fake_root, tmp_path):  # noqa: F811
    proc = _verify(fake_root, ALL_UNITS)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    (tmp_path / "etc").mkdir()
    for tool, conf in (
        ("systemd-sysusers", "sysusers.d/kiosk.conf"),
        ("systemd-tmpfiles", "tmpfiles.d/kiosk.conf"),
    ):
        args = [_tool(tool), f"--root={tmp_path}", str(UNITS / conf)]
        if tool == "systemd-tmpfiles":
            args.insert(1, "--create")
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    groups = (tmp_path / "etc/group").read_text().splitlines()
    gid = {ln.split(":")[0]: int(ln.split(":")[2]) for ln in groups}
    etc, local = Path(tmp_path / "etc/kiosk").stat(), Path(tmp_path / "etc/kiosk/local").stat()
    assert (etc.st_mode & 0o777, etc.st_uid, etc.st_gid) == (0o755, 0, 0)
    assert (local.st_mode & 0o777, local.st_uid, local.st_gid) == (0o770, 0, gid["kiosk"])
