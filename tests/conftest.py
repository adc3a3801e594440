"""Shared fixtures: one analyzer per test session (models load once), sample images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.samples import sample_path
from kiosk.vision.imageio import load_image

FIXTURES = Path(__file__).parent / "fixtures"

#: Markers left out of the quick edit-test loop; `pytest --full` (the README's command) runs them.
LONG_MARKERS = ("slow", "browser", "soak")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full", action="store_true", help="also run the slow, browser and soak tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect long tests unless --full or an explicit -m expression asks for them."""
    if config.getoption("--full") or config.getoption("-m"):
        return
    keep, drop = [], []
    for item in items:
        (drop if any(item.get_closest_marker(m) for m in LONG_MARKERS) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def analyzer():
    from kiosk.vision import FaceAnalyzer

    return FaceAnalyzer()


@pytest.fixture(scope="session")
def sample_rgb() -> np.ndarray:
    return load_image(sample_path())


@pytest.fixture(scope="session")
def tools():
    """The photo engine (models loaded once for the whole run)."""
    from kiosk.photo.service import PhotoTools

    return PhotoTools()


@pytest.fixture
def start_service(tmp_path):
    """One way for every test to run `kiosk run --sim` in-process: call it with session settings
    to override; the service is stopped and closed after the test."""
    import threading
    from dataclasses import replace

    from kiosk.config import load_config
    from kiosk.service import Service

    started = []

    def start(cfg=None, **session):
        cfg = cfg or load_config(None, tmp_path / "state")
        cfg = replace(cfg, session=replace(cfg.session, **{"ui_port": 0, **session}))
        svc = Service(cfg, sim=True).start()
        thread = threading.Thread(target=svc.run, daemon=True)
        thread.start()
        started.append((svc, thread))
        return svc

    yield start
    for svc, thread in reversed(started):
        svc.stop()
        thread.join(10)
        svc.close()

