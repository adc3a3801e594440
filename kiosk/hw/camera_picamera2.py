"""Raspberry Pi camera through Picamera2: one configuration with a full-resolution main stream
and a small YUV420 ``lores`` stream for analysis, so a still needs no mode switch (picamera2
#1062: 0.5-0.7 s stall; #1130: ENOMEM after many switches).

Choose the still size among the sensor modes that still run at the analysis rate (on the HQ
camera the 2x2-binned 2028x1520 mode runs at 40 fps; full 4056x3040 only at about 10, #914).
The still is the next request after the trigger (``flush=True``), so it is synchronised with the
LED levels and follows the last analysed frame by one frame period.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from kiosk.config import HardwareConfig
from kiosk.hw.camera import Camera, CameraError, Frame

# libcamera's still configuration uses full-range YCbCr (sYCC); OpenCV's I420 conversion expects the
# limited (video) range, so the planes are mapped to it first: one table lookup per plane.
_Y_TO_LIMITED = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)
_C_TO_LIMITED = np.round(128 + (np.arange(256) - 128) * 224 / 255).astype(np.uint8)


def yuv420_to_rgb(yuv: np.ndarray, w: int, h: int) -> np.ndarray:
    """RGB of a full-range YUV420 array of shape (h*3/2, stride) (picamera2's lores layout)."""
    planes = yuv[: h * 3 // 2, :w].copy()
    planes[:h] = cv2.LUT(planes[:h], _Y_TO_LIMITED)
    planes[h:] = cv2.LUT(planes[h:], _C_TO_LIMITED)
    return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)


class Picamera2Camera(Camera):
    name = "picamera2"

    def __init__(self, cfg: HardwareConfig):
        try:
            from picamera2 import Picamera2  # lazy: Raspberry Pi OS only
        except ImportError as exc:
            raise CameraError(f"picamera2 is not installed ({exc.name})") from None
        self.size = (cfg.frame_width, cfg.frame_height)
        try:
            self._cam = Picamera2()
            config = self._cam.create_still_configuration(
                main={"size": (cfg.still_width, cfg.still_height), "format": "RGB888"},
                lores={"size": self.size, "format": "YUV420"},
                buffer_count=3,
                controls={"FrameRate": cfg.fps},
            )
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:
            raise CameraError(f"camera: cannot start ({exc})") from None
        self.index = 0

    def frame(self) -> Frame:
        try:
            request = self._cam.capture_request()
        except Exception as exc:
            raise CameraError(f"camera: stopped delivering frames ({exc})") from None
        try:
            yuv = request.make_array("lores")
        finally:
            request.release()
        w, h = self.size
        rgb = yuv420_to_rgb(yuv, w, h)
        frame = Frame(rgb, time.monotonic(), self.index)
        self.index += 1
        return frame

    def still(self) -> np.ndarray:
        """The next full frame after the call (flush: synchronised with the LED levels just set)."""
        try:
            request = self._cam.capture_request(flush=True)
            try:
                main = request.make_array("main")
            finally:
                request.release()
        except Exception as exc:
            raise CameraError(f"camera: still failed ({exc})") from None
        return cv2.cvtColor(main, cv2.COLOR_BGR2RGB)  # picamera2's "RGB888" is BGR in memory

    def describe(self) -> dict:
        return {"backend": self.name, "size": list(self.size)}

    def close(self) -> None:
        try:
            self._cam.stop()
            self._cam.close()
        except Exception:
            pass
