"""Closed eyes against the eyes measure, `kiosk check`, the live guidance and the simulated subject's
blinks: real photos of closed eyes and a wink (tests/fixtures/real/), and closures made by
construction from real faces (kiosk.sim.face_edit.close_eyes) for the simulated camera.

Round 1 made its closed eyes by construction only, and the plain 468-point mesh kept those lids
open (a known limit of face_landmark.tflite: google-ai-edge/mediapipe #965, #1538, #1919). The
measure now is the iris model's eyelid contour, and the failing direction is shown on photographs
of real closed eyes; the per-category rates are in tests/test_real_photos.py.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.capture.guidance import FrameMeasures, Guide
from kiosk.capture.live import LiveLoop
from kiosk.capture.rules import load_rules
from kiosk.photo.profiles import get_profile
from kiosk.photo.results import CheckResult
from kiosk.sim.face_edit import EYE_LOWER0, EYE_UPPER, close_eyes
from kiosk.sim.scene import Scene, SimCamera, SimSubject
from kiosk.vision.analyzer import analyze_file

FIXTURES = Path(__file__).parent / "fixtures" / "faces"
FACES = ["astronaut.png", "grace_hopper.jpg", "luispedro.jpg"]
THRESHOLDS = get_profile("id_card").thresholds
EYES_MIN = THRESHOLDS["eyes_open_min"]
MESSAGES = tomllib.loads((Path(__file__).parents[1] / "kiosk/text/check.toml").read_text("utf-8"))
REAL = Path(__file__).parent / "fixtures" / "real"
REAL_CLOSED = [REAL / "eyes_closed" / "closed_eyes.jpg", REAL / "eyes_closed" / "squinting.jpg"]
REAL_WINK = REAL / "eye_one_closed" / "mixed_eyes.jpg"
# per eye, as each reads: the squeezed face's image-left lids keep a dark sliver (0.18, above the
# 0.16 limit since the limit was set on 20 closed photos; README) while its other eye reads closed
REAL_STATES = {"closed_eyes": ("closed", "closed"), "squinting": ("open", "closed")}


@pytest.fixture(scope="module")
def faces(analyzer):
    """name -> (analysed RGB, its 468 landmarks, eye openness)"""
    out = {}
    for name in FACES:
        analysis, rgb = analyze_file(analyzer, FIXTURES / name)
        assert analysis.width == rgb.shape[1]  # small fixtures: landmarks are in rgb's pixels
        face = analysis.faces[0]
        out[name] = (rgb, face.landmarks, face.eye_openness)
    return out


def _openness(analyzer, rgb) -> tuple[float, float]:
    found = analyzer.analyze(rgb).faces
    assert len(found) == 1
    return found[0].eye_openness


def _poly_mask(shape, *polylines) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.vstack(polylines).round().astype(np.int32)], 1)
    return mask.astype(bool)


def _eye_box_mask(shape, lm, eye, pad) -> np.ndarray:
    idx = [i for ring in EYE_UPPER[eye] for i in ring] + list(EYE_LOWER0[eye])
    (x0, y0), (x1, y1) = lm[idx, :2].min(axis=0) - pad, lm[idx, :2].max(axis=0) + pad
    mask = np.zeros(shape[:2], bool)
    mask[max(int(y0), 0) : int(y1) + 1, max(int(x0), 0) : int(x1) + 1] = True
    return mask


# --- the edit itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FACES)
def test_close_eyes_changes_only_the_eyes_and_slides_the_lid_over_the_eyeball(faces, name):
    rgb, lm, _ = faces[name]
    assert np.array_equal(close_eyes(rgb, lm, 0.0), rgb)
    shut = close_eyes(rgb, lm, 1.0)
    width = float(np.hypot(*(lm[133, :2] - lm[33, :2])))
    near = _eye_box_mask(rgb.shape, lm, 0, 0.2 * width + 3) | _eye_box_mask(rgb.shape, lm, 1, 0.2 * width + 3)
    assert np.array_equal(shut[~near], rgb[~near])
    half = close_eyes(rgb, lm, 0.5)
    for eye in range(2):
        upper, lower = lm[list(EYE_UPPER[eye][0]), :2], lm[list(EYE_LOWER0[eye]), :2]
        opening = _poly_mask(rgb.shape, upper, lower[::-1])
        inner = cv2.erode(opening.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        diff = np.abs(shut.astype(int) - rgb.astype(int)).sum(axis=2)
        assert inner.sum() > 20 and (diff[inner] > 12).mean() > 0.6  # the eyeball is covered
        # half-way: the lid margin stands half-way down; below it the eyeball is untouched (not squashed)
        margin = upper + 0.5 * (lower - upper)
        below = _poly_mask(rgb.shape, margin, lower[::-1])
        below = cv2.erode(below.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        above = cv2.erode(
            _poly_mask(rgb.shape, upper, margin[::-1]).astype(np.uint8), np.ones((3, 3), np.uint8)
        ).astype(bool)
        assert below.sum() > 5 and np.array_equal(half[below], rgb[below])
        hdiff = np.abs(half.astype(int) - rgb.astype(int)).sum(axis=2)
        assert (hdiff[above] > 12).mean() > 0.5


def test_a_wink_closes_one_eye_only(faces):
    rgb, lm, _ = faces["grace_hopper.jpg"]
    wink = close_eyes(rgb, lm, (0.0, 1.0))
    left = _eye_box_mask(rgb.shape, lm, 0, 4)
    right = _eye_box_mask(rgb.shape, lm, 1, 4)
    assert np.array_equal(wink[left & ~right], rgb[left & ~right])
    assert not np.array_equal(wink[right], rgb[right])
    with pytest.raises(ValueError):
        close_eyes(rgb, lm, (1.0, 1.0, 1.0))


# --- the eyes measure -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FACES)
def test_open_eyes_measure_above_the_threshold_and_closing_lowers_the_measure(faces, analyzer, name):
    rgb, lm, opened = faces[name]
    # above the guidance's exit band (1.4 x eyes_open_min), let alone the photo threshold
    assert min(opened) >= 1.4 * EYES_MIN
    half = _openness(analyzer, close_eyes(rgb, lm, 0.5))
    assert min(half) < min(opened)
    # the lid margin half-way down, the pupil still showing: 0.22-0.31, open (like a squint, see
    # kiosk/vision/data/eyes.toml)
    assert min(half) >= EYES_MIN


@pytest.mark.parametrize("path", REAL_CLOSED, ids=lambda p: p.stem)
def test_real_closed_eyes_measure_below_the_threshold_on_each_eye(analyzer, path):
    face = analyze_file(analyzer, path)[0].faces[0]
    assert face.eye_state == REAL_STATES[path.stem]
    for value, state in zip(face.eye_openness, face.eye_state, strict=True):
        assert (value < EYES_MIN) == (state == "closed")


# --- kiosk check ------------------------------------------------------------------------------------


def _eyes_check(tools, path: Path) -> CheckResult:
    return tools.check(path, "id_card").get("eyes_open")


@pytest.mark.parametrize("name", FACES)
def test_check_passes_eyes_open_on_the_original(tools, name):
    c = _eyes_check(tools, FIXTURES / name)
    assert c.passed is True and c.threshold == EYES_MIN and c.value >= EYES_MIN
    assert (c.message_zh, c.message_en) == (
        MESSAGES["eyes_open"]["pass"]["zh"],
        MESSAGES["eyes_open"]["pass"]["en"],
    )


def _write(tmp_path: Path, rgb: np.ndarray, name: str) -> Path:
    path = tmp_path / name
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _real_cases(tmp_path: Path) -> dict[str, Path]:
    """Both eyes closed (two photos), a wink, and the wink mirrored (the other eye closed)."""
    wink = cv2.imread(str(REAL_WINK))
    mirrored = tmp_path / "mixed_eyes_mirrored.png"
    assert cv2.imwrite(str(mirrored), wink[:, ::-1])
    return {**{p.stem: p for p in REAL_CLOSED}, "wink": REAL_WINK, "wink_mirrored": mirrored}


@pytest.mark.parametrize("case", ["closed_eyes", "squinting", "wink", "wink_mirrored"])
def test_check_fails_eyes_open_on_real_closed_eyes_and_on_a_wink_either_side(tools, tmp_path, case):
    c = _eyes_check(tools, _real_cases(tmp_path)[case])
    assert c.passed is False and c.value < EYES_MIN
    assert (c.message_zh, c.message_en) == (
        MESSAGES["eyes_open"]["fail"]["zh"],
        MESSAGES["eyes_open"]["fail"]["en"],
    )
    states = (c.details["left_state"], c.details["right_state"])
    expected = {"wink": ("closed", "open"), "wink_mirrored": ("open", "closed"), **REAL_STATES}
    assert states == expected[case]


# --- the simulated subject's blinks -----------------------------------------------------------------


def _eyes_track(subject: SimSubject, seconds: float) -> tuple[list[float], list[float]]:
    eyes, xs = [], []
    for _ in range(round(seconds * 30)):
        subject.step(1 / 30)
        eyes.append(subject.eyes_now())
        xs.append(subject.scene.x)
    return eyes, xs


def test_the_simulated_subject_blinks_every_few_seconds_deterministically_and_only_when_asked():
    eyes, xs = _eyes_track(SimSubject(seed=4, blink_every_s=3.0), 20.0)
    again, _ = _eyes_track(SimSubject(seed=4, blink_every_s=3.0), 20.0)
    assert eyes == again
    shut = np.array(eyes) < 0.5
    starts = np.flatnonzero(shut[1:] & ~shut[:-1]) + 1
    assert 3 <= len(starts) <= 14 and min(eyes) == 0.0
    assert np.diff(starts).min() / 30 >= 1.5  # every few seconds, not a flutter
    runs = [int(np.argmin(shut[s:])) for s in starts if not shut[s:].all()]
    assert max(runs) / 30 < load_rules().confirm_s  # a blink is shorter than guidance's confirm time
    still, xs_still = _eyes_track(SimSubject(seed=4), 20.0)
    assert set(still) == {1.0} and xs_still == xs  # off by default; blinking leaves the sway unchanged


@pytest.fixture(scope="module")
def sim(analyzer, sample_rgb):
    levels = {"left": 0.3, "right": 0.3, "fill": 0.3}
    return SimCamera.from_image(sample_rgb, analyzer=analyzer, levels=lambda: levels, subject=SimSubject())


def test_the_simulated_camera_shuts_the_eyes_and_nothing_else(sim):
    sim.subject.arrive(Scene(mouth=0.0, tilt=0.0))
    opened = sim.render((640, 480)).astype(int)
    sim.subject.scene.eyes = 0.0
    shut = sim.render((640, 480)).astype(int)
    sim.subject.scene.eyes = 1.0
    again = sim.render((640, 480)).astype(int)
    changed = np.abs(shut - opened).sum(axis=2) > 12
    ys, xs = np.nonzero(changed)
    assert np.array_equal(again, opened)
    assert changed.sum() > 100 and changed.mean() < 0.01
    assert ys.max() - ys.min() < 0.1 * 480 and 0.3 * 640 < xs.min() and xs.max() < 0.7 * 640  # the eye band


def _live_run(sim, analyzer, seconds: float) -> list:
    live = LiveLoop(analyzer, load_rules())
    live.start(THRESHOLDS)
    out = []
    for _ in range(round(seconds * 30)):
        f = sim.frame()
        out.append(live.process(f.rgb, f.t))
    return out


def test_guidance_asks_to_open_the_eyes_when_the_subject_keeps_them_shut(sim, analyzer):
    sim.subject.arrive(Scene(mouth=0.0, tilt=0.0, eyes=0.0))
    sim.subject.reaction_s = math.inf  # does not open them when asked
    try:
        prompts = [g.prompt for g in _live_run(sim, analyzer, 1.0)]
    finally:
        sim.subject.reaction_s = 0.25
    assert prompts[-1] == "open_eyes"


# --- guidance over a blink ---------------------------------------------------------------------------


def test_a_blink_shorter_than_confirm_s_shows_no_prompt_and_restarts_the_steady_timer():
    rules = load_rules().for_profile(THRESHOLDS)
    guide = Guide(rules)
    good = dict(
        faces=1.0, face_width=0.33, offset_x=0.0, offset_y=0.0, roll=0.0, yaw=0.0, pitch=0.0,
        eyes=0.3, mouth=0.03, balance=0.0, exposure=140.0,
    )  # fmt: skip
    face = type("F", (), {"landmarks": np.full((468, 3), 100.0)})()
    enter = next(c for c in rules.checks if c.id == "eyes").bands[0].enter
    subject = SimSubject(blink_every_s=1.0, seed=2)
    t, shown, steady_before, blinked = 0.0, [], 0.0, False
    for _ in range(round(2.5 * 30)):  # the blink's eyes, as a measure that follows the lids would read
        subject.step(1 / 30)
        t += 1 / 30
        eyes = 0.3 * subject.eyes_now()
        g = guide.update(FrameMeasures(1, 640, 480, face, None, {**good, "eyes": eyes}), t)
        shown.append(g.prompt)
        if eyes < enter:
            blinked = True
            assert not g.ready and g.steady_s == 0.0  # the countdown cannot start on closed eyes
        elif not blinked:
            steady_before = g.steady_s
    assert blinked and steady_before > 0.1
    assert "open_eyes" not in shown and shown[-1] == "perfect"
    assert g.steady_s < 2.5 - 0.1  # restarted after the blink


def test_the_blink_with_closed_eyes_at_the_capture_instant_is_in_the_still(sim):
    """The countdown rides over a blink (LOST_GRACE_S); the still shows what the subject does at that
    instant, so the photo engine's eyes_open check is what keeps such a still out."""
    sim.subject.arrive(replace(Scene(mouth=0.0, tilt=0.0), eyes=0.0))
    shut = sim.still()
    sim.subject.scene.eyes = 1.0
    opened = sim.still()
    assert np.abs(shut.astype(int) - opened.astype(int)).sum(axis=2).max() > 60
