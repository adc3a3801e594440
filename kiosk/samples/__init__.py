"""Bundled sample images (see README.md here); a leaf module so anything may ask for a sample path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_path(name: str = "astronaut.jpg") -> Path:
    """The bundled sample image NAME as a filesystem path."""
    return Path(str(resources.files("kiosk.samples").joinpath(name)))
