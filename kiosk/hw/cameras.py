"""Camera backend selection: picamera2, V4L2, a file or folder, or the simulated camera.

Real backends import their driver lazily, so a laptop without picamera2 still runs; ``auto`` falls
back to the simulated camera, which the caller supplies (kiosk.station injects kiosk.sim's), when
no device is present.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from kiosk.config import HardwareConfig
from kiosk.hw.camera import Camera, CameraError

log = logging.getLogger("kiosk.hw.camera")


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
    simulated: Callable[[], Camera] | None = None,
) -> Camera:
    """Open the configured backend; ``sim`` or ``auto`` without a device selects the simulated camera,
    which the caller supplies (kiosk.station injects kiosk.sim's: drivers do not know the simulator).

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
    elif simulated is not None:
        cam = simulated()
    else:
        raise CameraError(f"camera {choice!r}: no simulated camera was supplied (kiosk.station supplies it)")
    log.info("camera backend: %s", cam.describe())
    return cam
