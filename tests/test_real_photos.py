"""Compliance on real photos (tests/fixtures/real/, labels.toml, LICENSES.md): eyes, faces, coverings.

Round 1's closed eyes were made by construction and hid what matters; these are photographs of
people with their eyes closed, winking, squinting, in groups and wearing hats. The rates asserted
here are the ones the README's "Compliance on real photos" reports.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.photo.profiles import get_profile
from kiosk.vision.analyzer import analyze_file, in_view
from kiosk.vision.detector import FULL_RANGE, decode
from kiosk.vision.face_measures import eye_closed_below, eye_limits, lid_gaps

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full

REAL = Path(__file__).parent / "fixtures" / "real"
LABELS = tomllib.loads((REAL / "labels.toml").read_text("utf-8"))["photos"]
MEDIAPIPE = json.loads((REAL / "mediapipe_faces.json").read_text("utf-8"))
SAME_SCORE = 0.0015  # MediaPipe's scores are stored to 3 decimals


GREY_PHOTOS = ("bw_hair",)  # black-and-white: head_covering is not measured


def _path(name: str) -> Path:
    return REAL / LABELS[name]["category"] / f"{name}.jpg"


def _names(**want: str) -> list[str]:
    return [n for n, e in LABELS.items() if all(e[k] == v for k, v in want.items())]


def test_the_fixtures_cover_every_category_with_a_licence_each():
    licences = (REAL / "LICENSES.md").read_text("utf-8")
    for name in LABELS:
        assert _path(name).is_file(), name
        assert f"{LABELS[name]['category']}/{name}.jpg" in licences
    for eyes in ("closed", "one_closed", "squint", "open"):
        assert _names(eyes=eyes), eyes
    assert len(_names(category="group")) >= 5
    assert len(_names(covering="hat")) >= 8 and _names(covering="religious")
    assert _names(glasses="glasses") and _names(glasses="sunglasses")


# --- eyes ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eyes_checks(tools) -> dict[str, object]:
    """name -> the eyes_open check of `kiosk check --profile id_card` on every photo whose eyes show."""
    out = {}
    for name, e in LABELS.items():
        if e["eyes"] != "hidden" and e["category"] != "group":
            out[name] = tools.check(_path(name), "id_card").get("eyes_open")
    return out


def _fail_rate(checks: dict, names: list[str]) -> float:
    return sum(not checks[n].passed for n in names) / len(names)


def test_eyes_open_fails_on_closed_eyes_and_on_a_wink_and_passes_open_and_squinting_eyes(eyes_checks):
    """The issue's rates on every real eye photo (README: Compliance on real photos)."""
    closed = _names(eyes="closed")
    wink = _names(eyes="one_closed")
    squint = _names(eyes="squint")
    opened = [n for n in eyes_checks if LABELS[n]["eyes"] in ("open", "squint")]
    assert len(closed) >= 20 and len(wink) >= 6 and len(squint) >= 4 and len(opened) >= 100
    assert _fail_rate(eyes_checks, closed) >= 0.95
    assert _fail_rate(eyes_checks, wink) >= 0.75
    assert 1 - _fail_rate(eyes_checks, opened) >= 0.97
    # narrowed lids with the pupil showing count as open: most squints pass (a frown that presses
    # one eye to 0.156 does not; README)
    assert 1 - _fail_rate(eyes_checks, squint) >= 0.75
    for n in wink:  # the wink: one eye closed, the other open, said per eye
        d = eyes_checks[n].details
        assert {d["left_state"], d["right_state"]} == {"open", "closed"}, n


def test_a_winks_closed_eye_is_read_against_the_other_eye(analyzer, eyes_checks):
    """Winks whose closed eye reads above closed_below on its own fail through the wink rule."""
    lim = eye_limits()
    by_the_rule = []
    for n in _names(eyes="one_closed"):
        face = analyze_file(analyzer, _path(n))[0].faces[0]
        own = lid_gaps(face.eye_contours)
        shut = int(np.argmin(own))
        if own[shut] >= lim.closed_below:
            by_the_rule.append(n)
            assert own[shut] < lim.wink_ratio * own[1 - shut]
            assert face.eye_openness[shut] < lim.closed_below <= face.eye_openness[1 - shut]
            assert not eyes_checks[n].passed
    assert by_the_rule  # the rule is exercised by real winks, not only by construction
    # and it costs no open or squinting eye: each one it would close reads under closed_below anyway
    for n in [n for n in eyes_checks if LABELS[n]["eyes"] in ("open", "squint")]:
        face = analyze_file(analyzer, _path(n))[0].faces[0]
        own = lid_gaps(face.eye_contours)
        for i in (0, 1):
            if face.eye_openness[i] < lim.closed_below:
                assert own[i] < lim.closed_below, n


