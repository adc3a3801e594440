"""Camera backends: the simulated camera's scene, LEDs and subject; backend selection; file camera."""

from __future__ import annotations

import logging
from dataclasses import replace

import cv2
import numpy as np
import pytest

from kiosk.capture.lighting import measure_light
from kiosk.config import HardwareConfig
from kiosk.errors import InputError
from kiosk.hw.camera import CameraError
from kiosk.hw.camera_file import FileCamera
from kiosk.hw.cameras import open_camera
from kiosk.sim.scene import BAD_START, Scene, SimCamera, SimSubject


@pytest.fixture(scope="module")
def sim(analyzer, sample_rgb):
    levels = {"left": 0.3, "right": 0.3, "fill": 0.3}
    cam = SimCamera.from_image(
        sample_rgb, analyzer=analyzer, levels=lambda: levels, subject=SimSubject(scene=Scene())
    )
    cam.test_levels = levels
    return cam


def _face(analyzer, rgb):
    faces = analyzer.analyze(rgb, iris=False).faces
    assert len(faces) == 1
    return faces[0]


def test_frames_advance_in_time_and_still_shows_the_same_scene(sim):
    sim.subject.scene = Scene()
    a, b = sim.frame(), sim.frame()
    assert a.rgb.shape == (480, 640, 3) and a.rgb.dtype == np.uint8
    assert b.index == a.index + 1 and b.t == pytest.approx(a.t + 1 / 30)
    still = sim.still()
    assert still.shape == (1440, 1920, 3)
    small = cv2.resize(still, (640, 480), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(small - b.rgb.astype(np.float32)).mean() < 4.0  # same scene, same light


def test_leds_light_the_side_of_the_face_they_face(sim, analyzer):
    sim.subject.scene = Scene(tilt=0.0)
    face = _face(analyzer, sim.render((640, 480)))
    sim.test_levels.update(left=1.0, right=0.0, fill=0.2)
    left_lit = measure_light(sim.render((640, 480)), face)
    sim.test_levels.update(left=0.0, right=1.0, fill=0.2)
    right_lit = measure_light(sim.render((640, 480)), face)
    assert left_lit.balance > 0.15 and right_lit.balance < -0.05
    sim.test_levels.update(left=0.0, right=0.0, fill=1.0)
    bright = measure_light(sim.render((640, 480)), face).mean
    sim.test_levels.update(fill=0.0)
    dark = measure_light(sim.render((640, 480)), face).mean
    assert bright > dark + 30
    sim.test_levels.update(left=0.3, right=0.3, fill=0.3)


def test_scene_pose_moves_the_measured_pose_with_the_right_sign(sim, analyzer):
    base = Scene()
    sim.subject.scene = base
    f0 = _face(analyzer, sim.render((640, 480)))
    for name, delta, attr, min_change in (
        ("roll", 10, "roll", 6),
        ("yaw", 20, "yaw", 4),
        ("pitch", 12, "pitch", 4),
    ):
        sim.subject.scene = replace(base, **{name: delta})
        f = _face(analyzer, sim.render((640, 480)))
        assert getattr(f.pose, attr) - getattr(f0.pose, attr) > min_change, name
        sim.subject.scene = replace(base, **{name: -delta})
        f = _face(analyzer, sim.render((640, 480)))
        assert getattr(f.pose, attr) - getattr(f0.pose, attr) < -min_change, name
    sim.subject.scene = replace(base, mouth=0.0)
    closed = _face(analyzer, sim.render((640, 480)))
    assert f0.mouth_openness > 0.15 and closed.mouth_openness < 0.09  # the sample smiles; the sim closes it
    sim.subject.scene = replace(base, distance=2.0)
    far = _face(analyzer, sim.render((640, 480)))
    w0, w1 = f0.box[2] - f0.box[0], far.box[2] - far.box[0]
    assert w1 == pytest.approx(w0 / 2, rel=0.15)
    sim.subject.scene = replace(base, x=-0.15)
    left = _face(analyzer, sim.render((640, 480)))
    assert (left.box[0] + left.box[2]) / 2 < (f0.box[0] + f0.box[2]) / 2 - 0.1 * 640


def test_subject_follows_prompts_after_a_reaction_time_and_calms_down():
    s = SimSubject(seed=3)
    x0 = s.scene.x
    s.hear("move_left")  # the citizen's left is the image's right
    for _ in range(3):
        s.step(1 / 30)
    assert abs(s.scene.x - x0) < 0.02  # still reacting
    for _ in range(30):
        s.step(1 / 30)
    assert s.scene.x > x0 + 0.08
    roll0 = s.scene.roll
    assert roll0 > 5
    s.hear("straighten_head")
    for _ in range(60):
        s.step(1 / 30)
    assert abs(s.scene.roll) < 2.0
    s.hear(None)

    def spread(subject):
        xs = []
        for _ in range(90):
            subject.step(1 / 30)
            xs.append(subject.scene.x)
        return float(np.std(np.diff(xs)))

    restless = spread(s)
    s.hear("hold_still")
    for _ in range(30):
        s.step(1 / 30)
    assert spread(s) < restless / 3


def test_arrive_restores_the_bad_start_and_leave_empties_the_scene(sim, analyzer):
    fresh = SimSubject()
    assert fresh.scene == BAD_START  # by default a citizen starts badly posed and unevenly lit
    fresh.scene.x = 0.3
    fresh.arrive()
    assert fresh.scene == BAD_START
    sim.subject.leave()
    assert analyzer.analyze(sim.render((640, 480))).faces == []
    sim.subject.arrive(Scene())


def test_failing_sim_camera_raises_camera_error(sim):
    sim.failure = "unplugged"
    with pytest.raises(CameraError, match="unplugged"):
        sim.frame()
    sim.failure = None
    sim.frame()


def test_auto_without_a_device_selects_the_simulation_and_says_so(analyzer, caplog, monkeypatch):
    import kiosk.hw.cameras as cam_mod

    monkeypatch.setattr(cam_mod, "picamera2_present", lambda: False)
    cfg = HardwareConfig(camera="auto", camera_device="/dev/no-such-video")
    with caplog.at_level(logging.INFO, logger="kiosk.hw.camera"):
        cam = open_camera(cfg, simulated=lambda: SimCamera.from_config(cfg, analyzer=analyzer))
    assert cam.name == "sim"
    text = caplog.text
    assert "using the simulated camera" in text and "camera backend: {'backend': 'sim'" in text
    cam.close()


def test_file_camera_plays_a_directory_and_a_video(tmp_path, sample_rgb):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), sample_rgb[..., ::-1])
    cv2.imwrite(str(folder / "b.png"), np.zeros_like(sample_rgb))
    cam = FileCamera(folder, (320, 240))
    frames = [cam.frame() for _ in range(3)]
    assert frames[0].rgb.shape == (240, 240, 3)  # fitted, aspect kept
    assert frames[0].rgb.mean() > 50 and frames[1].rgb.mean() == 0 and frames[2].rgb.mean() > 50  # loops
    assert cam.still().shape == sample_rgb.shape
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for i in range(4):
        w.write(np.full((256, 256, 3), 40 * (i + 1), np.uint8))
    w.release()
    cam = FileCamera(video, (128, 128))
    means = [cam.frame().rgb.mean() for _ in range(5)]
    assert means[0] < means[1] < means[2] < means[3] and abs(means[4] - means[0]) < 3  # then loops
    cam.close()
    cfg = HardwareConfig(camera="file", camera_file=str(folder))
    assert open_camera(cfg).name == "file"


@pytest.mark.parametrize("make", ["missing", "text", "empty_dir"])
def test_file_camera_refuses_bad_input_in_one_line(tmp_path, make):
    path = tmp_path / "x.mp4"
    if make == "text":
        path.write_text("not a video")
    elif make == "empty_dir":
        path = tmp_path / "empty"
        path.mkdir()
    with pytest.raises(InputError) as exc:
        FileCamera(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)
