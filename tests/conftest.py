"""Shared fixtures: one analyzer per test session (models load once), sample images."""

from __future__ import annotations

import shutil
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


@pytest.fixture
def config_files(tmp_path):
    """The configuration files as a terminal has them: call it with the technician's file's text
    (local/kiosk.toml beside the base; not written when None), the base file's text and where the
    base lies (default tmp_path/kiosk.toml); returns (base, local)."""
    from kiosk.config import local_path

    def write(local: str | None = None, base: str = "", at: Path | None = None) -> tuple[Path, Path]:
        base_file = at or tmp_path / "kiosk.toml"
        base_file.parent.mkdir(parents=True, exist_ok=True)
        base_file.write_text(base)
        local_file = local_path(base_file)
        if local is not None:
            local_file.parent.mkdir(exist_ok=True)
            local_file.write_text(local)
        return base_file, local_file

    return write


#: Debian's chromium and chromium-driver (apt), which CI installs for the browser tests.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def chromium(tmp_path):
    """One way for every browser test to open headless Chromium: call it with a window size;
    ``exact`` makes the page the kiosk's display itself (no scrollbars, one CSS px a device px).
    Every browser it opened quits after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    opened = []

    def open_browser(width: int = 1280, height: int = 1100, exact: bool = False):
        opts = Options()
        opts.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            *(["--hide-scrollbars"] if exact else []),
            f"--user-data-dir={tmp_path / f'chromium-{len(opened)}'}",
            f"--window-size={width},{height}",
        ):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=opts)
        opened.append(driver)
        if exact:
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        return driver

    yield open_browser
    for driver in reversed(opened):
        driver.quit()


@pytest.fixture
def browser(chromium):
    """Headless Chromium at 1280x1100, the window the whole-session browser tests use."""
    return chromium()
