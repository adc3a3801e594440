"""Where the session publishes what the screen shows — the state snapshot, the latest live frame
and the document photo — for the UI server's threads to read. Writers never wait for readers."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


class Hub:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.version = 0
        self.state: dict[str, Any] = {}
        self.frame_version = 0
        self.frame: np.ndarray | None = None
        self.photo: bytes | None = None  # the document photo under review (JPEG)
        self.closed = False

    def publish(self, state: dict[str, Any]) -> None:
        with self._cond:
            self.version += 1
            self.state = {**state, "version": self.version}
            self._cond.notify_all()

    def publish_frame(self, rgb: np.ndarray | None) -> None:
        with self._cond:
            self.frame = rgb
            self.frame_version += 1
            self._cond.notify_all()

    def set_photo(self, jpeg: bytes | None) -> None:
        with self._cond:
            self.photo = jpeg

    def wait_state(self, after: int, timeout: float) -> tuple[int, dict[str, Any]]:
        """The newest state once its version is above ``after`` (or the current one on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self.version > after or self.closed, timeout)
            return self.version, self.state

    def wait_frame(self, after: int, timeout: float) -> tuple[int, np.ndarray | None]:
        with self._cond:
            self._cond.wait_for(lambda: self.frame_version > after or self.closed, timeout)
            return self.frame_version, self.frame

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