def test_the_check_and_the_analysis_use_one_measure_and_one_limit(analyzer, eyes_checks):
    assert get_profile("id_card").thresholds["eyes_open_min"] == eye_closed_below()
    analysis, _ = analyze_file(analyzer, _path("mixed_eyes"))
    face = analysis.faces[0]
    c = eyes_checks["mixed_eyes"]
    assert face.eye_state == (c.details["left_state"], c.details["right_state"])
    assert min(face.eye_openness) == pytest.approx(c.value, abs=0.02)


def test_the_mesh_alone_cannot_see_closed_eyes_so_without_the_iris_model_eyes_open_is_not_measured(analyzer):
    """Why the eyes measure is the iris model's contour: the mesh reads a closed eye as open."""
    analysis, rgb = analyze_file(analyzer, _path("closed_eyes"))
    mesh_only = analyzer.analyze(rgb, iris=False).faces[0]
    assert mesh_only.eye_state is None and min(mesh_only.eye_openness) > eye_closed_below()
    assert analysis.faces[0].eye_state == ("closed", "closed")


# --- faces --------------------------------------------------------------------------------------


def _mediapipe_faces(name: str) -> list[dict]:
    return MEDIAPIPE["photos"][f"{LABELS[name]['category']}/{name}.jpg"]


@pytest.mark.parametrize("name", _names(category="group"))
def test_a_group_photo_fails_single_face_and_the_count_is_mediapipes(tools, analyzer, name):
    rgb = analyze_file(analyzer, _path(name))[1]
    ours = sorted(analyzer.full_range.detect(rgb), key=lambda d: -d.score)
    theirs = sorted(_mediapipe_faces(name), key=lambda f: -f["score"])
    assert len(ours) == len(theirs)
    for d, f in zip(ours, theirs, strict=True):  # MediaPipe's letterbox resampling: the same scores and boxes
        assert d.score == pytest.approx(f["score"], abs=SAME_SCORE)
        assert list(d.box) == pytest.approx(f["box"], abs=1.0)
    c = tools.check(_path(name), "id_card").get("single_face")
    assert c.passed is False and c.value >= 2 and c.outcome == "many"
    assert c.value == analyzer.count_faces(rgb)  # the still counts what live guidance counts


def test_a_face_the_mesh_cannot_follow_still_counts(analyzer):
    """The poster's 30 px faces: all four are detected, the mesh rejects one; it is still a face."""
    rgb = analyze_file(analyzer, _path("many_faces"))[1]
    analysis = analyzer.analyze(rgb)
    assert analysis.unmeshed >= 1
    assert len(analysis.faces) + analysis.unmeshed == len(_mediapipe_faces("many_faces"))


def test_on_every_real_photo_the_full_range_faces_are_mediapipes(analyzer):
    """Not only the groups: every photo's full-range faces, scores and boxes, as MediaPipe 0.10.21."""
    for key, theirs in MEDIAPIPE["photos"].items():
        rgb = analyze_file(analyzer, REAL / key)[1]
        ours = sorted(analyzer.full_range.detect(rgb), key=lambda d: -d.score)
        theirs = sorted(theirs, key=lambda f: -f["score"])
        assert len(ours) == len(theirs), key
        for d, f in zip(ours, theirs, strict=True):
            assert d.score == pytest.approx(f["score"], abs=SAME_SCORE), key
            assert list(d.box) == pytest.approx(f["box"], abs=0.5), key


def test_the_full_range_input_is_resampled_as_mediapipe_does_it(analyzer):
    """The film poster's 30 px faces: OpenCV 5's float-precise letterbox scored them 0.595-0.598,
    under the 0.6 limit; MediaPipe's fixed-point bilinear (1/32 px) gives its 0.601-0.603."""
    from kiosk.vision.detector import letterbox_roi
    from kiosk.vision.geometry import crop

    rgb = analyze_file(analyzer, _path("many_faces"))[1]
    fr = analyzer.full_range
    assert len(fr.detect(rgb)) == len(_mediapipe_faces("many_faces")) == 4
    float_warp = crop(rgb, letterbox_roi(rgb.shape[1], rgb.shape[0]), 192, 192, border=cv2.BORDER_CONSTANT)
    raw_boxes, raw_scores = fr.model.run_uint8(float_warp, 2.0 / 255.0, -1.0)
    _, scores = decode(raw_boxes, raw_scores, 0.5, FULL_RANGE)
    near = [s for s in scores if 0.59 <= s < FULL_RANGE.min_score]
    assert near  # the same model on the other resampling: faces fall under the limit


def test_the_second_face_the_short_range_detector_misses_is_counted(analyzer):
    """The issue's case: two clear faces side by side, the smaller one missed by BlazeFace short range."""
    rgb = analyze_file(analyzer, _path("obama_and_biden"))[1]
    assert len(analyzer.detector.detect(rgb)) < 2
    assert len(analyzer.analyze(rgb).faces) == 2 == analyzer.count_faces(rgb)


