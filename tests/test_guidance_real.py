"""Live guidance on real photos: a second person in view, closed eyes that stay closed, a blink.

Frames are real photos (tests/fixtures/real/) fed to the real per-frame pipeline (LiveLoop: the
tracked mesh with the iris model, the periodic full-range count) at 30 frames per second.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.capture.guidance import FrameMeasures, Guide
from kiosk.capture.live import LiveLoop
from kiosk.capture.rules import load_rules
from kiosk.config import EYE_READ_EVERY_MAX, ConfigError, VisionConfig, load_base
from kiosk.photo.profiles import get_profile
from kiosk.text import entries
from kiosk.vision.analyzer import FaceAnalyzer
from kiosk.vision.imageio import load_image

REAL = Path(__file__).parent / "fixtures" / "real"
THRESHOLDS = get_profile("id_card").thresholds


def _frame(path: Path) -> np.ndarray:
    """The photo letterboxed into a 640x480 camera frame."""
    rgb = load_image(path)
    h, w = rgb.shape[:2]
    s = min(640 / w, 480 / h)
    small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    out = np.full((480, 640, 3), 200, np.uint8)
    y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def _run(analyzer, frames: list[np.ndarray]) -> list:
    live = LiveLoop(analyzer, load_rules())
    live.start(THRESHOLDS)
    return [live.process(f, i / 30) for i, f in enumerate(frames)]


def test_a_second_person_the_short_range_detector_misses_is_told_to_leave(analyzer):
    frame = _frame(REAL / "group" / "obama_and_biden.jpg")
    assert len(analyzer.detector.detect(frame)) < 2  # what round 1 counted
    out = _run(analyzer, [frame] * 15)
    assert out[-1].prompt == "many_faces" and not out[-1].ready
    assert out[-1].text == entries("prompt")["many_faces"]
    assert out[-1].text["zh"] == "请确保画面中只有您一人"


def test_real_closed_eyes_that_stay_closed_are_asked_to_open_and_open_eyes_are_not(analyzer):
    """(Placement prompts come first in the priority order; what counts here is that the eyes fail.)"""
    shut = _run(analyzer, [_frame(REAL / "eyes_closed" / "closed_eyes.jpg")] * 30)
    assert all("eyes" in g.failing and not g.ready for g in shut)
    wink = _run(analyzer, [_frame(REAL / "eye_one_closed" / "mixed_eyes.jpg")] * 30)
    assert "eyes" in wink[-1].failing  # one closed eye is a closed eye
    for name in ("eyes_open/neutral.jpg", "eyes_squint/obama_smile.jpg"):
        out = _run(analyzer, [_frame(REAL / name)] * 30)
        assert all("eyes" not in g.failing for g in out), name


def test_a_blink_is_not_a_closed_eye_but_eyes_kept_shut_are():
    rules = load_rules().for_profile(THRESHOLDS)
    eyes = next(c for c in rules.checks if c.id == "eyes")
    assert rules.confirm(eyes) >= 0.5 > 0.4  # longer than a blink (0.1-0.4 s)
    assert eyes.bands[0].enter >= THRESHOLDS["eyes_open_min"]  # never laxer than the photo check
    good = dict(
        faces=1.0, face_width=0.33, offset_x=0.0, offset_y=0.0, roll=0.0, yaw=0.0, pitch=0.0,
        eyes=0.3, mouth=0.03, balance=0.0, exposure=140.0,
    )  # fmt: skip
    face = type("F", (), {"landmarks": np.full((468, 3), 100.0)})()

    def run(closed_s: float) -> list:
        guide, out = Guide(rules), []
        for i in range(90):
            t = i / 30
            shut = 1.0 <= t < 1.0 + closed_s
            values = {**good, "eyes": 0.1 if shut else 0.3}
            out.append(guide.update(FrameMeasures(1, 640, 480, face, None, values), t))
        return out

    blink = run(0.35)
    assert all(g.prompt != "open_eyes" for g in blink)
    assert any(not g.ready for g in blink[30:42])  # but the countdown cannot run on closed eyes
    kept = run(1.5)
    assert any(g.prompt == "open_eyes" for g in kept)


EVERY_DEFAULT = VisionConfig().eye_read_every
EVERY_MAX = [pytest.param(EYE_READ_EVERY_MAX, marks=pytest.mark.slow)] * (EYE_READ_EVERY_MAX > EVERY_DEFAULT)


@pytest.mark.parametrize("every", [EVERY_DEFAULT, *EVERY_MAX])
def test_eyes_shut_for_the_confirm_time_are_asked_to_open_at_the_eye_read_cadence(every):
    """The tracked path reads one eye every ``eye_read_every`` frames, the eyes in turn: real frames
    of one person, open then shut (both eyes; one eye, the worse case), at every phase of the
    cadence, must bring the prompt no earlier than confirm_s after the eyes shut (a blink is not a
    closed eye) and at most one cadence round (2 x eye_read_every frames) later; a blink of real
    shut frames brings none."""
    analyzer = FaceAnalyzer(VisionConfig(eye_read_every=every))
    rules = load_rules().for_profile(THRESHOLDS)
    confirm = round(rules.confirm(next(c for c in rules.checks if c.id == "eyes")) * 30)  # frames
    for shut_path, open_path in (
        ("eyes_closed/lp_d9_closed.jpg", "eyes_open/lp_d9_open.jpg"),
        ("eye_one_closed/lp_d6_wink.jpg", "eyes_open/lp_d6_open.jpg"),
    ):
        open_, shut = _frame(REAL / open_path), _frame(REAL / shut_path)
        for phase in range(2 * every):
            lead = 30 + phase
            analyzer.reset()
            out = _run(analyzer, [open_] * lead + [shut] * (confirm + 2 * every + 2))
            asked = [i - lead for i, g in enumerate(out) if g.prompt == "open_eyes"]
            assert asked, (shut_path, phase)
            assert confirm <= asked[0] < confirm + 2 * every, (shut_path, phase, asked[0])
            assert all("eyes" not in g.failing for g in out[:lead]), (open_path, phase)
        analyzer.reset()
        blink = _run(analyzer, [open_] * 30 + [shut] * 10 + [open_] * 30)  # shut for 0.33 s
        assert all(g.prompt != "open_eyes" for g in blink), shut_path


def test_an_eye_read_cadence_outside_its_range_is_refused_naming_the_key(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    for bad in (0, -1, EYE_READ_EVERY_MAX + 1, "'2'"):
        cfg.write_text(f"[vision]\neye_read_every = {bad}\n")
        with pytest.raises(ConfigError, match="vision.eye_read_every"):
            load_base(cfg)
    cfg.write_text(f"[vision]\neye_read_every = {EYE_READ_EVERY_MAX}\n")
    assert load_base(cfg).vision.eye_read_every == EYE_READ_EVERY_MAX
