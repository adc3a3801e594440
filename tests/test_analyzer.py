"""The pipeline: measures on a real face, and tracking that runs the detector only when lost."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kiosk.vision import FaceAnalyzer
from kiosk.vision.geometry import Roi, crop, crop_to_image


def _shift_rotate(rgb: np.ndarray, dx: float, dy: float, angle: float = 0.0, size=(640, 480)) -> np.ndarray:
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += [dx + (size[0] - w) / 2, dy + (size[1] - h) / 2]
    return cv2.warpAffine(rgb, m, size, borderMode=cv2.BORDER_REPLICATE)


def test_crop_and_back_is_identity_for_a_rotated_roi():
    roi = Roi(120.0, 80.0, 64.0, 64.0, 0.4)
    pts = np.array([[0.0, 0.0], [64.0, 0.0], [32.0, 32.0], [10.0, 50.0]])
    img_pts = crop_to_image(pts, roi, 64, 64)
    assert np.allclose(img_pts[2], [120, 80])
    assert np.allclose(img_pts[0], roi.corners()[0])
    # sampling: a marker at the ROI centre lands at the crop centre
    img = np.zeros((200, 300, 3), np.uint8)
    cv2.circle(img, (120, 80), 3, (255, 255, 255), -1)
    patch = crop(img, roi, 64, 64)
    ys, xs = np.nonzero(patch[:, :, 0] > 128)
    assert abs(xs.mean() - 32) < 1 and abs(ys.mean() - 32) < 1


def test_measures_on_the_sample_face(analyzer, sample_rgb):
    a = analyzer.analyze(sample_rgb)
    assert len(a.faces) == 1
    f = a.faces[0]
    assert f.landmarks.shape == (468, 3)
    assert abs(f.pose.yaw) < 8 and abs(f.pose.roll) < 8 and abs(f.pose.pitch) < 15
    assert all(0.2 < e < 0.5 for e in f.eye_openness)  # open eyes
    # eye centres from the iris model sit inside the eye corners
    for centre, (outer, inner) in zip(f.eye_centers, ((33, 133), (362, 263)), strict=True):
        lo = min(f.landmarks[outer, 0], f.landmarks[inner, 0])
        hi = max(f.landmarks[outer, 0], f.landmarks[inner, 0])
        assert lo < centre[0] < hi
    assert f.crown[1] < f.landmarks[10, 1] < f.chin[1]
    x0, y0, x1, y1 = f.box
    assert x0 < f.chin[0] < x1 and f.chin[1] == pytest.approx(y1, abs=2)


@pytest.mark.parametrize("angle", [-20, 12])
def test_roll_follows_a_known_rotation(analyzer, sample_rgb, angle):
    base = analyzer.analyze(_shift_rotate(sample_rgb, 0, 0)).faces[0].pose.roll
    # cv2 angles are counter-clockwise on screen; our roll is clockwise
    rolled = analyzer.analyze(_shift_rotate(sample_rgb, 0, 0, angle)).faces[0].pose.roll
    assert rolled - base == pytest.approx(-angle, abs=2.0)


def test_mirror_flips_yaw_and_roll(analyzer, sample_rgb):
    a = analyzer.analyze(sample_rgb).faces[0]
    b = analyzer.analyze(np.ascontiguousarray(sample_rgb[:, ::-1])).faces[0]
    assert b.pose.roll == pytest.approx(-a.pose.roll, abs=1.5)
    assert b.pose.yaw == pytest.approx(-a.pose.yaw, abs=2.5)
    assert b.eye_openness[0] == pytest.approx(a.eye_openness[1], abs=0.03)


def test_two_faces_are_both_reported(analyzer, sample_rgb):
    face = sample_rgb[20:260, 110:340]
    canvas = np.full((300, 520, 3), 180, np.uint8)
    canvas[30:270, 20:250] = face
    canvas[30:270, 270:500] = face[:, ::-1]
    a = analyzer.analyze(canvas)
    assert len(a.faces) == 2
    xs = sorted((f.box[0] + f.box[2]) / 2 for f in a.faces)
    assert xs[0] < 260 < xs[1]


def test_tracking_runs_the_detector_only_when_the_face_is_lost(sample_rgb):
    tracker = FaceAnalyzer()
    calls = []
    real = tracker.detector.detect
    tracker.detector.detect = lambda rgb: calls.append(1) or real(rgb)
    static = FaceAnalyzer()
    boxes = []
    for i in range(12):
        frame = _shift_rotate(sample_rgb, 4 * i, 2 * i, angle=0.5 * i)
        a = tracker.track(frame)
        assert len(a.faces) == 1
        s = static.analyze(frame, iris=False).faces[0]
        # tracked landmarks agree with a fresh detection on the same frame
        iod = np.hypot(*(s.landmarks[263, :2] - s.landmarks[33, :2]))
        err = np.linalg.norm(a.faces[0].landmarks[:, :2] - s.landmarks[:, :2], axis=1).mean() / iod
        assert err < 0.03
        boxes.append(a.faces[0].box)
    assert len(calls) == 1
    # the face leaves: no face, and the detector is asked again on the next frames
    blank = np.full((480, 640, 3), 90, np.uint8)
    assert tracker.track(blank).faces == []
    assert len(calls) == 2
    assert len(tracker.track(_shift_rotate(sample_rgb, 0, 0)).faces) == 1
    assert len(calls) == 3
    tracker.reset()
    tracker.track(_shift_rotate(sample_rgb, 0, 0))
    assert len(calls) == 4


def _face(analyzer, name):
    from kiosk.vision.analyzer import analyze_file
    from tests.conftest import FIXTURES

    analysis, _ = analyze_file(analyzer, FIXTURES / "faces" / name)
    assert len(analysis.faces) == 1
    return analysis.faces[0]


def test_mouth_openness_separates_closed_lips_from_a_smile_with_teeth(analyzer):
    closed = _face(analyzer, "grace_hopper.jpg").mouth_openness
    smiling = _face(analyzer, "astronaut.png").mouth_openness
    assert closed < 0.05 < 0.1 < smiling


def test_a_really_turned_face_reads_as_turned_and_its_mirror_the_other_way(analyzer):
    turned = _face(analyzer, "luispedro.jpg").pose.yaw
    mirrored = _face(analyzer, "luispedro_mirror.jpg").pose.yaw
    frontal = _face(analyzer, "grace_hopper.jpg").pose.yaw
    assert abs(frontal) < 5
    assert abs(turned) > 12
    assert mirrored == pytest.approx(-turned, abs=3)
