"""The Pi and USB camera backends without the hardware: Picamera2 against a stand-in module that
records how it is configured (one configuration, main + YUV420 lores, no mode switch for the
still), and V4L2's error for a missing device."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from kiosk.config import HardwareConfig
from kiosk.hw.camera import CameraError
from kiosk.hw.cameras import open_camera


class FakeRequest:
    def __init__(self, cam):
        self.cam = cam

    def make_array(self, stream):
        cfg = self.cam.config[stream]
        w, h = cfg["size"]
        if stream == "lores":  # YUV420: Y plane then U and V quarter planes, stride = width here
            yuv = np.full((h * 3 // 2, w), 128, np.uint8)
            yuv[:h] = 200
            return yuv
        bgr = np.zeros((h, w, 3), np.uint8)
        bgr[..., 0] = 255  # blue in picamera2's "RGB888", which is BGR in memory
        return bgr

    def release(self):
        self.cam.released += 1


class FakePicamera2:
    instances: list = []

    def __init__(self):
        self.calls = []
        self.released = 0
        FakePicamera2.instances.append(self)

    @staticmethod
    def global_camera_info():
        return [{"Model": "imx477"}]

    def create_still_configuration(self, main, lores, buffer_count, controls):
        self.calls.append(("create_still_configuration", main, lores, buffer_count, controls))
        return {"main": main, "lores": lores}

    def configure(self, config):
        self.config = config
        self.calls.append(("configure",))

    def start(self):
        self.calls.append(("start",))

    def capture_request(self, flush=False):
        self.calls.append(("capture_request", flush))
        return FakeRequest(self)

    def stop(self):
        self.calls.append(("stop",))

    def close(self):
        self.calls.append(("close",))


@pytest.fixture
def fake_picamera2(monkeypatch):
    mod = types.ModuleType("picamera2")
    mod.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", mod)
    FakePicamera2.instances.clear()
    return FakePicamera2


def test_picamera2_streams_lores_for_analysis_and_takes_the_still_without_a_mode_switch(fake_picamera2):
    cfg = HardwareConfig(
        camera="auto", frame_width=320, frame_height=240, still_width=2028, still_height=1520
    )
    cam = open_camera(cfg)  # auto: libcamera lists a camera
    assert cam.name == "picamera2"
    fake = fake_picamera2.instances[0]
    _, main, lores, buffers, controls = fake.calls[0]
    assert main == {"size": (2028, 1520), "format": "RGB888"} and lores == {
        "size": (320, 240),
        "format": "YUV420",
    }
    assert controls == {"FrameRate": 30}
    frame = cam.frame()
    assert frame.rgb.shape == (240, 320, 3) and abs(int(frame.rgb.mean()) - 200) <= 2  # grey from Y=200
    still = cam.still()
    assert still.shape == (1520, 2028, 3) and still[..., 2].min() == 255 and still[..., 0].max() == 0
    assert ("capture_request", True) in fake.calls  # the still is a fresh frame (LED levels settled)
    assert [c[0] for c in fake.calls].count("configure") == 1  # one configuration for frames and stills
    assert fake.released == 2  # every request goes back to the camera
    cam.close()
    assert fake.calls[-2:] == [("stop",), ("close",)]


def test_picamera2_failures_are_camera_errors(fake_picamera2, monkeypatch):
    def broken(self, flush=False):
        raise RuntimeError("Camera frontend has timed out!")

    monkeypatch.setattr(fake_picamera2, "capture_request", broken)
    cam = open_camera(HardwareConfig(camera="picamera2"))
    with pytest.raises(CameraError, match="stopped delivering frames .Camera frontend has timed out"):
        cam.frame()


def test_v4l2_without_the_device_is_a_one_line_camera_error():
    with pytest.raises(CameraError) as exc:
        open_camera(HardwareConfig(camera="v4l2", camera_device="/dev/video-nonexistent"))
    assert (
        str(exc.value)
        == "camera /dev/video-nonexistent: cannot open (unplugged, or busy in another program?)"
    )
