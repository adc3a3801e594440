"""File camera: plays an image, a directory of images (sorted by name) or a video, looping.

For replaying a recorded session on a laptop; the still is the current frame at its file size.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from kiosk.errors import InputError
from kiosk.hw.camera import Camera, CameraError, Frame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


class FileCamera(Camera):
    name = "file"

    def __init__(self, path: Path, size: tuple[int, int] = (640, 480), fps: int = 30, realtime: bool = False):
        self.path, self.size, self.fps, self.realtime = Path(path), size, fps, realtime
        self.index = 0
        self._wall0 = time.monotonic()
        self._cap: cv2.VideoCapture | None = None
        self._images: list[Path] = []
        self._current: np.ndarray | None = None
        if not self.path.exists():
            raise InputError(f"file camera: {self.path}: no such file or directory")
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise InputError(f"file camera: {self.path}: no images in the directory")
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self._images = [self.path]
        else:
            self._open_video()

    def _open_video(self) -> None:
        cap = cv2.VideoCapture(str(self.path))
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            cap.release()
            raise InputError(f"file camera: {self.path}: not an image or a readable video")
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._cap = cap

    def _next_full(self) -> np.ndarray:
        if self._cap is not None:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:  # loop
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    raise CameraError(f"file camera: {self.path}: video stopped delivering frames")
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        from kiosk.vision.imageio import load_image

        path = self._images[self.index % len(self._images)]
        try:
            return load_image(path)
        except InputError as exc:
            raise CameraError(f"file camera: {exc}") from None

    def frame(self) -> Frame:
        t = self.index / self.fps
        if self.realtime:
            delay = self._wall0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        full = self._next_full()
        self._current = full
        w, h = self.size
        fh, fw = full.shape[:2]
        s = min(w / fw, h / fh)  # fit inside the frame size, keep the aspect
        small = cv2.resize(full, (max(1, round(fw * s)), max(1, round(fh * s))), interpolation=cv2.INTER_AREA)
        frame = Frame(small, t, self.index)
        self.index += 1
        return frame

    def still(self) -> np.ndarray:
        if self._current is None:
            self.frame()
        assert self._current is not None
        return self._current.copy()

    def describe(self) -> dict:
        return {"backend": self.name, "source": str(self.path), "size": list(self.size), "fps": self.fps}

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
