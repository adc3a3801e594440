"""Shared fixtures: one analyzer per test session (models load once), sample images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.samples import sample_path
from kiosk.vision.imageio import load_image

FIXTURES = Path(__file__).parent / "fixtures"


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
