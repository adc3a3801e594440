"""The [fleet] configuration section: defaults, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.config import ConfigError, load_config
from kiosk.fleet.manage import make_updater
from kiosk.fleet.service import CommandControl, SystemdControl


def _cfg(tmp_path, text: str):
    p = tmp_path / "k.toml"
    p.write_text(text)
    return load_config(p, tmp_path / "state")


def test_defaults_use_systemd(tmp_path):
    cfg = load_config(None, tmp_path)
    upd = make_updater(cfg.fleet, cfg.state_dir)
    assert isinstance(upd.service, SystemdControl) and upd.service.unit == "kiosk.service"
    assert upd.root == Path("/opt/kiosk") and upd.policy.stable_seconds == 60.0


def test_file_values_and_command_line_overrides(tmp_path):
    cfg = _cfg(tmp_path, '[fleet]\nroot = "/srv/k"\nrestart_command = "{root}/current/bin/x"\nstable_s = 5\n')
    upd = make_updater(cfg.fleet, cfg.state_dir, root=str(tmp_path), stable_s=1.5, ready_timeout_s=None)
    assert isinstance(upd.service, CommandControl) and upd.service.argv == [f"{tmp_path}/current/bin/x"]
    assert upd.root == tmp_path and upd.policy.stable_seconds == 1.5 and upd.policy.ready_timeout == 90.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('repository_url = "ftp://x"', "fleet.repository_url: expected https://"),
        ("stable_s = 0", "fleet.stable_s: must be between 0 and 3600"),
        ("max_attempts = 0", "fleet.max_attempts: must be between 1 and 10"),
        ("give_up_after_s = -1", "fleet.give_up_after_s"),
        ("bogus = 1", "fleet.bogus: unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        _cfg(tmp_path, f"[fleet]\n{text}\n")
