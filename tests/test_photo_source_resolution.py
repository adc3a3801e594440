"""source_resolution: a photo whose face the composer had to enlarge beyond the profile's limit is
soft (a platform reviewer refuses it) and fails, with its zh/en message; on a finished photo,
`check` compares the file's pixels with the profile's. Verified both ways on real phone photos:
the same photo passes at its native size and fails downscaled; a kiosk still never fails.
"""

from __future__ import annotations

import io
import tomllib

import cv2
import numpy as np
import pytest
from PIL import Image

from kiosk.photo import get_profile, load_profiles
from kiosk.photo.profiles import PROFILES_FILE, ProfileError, parse_profiles
from tests.conftest import FIXTURES

PHONE = FIXTURES / "phone"


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _rgb(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])


def test_the_275x183_upload_is_refused_for_its_resolution(tools):
    """The reviewers' finding: this tiny source had become a compliant 358x441 photo."""
    prof = get_profile("id_card")
    photo = tools.make_photo(PHONE / "u2_red_hair_lake.jpg", prof)
    c = photo.report.get("source_resolution")
    assert photo.source_size == (275, 183)
    assert not c.passed and c.outcome == "too_small" and not photo.compliant
    assert c.value == pytest.approx(photo.placement.enlargement) and c.value > c.threshold
    assert c.threshold == prof.thresholds["source_enlargement_max"]
    assert "too few pixels" in c.message_en and "像素太少" in c.message_zh
    assert (
        photo.to_json()["checks"][[x["id"] for x in photo.to_json()["checks"]].index("source_resolution")][
            "passed"
        ]
        is False
    )


@pytest.mark.parametrize("name", ["u2_man", "u2_curly_white_tee"])
def test_the_same_photo_passes_at_native_size_and_fails_downscaled(tools, name):
    """Both ways on one real photo: its own pixels suffice; a third of them do not."""
    prof = get_profile("id_card")
    limit = prof.thresholds["source_enlargement_max"]
    rgb = _rgb(PHONE / f"{name}.jpg")
    native = tools.make_photo(PHONE / f"{name}.jpg", prof)
    assert native.placement.enlargement <= limit and native.report.get("source_resolution").passed
    h, w = rgb.shape[:2]
    k = 2 * limit / native.placement.enlargement  # a downscale that doubles the needed enlargement past it
    small = cv2.resize(rgb, (round(w / k), round(h / k)), interpolation=cv2.INTER_AREA)
    made = tools.make_photo(_jpeg(small), prof)
    c = made.report.get("source_resolution")
    assert made.placement.enlargement > limit and not c.passed and not made.compliant
    assert c.value == pytest.approx(made.placement.enlargement)


def test_check_on_a_finished_photo_compares_its_pixels_with_the_profiles(tools):
    prof = get_profile("id_card")
    photo = tools.make_photo(PHONE / "u2_man.jpg", prof)
    own = tools.check(photo.jpeg, prof).get("source_resolution")
    assert own.passed and own.value == 1.0  # the profile's own size: nothing enlarged
    rgb = _rgb_bytes(photo.jpeg)
    w, h = prof.size
    for k in (1.5, 3.0):
        small = cv2.resize(rgb, (round(w / k), round(h / k)), interpolation=cv2.INTER_AREA)
        c = tools.check(_jpeg(small), prof).get("source_resolution")
        assert c.value == pytest.approx(max(w / small.shape[1], h / small.shape[0]))
        assert c.passed == (c.value <= prof.thresholds["source_enlargement_max"])
    assert not c.passed and c.outcome == "too_small"  # a third of the pixels: enlarged 3x to print


def _rgb_bytes(data: bytes) -> np.ndarray:
    return np.ascontiguousarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1])


@pytest.mark.parametrize("profile_id", sorted(load_profiles()))
def test_a_kiosk_still_is_never_refused_for_its_resolution(tools, profile_id):
    """The camera's still (1920x1440 in the simulator, 4056x3040 on the Pi HQ camera) with a face
    of a normal session's size: far below the limit."""
    from kiosk.samples import sample_path
    from kiosk.sim.scene import Scene, SimCamera, SimSubject
    from kiosk.vision.imageio import load_image

    cam = SimCamera.from_image(load_image(sample_path()), analyzer=tools.analyzer)
    cam.subject = SimSubject()
    cam.subject.arrive(Scene(mouth=0.0, tilt=0.0))
    photo = tools.make(cam.still(), profile_id)
    c = photo.report.get("source_resolution")
    assert c.passed and photo.placement.enlargement < 1.0


def test_the_limit_is_policy_in_the_profiles_file():
    raw = tomllib.loads(PROFILES_FILE.read_text(encoding="utf-8"))
    assert "source_enlargement_max" in raw["defaults"]["thresholds"]
    raw["defaults"]["thresholds"]["source_enlargement_max"] = "2x"
    with pytest.raises(ProfileError, match="source_enlargement_max: expected int or float"):
        parse_profiles(raw)
    del raw["defaults"]["thresholds"]["source_enlargement_max"]
    with pytest.raises(ProfileError, match="source_enlargement_max: missing"):
        parse_profiles(raw)
