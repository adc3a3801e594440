"""Face detector: anchors, decoding and weighted NMS, and detection on real images."""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.vision.detector import FaceDetector, anchors, weighted_nms


def test_anchor_layout_matches_the_short_range_model():
    a = anchors()
    assert a.shape == (896, 2)
    # 16x16 grid with 2 anchors per cell, then 8x8 with 6 per cell
    assert np.allclose(a[0], [0.5 / 16, 0.5 / 16]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(a[512], [0.5 / 8, 0.5 / 8]) and np.allclose(a[517], a[512])
    assert np.allclose(a[518], [1.5 / 8, 0.5 / 8])
    assert np.allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_weighted_nms_averages_a_cluster_and_keeps_separate_faces():
    dets = np.zeros((3, 16))
    dets[0, :4] = [0.10, 0.10, 0.30, 0.30]
    dets[1, :4] = [0.12, 0.12, 0.32, 0.32]  # overlaps the first (IoU ~0.68)
    dets[2, :4] = [0.60, 0.60, 0.80, 0.80]
    scores = np.array([0.9, 0.6, 0.7])
    out = weighted_nms(dets, scores)
    assert len(out) == 2
    merged, score = out[0]
    assert score == 0.9
    assert np.allclose(merged[:4], (dets[0, :4] * 0.9 + dets[1, :4] * 0.6) / 1.5)
    assert np.allclose(out[1][0][:4], dets[2, :4]) and out[1][1] == 0.7


def test_detects_the_sample_face_with_keypoints_inside_the_box(sample_rgb):
    faces = FaceDetector().detect(sample_rgb)
    assert len(faces) == 1
    f = faces[0]
    x0, y0, x1, y1 = f.box
    assert f.score > 0.8
    assert np.all((f.keypoints[:4, 0] > x0) & (f.keypoints[:4, 0] < x1))
    right_eye, left_eye = f.keypoints[0], f.keypoints[1]
    assert right_eye[0] < left_eye[0]  # subject's right eye is on the image left


def test_letterbox_keeps_coordinates_in_image_pixels(sample_rgb):
    """The same face on a wide canvas is found at the same place shifted by the padding."""
    face = np.ascontiguousarray(sample_rgb[0:256, 100:356])
    canvas = np.full((256, 420, 3), 200, np.uint8)
    canvas[:, 120:376] = face
    a = FaceDetector().detect(face)[0]
    b = FaceDetector().detect(canvas)[0]
    assert np.allclose(np.array(b.box) - [120, 0, 120, 0], a.box, atol=4)


def test_no_face_in_a_plain_or_noisy_image():
    rng = np.random.default_rng(1)
    assert FaceDetector().detect(np.full((480, 640, 3), 128, np.uint8)) == []
    noise = cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), (5, 5), 0)
    assert FaceDetector().detect(noise) == []
