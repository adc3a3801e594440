"""USB camera through OpenCV's V4L2 backend: MJPG at the still size, frames downscaled for analysis.

A UVC camera cannot switch resolution without a stall, so it streams at the still size and the
still is the latest full frame (the frame the citizen saw).
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from kiosk.config import HardwareConfig
from kiosk.hw.camera import Camera, CameraError, Frame


class V4L2Camera(Camera):
    name = "v4l2"

    def __init__(self, cfg: HardwareConfig):
        self.device = cfg.camera_device
        self.size = (cfg.frame_width, cfg.frame_height)
        cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise CameraError(f"camera {self.device}: cannot open (unplugged, or busy in another program?)")
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.still_width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.still_height)
        cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
        self._cap = cap
        self._full: np.ndarray | None = None
        self.index = 0

    def frame(self) -> Frame:
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise CameraError(f"camera {self.device}: stopped delivering frames")
        self._full = bgr
        w, h = self.size
        small = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA) if bgr.shape[1] != w else bgr
        frame = Frame(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), time.monotonic(), self.index)
        self.index += 1
        return frame

    def still(self) -> np.ndarray:
        if self._full is None:
            self.frame()
        assert self._full is not None
        return cv2.cvtColor(self._full, cv2.COLOR_BGR2RGB)

    def describe(self) -> dict:
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return {"backend": self.name, "device": self.device, "stream": [w, h], "size": list(self.size)}

    def close(self) -> None:
        self._cap.release()
