"""Checks on real photos and on controlled perturbations whose verdict is known by construction.

Both directions: the original passes the check under test, the perturbed image fails it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.errors import InputError
from kiosk.photo import CheckResult, PhotoTools
from kiosk.vision.imageio import load_image

FACES = Path(__file__).parent / "fixtures" / "faces"
FRONTAL = ("grace_hopper.jpg", "astronaut.png", "small_grace_hopper.jpg")


def png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok
    return buf.tobytes()


def checks(tools: PhotoTools, rgb: np.ndarray, profile: str = "id_card") -> dict[str, CheckResult]:
    return {c.id: c for c in tools.check(png(rgb), profile).checks}


def face_centre(tools: PhotoTools, rgb: np.ndarray) -> tuple[float, float, float]:
    f = tools.analyzer.analyze(rgb).faces[0]
    (x0, y0), (x1, y1) = f.eye_centers
    return (x0 + x1) / 2, (y0 + y1) / 2, f.inter_eye_distance


@pytest.mark.parametrize("name", FRONTAL)
def test_roll(tools, name):
    rgb = load_image(FACES / name)
    assert checks(tools, rgb)["roll"].passed
    cx, cy, _ = face_centre(tools, rgb)
    m = cv2.getRotationMatrix2D((cx, cy), 15, 1.0)
    rolled = cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    c = checks(tools, rolled)["roll"]
    assert not c.passed and abs(c.value) > 8
    assert c.message_zh == "请把头摆正"


@pytest.mark.parametrize("name", FRONTAL)
def test_sharpness(tools, name):
    rgb = load_image(FACES / name)
    assert checks(tools, rgb)["sharpness"].passed
    _, _, ied = face_centre(tools, rgb)
    blurred = cv2.GaussianBlur(rgb, (0, 0), ied / 25)  # defocus of 4 % of the eye distance
    assert not checks(tools, blurred)["sharpness"].passed


@pytest.mark.parametrize("name", FRONTAL)
def test_illumination_one_side_darkened(tools, name):
    rgb = load_image(FACES / name)
    assert checks(tools, rgb)["illumination_uniformity"].passed
    cx, _, _ = face_centre(tools, rgb)
    dark = rgb.astype(np.float32)
    dark[:, : int(cx)] *= 0.55
    c = checks(tools, dark.astype(np.uint8))["illumination_uniformity"]
    assert not c.passed and c.message_en.startswith("One side of the face is darker")


@pytest.mark.parametrize("name", FRONTAL)
def test_under_and_over_exposure(tools, name):
    rgb = load_image(FACES / name)
    assert checks(tools, rgb)["exposure"].passed
    under = checks(tools, (rgb * 0.3).astype(np.uint8))["exposure"]
    assert not under.passed and under.message_en == "The photo is too dark"
    over = checks(tools, np.clip(rgb * 1.6, 0, 255).astype(np.uint8))["exposure"]
    assert not over.passed and over.message_en == "The photo is too bright"


@pytest.mark.parametrize("name", ("grace_hopper_dark.jpg", "astronaut_dark.jpg"))
def test_low_light_fixtures_are_too_dark(tools, name):
    c = checks(tools, load_image(FACES / name))["exposure"]
    assert not c.passed and c.message_en == "The photo is too dark"


def test_two_faces_and_no_face(tools):
    c = checks(tools, load_image(FACES / "multi_face.jpg"))
    assert not c["single_face"].passed and c["single_face"].value == 3
    grace = load_image(FACES / "grace_hopper.jpg")
    side = np.hstack([grace, grace])
    assert checks(tools, side)["single_face"].value == 2
    report = tools.check(FACES / "chelsea.png", "id_card")  # a cat
    by_id = {x.id: x for x in report.checks}
    assert not report.compliant and not by_id["single_face"].passed
    assert by_id["single_face"].message_en.startswith("No face found")
    assert by_id["roll"].value is None and not by_id["roll"].passed


def test_mouth_and_yaw_on_real_faces(tools):
    astronaut = checks(tools, load_image(FACES / "astronaut.png"))  # a smile that shows the teeth
    grace = checks(tools, load_image(FACES / "grace_hopper.jpg"))
    luis = checks(tools, load_image(FACES / "luispedro.jpg"))  # head turned by about 20 degrees
    assert not astronaut["mouth_closed"].passed and grace["mouth_closed"].passed
    assert not luis["yaw"].passed and grace["yaw"].passed and astronaut["yaw"].passed
    assert astronaut["eyes_open"].passed and grace["eyes_open"].passed


def test_background_checks_see_a_busy_background_and_a_plain_one(tools):
    rgb = load_image(FACES / "astronaut.png")  # flag and shuttle model behind her
    c = checks(tools, rgb)
    assert not c["background_uniformity"].passed and not c["background_color"].passed
    person = tools.segmenter.mask(rgb)
    white = np.where(person[..., None] > 0.5, rgb, 255).astype(np.uint8)
    # the check sees the whole background as the segmenter sees it: a cut-out that agrees with it
    white = np.where(tools.segmenter.mask(white)[..., None] >= 0.5, white, 255).astype(np.uint8)
    c = checks(tools, white)
    assert c["background_uniformity"].passed and c["background_color"].passed
    grey = np.where(person[..., None] > 0.5, rgb, 215).astype(np.uint8)
    assert not checks(tools, grey, "id_card")["background_color"].passed  # white only
    assert checks(tools, grey, "exit_entry")["background_color"].passed  # light grey allowed


def test_white_clothing_on_white_background(tools):
    rgb = load_image(FACES / "grace_hopper.jpg")  # dark uniform
    assert checks(tools, rgb)["white_clothing"].passed
    face = tools.analyzer.analyze(rgb).faces[0]
    person = tools.segmenter.mask(rgb)
    rows = np.arange(rgb.shape[0])[:, None] > face.chin[1] + 20
    cloth = (person > 0.5) & rows
    shirt = rgb.copy()
    shirt[cloth] = (245, 245, 242)
    c = checks(tools, shirt)["white_clothing"]
    assert not c.passed and c.severity == "warning"


def test_resolution_and_file_size_of_a_raw_capture(tools):
    report = tools.check(FACES / "grace_hopper.jpg", "id_card")
    by_id = {c.id: c for c in report.checks}
    assert by_id["resolution"].value == [512, 600] and not by_id["resolution"].passed
    assert by_id["file_size"].details["bytes"] == (FACES / "grace_hopper.jpg").stat().st_size


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not an image"),
        (b"this is a text file, not a photo\n" * 10, "not an image"),
        ("truncated", "corrupt or truncated"),
        ("tiny", "too small"),
    ],
)
def test_unusable_input_is_an_input_error(tools, tmp_path, content, match):
    f = tmp_path / "in.jpg"
    if content == "truncated":
        content = (FACES / "grace_hopper.jpg").read_bytes()[:4000]
    elif content == "tiny":
        content = png(np.zeros((40, 30, 3), np.uint8))
    f.write_bytes(content)
    with pytest.raises(InputError, match=match) as err:
        tools.check(f, "id_card")
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_person_segmenter_on_a_real_portrait(tools):
    rgb = load_image(FACES / "grace_hopper.jpg")
    mask = tools.segmenter.mask(rgb)
    assert mask.shape == rgb.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    cx, cy, ied = face_centre(tools, rgb)
    assert mask[int(cy), int(cx)] > 0.9  # between the eyes
    assert mask[:20, :20].mean() < 0.1 and mask[:20, -20:].mean() < 0.1  # the backdrop's top corners
