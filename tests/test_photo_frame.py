"""head_in_frame (issue 18): a head cut by the source's edge, or a crop that would need the person
where the source ends, makes the photo non-compliant with its message; the whole head passes.

Real model, real sample: the astronaut sample cut at the top (hair cut straight), at the left
(through head and shoulder) and rolled by 30 degrees (levelling needs a corner the photo lacks).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.photo.framing import edge_contact, image_edge_contact
from kiosk.samples import __file__ as samples_init
from kiosk.vision.imageio import load_image

SAMPLE = load_image(Path(samples_init).parent / "astronaut.jpg")
MESSAGE = {
    "zh": "请在头顶和两侧留出空间重新拍摄",
    "en": "Take the photo with space above and beside the head",
}


def rolled(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """A photo taken with the camera rolled: the rotated scene, cut to the largest upright square
    that holds only pixels of the scene (nothing painted)."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    r = cv2.warpAffine(rgb, m, (w, h))
    a = np.radians(abs(degrees))
    s = int(w / (np.cos(a) + np.sin(a)))
    o = (w - s) // 2
    return np.ascontiguousarray(r[o : o + s, o : o + s])


def test_the_whole_sample_passes(tools):
    photo = tools.make(SAMPLE, "id_card")
    c = photo.report.get("head_in_frame")
    assert c.passed and c.value == 0.0
    assert photo.report.checks[1].id == "head_in_frame"  # told right after the face count
    assert photo.to_json()["placement"]["edge_contact"]["head_px"] == 0.0


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda a: a[35:], id="top-35-rows"),
        pytest.param(lambda a: a[:, 180:], id="left-through-head-and-shoulder"),
        pytest.param(lambda a: rolled(a, 30), id="rolled-30"),
        pytest.param(lambda a: rolled(a, -30), id="rolled-minus-30"),
    ],
)
def test_a_cut_head_is_not_compliant(tools, cut):
    photo = tools.make(np.ascontiguousarray(cut(SAMPLE)), "id_card")
    c = photo.report.get("head_in_frame")
    assert not photo.compliant and not c.passed and c.blocking
    assert c.message() == MESSAGE
    assert c.to_json()["message_en"] == MESSAGE["en"]
    assert photo.report.failures()[0].id == "head_in_frame"  # the first thing the citizen is told


def test_a_finished_photo_with_the_hair_at_its_top_edge_fails_check(tools):
    photo = tools.make(SAMPLE, "id_card")
    decoded = cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert tools.check(photo.jpeg, "id_card").get("head_in_frame").passed
    # the same photo moved up by 40 rows (the hair now leaves the top edge), bottom row repeated
    up = np.ascontiguousarray(np.vstack([decoded[40:], np.repeat(decoded[-1:], 40, axis=0)]))
    ok, jpeg = cv2.imencode(".jpg", up[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    report = tools.check(jpeg.tobytes(), "id_card")
    assert not report.get("head_in_frame").passed and not report.compliant


def test_edge_contact_counts_the_person_along_the_edge_only():
    seen = np.ones((100, 100), bool)
    seen[:10] = False  # the source ends 10 rows into the canvas
    person = np.zeros((100, 100), np.float32)
    person[30:100, 30:70] = 1.0  # a head well below the edge
    c = edge_contact(person, seen, chin_y=80, rows=(0, 100), margin=4, crown=(50, 30))
    assert (c.head, c.body, c.crown_margin) == (0.0, 0.0, pytest.approx(21, abs=1))
    person[0:30, 40:60] = 1.0  # hair continuing past the edge: 20 px of edge
    c = edge_contact(person, seen, chin_y=80, rows=(0, 100), margin=4, crown=(50, 5))
    assert c.head == pytest.approx(20, abs=2) and c.crown_margin == 0.0
    assert image_edge_contact(person, eye_y=50, margin=4).head == pytest.approx(20, abs=2)