@pytest.mark.parametrize("name", _names(category="eyes_open") + _names(category="edge"))
def test_one_person_is_one_face(analyzer, name):
    rgb = analyze_file(analyzer, _path(name))[1]
    assert len(analyzer.analyze(rgb).faces) == 1


def test_a_partial_face_counts_when_at_least_half_of_it_is_in_view():
    assert in_view((10, 10, 110, 110), 640, 480)
    assert in_view((-40, 10, 60, 110), 640, 480)  # 60 % inside: a person at the edge
    assert not in_view((-70, 10, 30, 110), 640, 480)  # a sliver: 30 % inside
    assert not in_view((600, 400, 700, 560), 640, 480)  # a corner: 40 % x 50 %


# --- head coverings ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def covering_checks(tools) -> dict[str, object]:
    return {name: tools.check(_path(name), "id_card").get("head_covering") for name in LABELS}


def test_a_cap_fails_head_covering_and_bare_heads_pass(covering_checks):
    cap = covering_checks["baseball_cap"]
    assert cap.passed is False and cap.outcome == "fail"
    assert (cap.message_zh, cap.message_en) == ("请摘下帽子", "Please take off your hat or cap")
    bare = [n for n, e in LABELS.items() if e["covering"] == "none" and n not in GREY_PHOTOS]
    assert len(bare) >= 100
    assert all(covering_checks[n].passed for n in bare), [n for n in bare if not covering_checks[n].passed]
    # fringes over the forehead are hair, not a hat (auburn curls too: several_faces' largest face)
    for n in ("closed_eyes", "happiness", "surprise", "several_faces", "lennon_2"):
        assert covering_checks[n].passed and covering_checks[n].details["hair"] is True


def test_a_fringe_under_a_hat_fails_and_a_grey_photo_is_not_guessed(covering_checks):
    """A black fringe under a white bucket hat: the crown above the fringe is not hair. In a grey
    photo a fringe and a hat differ only by colour: not measured, neither passed nor failed."""
    c = covering_checks["white_hat"]
    assert c.outcome == "fail" and c.details["hair"] is False
    for n in GREY_PHOTOS:
        c = covering_checks[n]
        assert c.outcome == "not_measured" and "hat" in c.message_en and "take off" not in c.message_en


def test_head_coverings_over_the_forehead_are_found_and_a_headscarf_with_the_face_visible_passes(
    covering_checks,
):
    hats = [n for n, e in LABELS.items() if e["covering"] == "hat" and n != "beige"]  # beige: no face found
    found = [n for n in hats if not covering_checks[n].passed]
    # the forehead's colour finds 7; the hair model's crown reading adds hats worn high (beanies, a
    # top hat), a peaked cap above the brows, a balaclava and a hood (anger.jpg). Missed: a hood over
    # curls (read as hair) and a red beanie worn high (crown 0.45 against 0.5; README)
    assert len(found) / len(hats) >= 0.8
    assert {"baseball_cap", "peaked_cap", "helmet", "hat", "ushanka", "colorful", "white_hat"} <= set(found)
    assert {"beanie", "balaclava", "portrait", "duty_uniform", "mask_not_in_place", "anger"} <= set(found)
    assert all(covering_checks[n].details.get("crown") is not None for n in hats)
    assert covering_checks["shawl"].passed  # religious covering, whole face visible: every profile


def test_kiosk_check_json_carries_head_covering_like_every_check(tools):
    report = tools.check(_path("white_hat"), "social_security").to_json()
    ids = [c["id"] for c in report["checks"]]
    assert ids.count("head_covering") == 1
    c = next(c for c in report["checks"] if c["id"] == "head_covering")
    assert set(c) >= {"value", "threshold", "passed", "severity", "message_zh", "message_en"}


def test_live_guidance_asks_to_take_the_cap_off(analyzer):
    from kiosk.capture.live import LiveLoop
    from kiosk.capture.rules import load_rules

    rgb = analyze_file(analyzer, _path("baseball_cap"))[1]
    live = LiveLoop(analyzer, load_rules())
    live.start(get_profile("id_card").thresholds)
    out = [live.process(rgb, i / 30) for i in range(20)]
    assert "head_covering" in out[-1].failing and not out[-1].ready
    assert load_rules().text("remove_hat") == {"zh": "请摘下帽子", "en": "Please take off your hat"}


def test_tracking_reads_each_eye_every_second_frame_and_keeps_the_state_of_both(analyzer):
    rgb = analyze_file(analyzer, _path("mixed_eyes"))[1]
    analyzer.reset()
    try:
        states = [analyzer.track(rgb).faces[0].eye_state for _ in range(6)]
    finally:
        analyzer.reset()
    assert states == [("closed", "open")] * 6
