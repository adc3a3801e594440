"""Issue 13, Medium 7 — the console's `update apply` ignored the updater lock (the CLI honours it)
and skipped the recovery of an interrupted update. It now takes the CLI's path (kiosk.fleet.manage):
lock, recover, then act."""

from __future__ import annotations

import pytest

from kiosk.config import load_config
from kiosk.maintenance import MaintenanceContext, register_console_handlers
from kiosk.service_api import ApiError, ServiceApi, call, socket_path
from tests.test_fleet_support import make_fleet

pytestmark = pytest.mark.slow  # real releases started as child processes


@pytest.fixture
def served(tmp_path, monkeypatch):
    fleet = make_fleet(tmp_path / "fleet", monkeypatch)
    state = tmp_path / "state"
    cfg = load_config(None, state)
    api = ServiceApi()
    register_console_handlers(api, MaintenanceContext(config=cfg, updater=fleet.updater()))
    api.serve(socket_path(state))
    yield fleet, socket_path(state)
    api.close()
    fleet.stop_service()


def test_console_apply_waits_for_the_updater_lock(served):
    fleet, sock = served
    with fleet.updater().locked():  # the timer's or a technician's shell's update is running
        with pytest.raises(ApiError, match="another update is running"):
            call(sock, "console.update", timeout=60.0, action="apply", bundle=str(fleet.bundle("1.0.0")))
    assert fleet.current() is None


def test_console_apply_recovers_an_interrupted_update_first(served):
    fleet, sock = served
    assert fleet.updater().apply(fleet.bundle("1.0.0")).status == "committed"
    (fleet.root / "current").unlink()  # a power cut left the link missing
    reply = call(sock, "console.update", timeout=120.0, action="apply", bundle=str(fleet.bundle("1.1.0")))
    assert reply["result"].startswith("recovered") and "committed: release 1.1.0" in reply["result"]
    assert fleet.current() == "1.1.0"
