"""Camera interface and backend selection.

Every backend gives small RGB frames for live analysis and preview, and a full-resolution still
of the same scene on demand. Real backends import their driver lazily, so a laptop without
picamera2 still runs; ``auto`` falls back to the simulated camera when no device is present.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.config import HardwareConfig
from kiosk.errors import KioskError

log = logging.getLogger("kiosk.hw.camera")

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


def picamera2_present() -> bool:
    """A libcamera camera is present when the picamera2 module imports and lists one."""
    try:
        from picamera2 import Picamera2  # noqa: PLC0415 - lazy: Pi only
    except Exception:
        return False
    try:
        return len(Picamera2.global_camera_info()) > 0
    except Exception:
        return False


def open_camera(
    cfg: HardwareConfig,
    sim: bool = False,
    levels: LevelsSource | None = None,
    face_analyzer: object | None = None,
) -> Camera:
    """Open the configured backend; ``sim`` or ``auto`` without a device selects the simulated camera.

    The log line names the backend that runs, so a technician sees at once whether the real
    camera was found.
    """
    choice = "sim" if sim else cfg.camera
    if choice == "auto":
        if picamera2_present():
            choice = "picamera2"
        elif os.path.exists(cfg.camera_device):
            choice = "v4l2"
        else:
            log.warning(
                "no camera found (no libcamera camera, no %s): using the simulated camera", cfg.camera_device
            )
            choice = "sim"
    if choice == "picamera2":
        from kiosk.hw.camera_picamera2 import Picamera2Camera

        cam: Camera = Picamera2Camera(cfg)
    elif choice == "v4l2":
        from kiosk.hw.camera_v4l2 import V4L2Camera

        cam = V4L2Camera(cfg)
    elif choice == "file":
        from kiosk.hw.camera_file import FileCamera

        cam = FileCamera(Path(cfg.camera_file), (cfg.frame_width, cfg.frame_height), cfg.fps)
    else:
        from kiosk.sim.scene import SimCamera

        cam = SimCamera.from_config(cfg, levels=levels, analyzer=face_analyzer)
    log.info("camera backend: %s", cam.describe())
    return cam
