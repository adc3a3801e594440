"""Fixtures of the security tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.maintenance import MaintenanceContext, register_console_handlers
from kiosk.service_api import ServiceApi, socket_path


@pytest.fixture
def console_api(tmp_path, config_files):
    """The service's API with the console handlers, on a base configuration file as provisioning
    writes it: call it with the file's text (and where it lies); returns (base, state dir). Every
    API it served is closed after the test."""
    served = []

    def serve(base_text: str, at: Path | None = None) -> tuple[Path, Path]:
        base, _ = config_files(base=base_text, at=at)
        cfg = load_config(base, tmp_path / "state")
        api = ServiceApi()
        register_console_handlers(api, MaintenanceContext(config=cfg))
        api.serve(socket_path(cfg.state_dir))
        served.append(api)
        return base, cfg.state_dir

    yield serve
    for api in served:
        api.close()
