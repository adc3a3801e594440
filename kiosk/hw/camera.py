"""The camera interface every backend implements (backend selection is kiosk.hw.cameras).

Every backend gives small RGB frames for live analysis and preview, and a full-resolution still
of the same scene on demand. This module imports no backend, so backends can import it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kiosk.errors import KioskError

LevelsSource = Callable[[], dict[str, float]]  # LED levels 0..1 by name, read by the simulated camera


class CameraError(KioskError):
    """The camera cannot be opened or stopped delivering frames."""


@dataclass
class Frame:
    rgb: np.ndarray  # HxWx3 uint8, the analysis/preview stream
    t: float  # seconds on the camera's clock (monotonic, or simulated time)
    index: int


class Camera(ABC):
    """A started camera; ``frame`` blocks for the next frame, ``still`` returns the current scene
    at full resolution (taken from the frame the citizen saw, not after a mode switch)."""

    name: str = "camera"

    @abstractmethod
    def frame(self) -> Frame: ...

    @abstractmethod
    def still(self) -> np.ndarray: ...

    def describe(self) -> dict:
        return {"backend": self.name}

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        pass

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
