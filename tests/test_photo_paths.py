"""The terminal's still and the same still as a file go through the same steps to the same verdict.

The session hands PhotoMaker.make a 12 MP array; `kiosk make-photo` gets a JPEG, analysed on its
draft decode. Analysing the array on a copy reduced differently moved the landmarks by ~1.5 px,
the hair top read from the segmenter by 10 px, and the benchmark's still from compliant (file) to
failing background_uniformity (array). PhotoTools.make now reduces the array as the draft does.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from kiosk.capture.photo_adapter import PhotoMaker
from kiosk.vision.imageio import draft_scale, load_image
from tests.conftest import FIXTURES

STILL = (4056, 3040)  # the Pi HQ camera's still


def _still_jpeg(face: np.ndarray, height: int, bg: int = 180) -> bytes:
    """A 12 MP still (as the camera writes it, JPEG) with `face` scaled to `height` rows at its
    bottom centre on a plain wall: the benchmark's still (benchmarks/photo.py)."""
    w, h = STILL
    still = np.full((h, w, 3), bg, np.uint8)
    fw = round(face.shape[1] * height / face.shape[0])
    x0 = (w - fw) // 2
    still[h - height :, x0 : x0 + fw] = cv2.resize(face, (fw, height), interpolation=cv2.INTER_CUBIC)
    buf = io.BytesIO()
    Image.fromarray(still).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_draft_scale_is_the_decoders_reduction():
    """What make() reduces an array by is what the JPEG draft decode gives for that file."""
    data = _still_jpeg(np.full((60, 50, 3), 90, np.uint8), 600)
    k = draft_scale(*STILL, 1280)
    assert k == 2
    assert load_image(data, max_side=1280).shape[:2] == (STILL[1] // k, STILL[0] // k)
    assert draft_scale(1200, 900, 1280) == 1 and draft_scale(12000, 9000, 1280) == 8


@pytest.mark.parametrize(
    ("face", "height"),
    [("faces/grace_hopper.jpg", 2600), ("phone/hivision_test3.jpg", 3000)],
)
def test_still_as_array_and_as_file_get_the_same_photo(tools, face, height):
    data = _still_jpeg(load_image(FIXTURES / face), height)
    still = load_image(data)  # what the session hands over: the same pixels, full size, in memory
    by_file = tools.make_photo(data, "id_card")
    by_array = tools.make(still, "id_card")
    assert by_array.compliant == by_file.compliant
    assert [c.id for c in by_array.report.failures()] == [c.id for c in by_file.report.failures()]
    a, b = by_array.placement, by_file.placement
    assert a.scale == pytest.approx(b.scale, rel=0.01)
    for rule in ("eye_line", "head_top"):  # rows are whole pixels: at most one apart
        assert abs(a.intended[rule] - b.intended[rule]) <= 1.5, (rule, a.intended, b.intended)
    off = [r.report.get("background_uniformity").value for r in (by_array, by_file)]
    assert abs(off[0] - off[1]) < 0.002, off
    # and through the session's adapter: the same verdict with its reason
    made = PhotoMaker(tools=tools).make(still, "id_card")
    assert made.compliant == by_file.compliant
    assert [c.id for c in made.report.failures()] == [c.id for c in by_file.report.failures()]
