"""The cut-out and the background checks (issue 18): the guided filter and the person's core as pure
functions; then, with the real segmenter, a dirty background fails, the area a levelled photo does not
cover is filled only where it is background, and on the real photo fixtures the output's background
is the profile's colour as a segmenter sees it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.errors import KioskError
from kiosk.photo import get_profile
from kiosk.photo.matting import _solve3, guided_filter, off_color_share, person_core, seen_background
from kiosk.samples import __file__ as samples_init
from kiosk.vision.imageio import load_image

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = load_image(Path(samples_init).parent / "astronaut.jpg")


def test_guided_filter_snaps_a_blurred_mask_onto_the_guide_edge():
    guide = np.zeros((80, 80), np.float32)
    guide[:, 40:] = 1.0  # a sharp edge in the image
    mask = cv2.GaussianBlur(guide, (0, 0), 6)  # a coarse, soft mask of the same edge
    out = guided_filter(guide, mask, 6, 1e-4)
    jump = lambda q: float((q[:, 40] - q[:, 39]).mean())  # noqa: E731 - the step across the edge
    assert jump(mask) < 0.1 and jump(out) > 0.3  # the soft ramp becomes a step where the image has one
    assert np.abs(out - guide)[:, 30:50].mean() < np.abs(mask - guide)[:, 30:50].mean()
    colour = guided_filter(np.repeat(guide[..., None], 3, axis=2) * [1.0, 0.6, 0.3], mask, 6, 1e-4, sub=2)
    assert jump(colour) > 0.3  # colour guide, fitted at half size
    flat = guided_filter(np.full((40, 40), 0.5, np.float32), mask[:40, 20:60], 3, 1e-3)
    box = cv2.blur(cv2.blur(mask[:40, 20:60], (7, 7), borderType=cv2.BORDER_REFLECT), (7, 7))
    assert np.abs(flat - box).max() < 1e-3  # no edge to follow: a plain (double) box mean


def test_three_by_three_solver_matches_numpy():
    rng = np.random.default_rng(1)
    r = rng.random((40, 3, 3)).astype(np.float32)
    s = r @ r.transpose(0, 2, 1) + 0.1 * np.eye(3, dtype=np.float32)
    v = rng.random((40, 3)).astype(np.float32)
    assert np.allclose(_solve3(s, v), np.linalg.solve(s, v[..., None])[..., 0], atol=1e-4)


def test_person_core_is_one_solid_region():
    prob = np.zeros((100, 100), np.float32)
    prob[20:90, 30:70] = 0.9  # the person
    prob[40:46, 45:52] = 0.1  # a hole in the hair: stays the person's
    prob[5:10, 5:10] = 0.9  # a detached bit of wall: not the person
    core = person_core(prob, np.ones_like(prob, bool), close=5)
    assert core[40:46, 45:52].all() and not core[5:10, 5:10].any()
    assert core[20:90, 30:70].all() and core.sum() == 70 * 40


def test_off_color_share_counts_every_background_pixel():
    white = get_profile("id_card").backgrounds[0]
    img = np.full((100, 100, 3), 255, np.uint8)
    img[0:10, 0:10] = 150  # a grey smudge: 1 % of the image
    bg = np.ones((100, 100), bool)
    assert off_color_share(img, bg, white, 12.0) == pytest.approx(0.01)
    img[0:10, 0:10] = 228  # within the tolerance of white's minimum (235 - 12)
    assert off_color_share(img, bg, white, 12.0) == 0.0


def _decode(jpeg: bytes) -> np.ndarray:
    return np.ascontiguousarray(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1])


def test_a_dirty_background_fails_background_uniformity(tools):
    photo = tools.make(SAMPLE, "id_card")
    clean = photo.report.get("background_uniformity")
    assert clean.passed and clean.value <= 0.005
    rgb = _decode(photo.jpeg)
    bg = seen_background(tools.segmenter.mask(rgb))
    dirty = rgb.copy()
    ys, xs = np.nonzero(bg[: rgb.shape[0] // 2])  # grey smudges beside the head
    for y, x in list(zip(ys, xs, strict=True))[:: max(1, len(ys) // 12)][:12]:
        cv2.circle(dirty, (int(x), int(y)), 4, (150, 150, 150), -1)
    ok, jpeg = cv2.imencode(".jpg", dirty[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    c = tools.check(jpeg.tobytes(), "id_card").get("background_uniformity")
    assert not c.passed and c.value > 0.005
    assert c.message_en.startswith("The background is not plain")


@pytest.mark.parametrize(
    ("name", "profile_id"), [("astronaut_roll+90.jpg", "exit_entry"), ("luispedro_roll+40.jpg", "exit_entry")]
)
def test_the_area_a_levelled_photo_lacks_is_background_only(tools, name, profile_id):
    photo = tools.make_photo(FIXTURES / "faces" / name, profile_id)
    assert photo.placement.outside > 0  # levelling needed pixels the source does not have
    assert photo.report.get("head_in_frame").passed  # ... and the mask calls them background
    src = load_image(FIXTURES / "faces" / name)
    size = get_profile(profile_id).size
    seen = cv2.warpAffine(np.full(src.shape[:2], 255, np.uint8), photo.placement.matrix, size) > 0
    unseen = cv2.erode((~seen).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # off JPEG's edge blur
    out = _decode(photo.jpeg)
    assert unseen.any() and (out[unseen] >= 240).all()  # the fill colour, nothing invented
    assert (tools.segmenter.mask(out)[unseen] < 0.5).mean() > 0.95


@pytest.mark.slow
def test_on_the_real_fixtures_the_background_is_the_profile_colour(tools):
    """make-photo on every single-person real photo: the output's background (as the segmenter sees
    it) holds at most 0.5 % off-colour pixels on every compliant output and on >= 90 % of them all."""
    prof = get_profile("id_card")
    tol, limit = prof.thresholds["background_color_tolerance"], prof.thresholds["background_off_color_max"]
    shares, compliant = [], []
    for path in sorted((FIXTURES / "real").glob("*/*.jpg")):
        if path.parent.name == "group":
            continue
        try:
            photo = tools.make_photo(path, prof)
        except KioskError:
            continue  # a second face or none: refused with its reason
        out = _decode(photo.jpeg)
        share = off_color_share(out, seen_background(tools.segmenter.mask(out)), prof.backgrounds[0], tol)
        shares.append(share if share is not None else 1.0)
        if photo.compliant:
            compliant.append(shares[-1])
    assert len(shares) >= 50
    assert all(s <= limit for s in compliant)
    assert sum(s <= limit for s in shares) >= 0.9 * len(shares), sorted(shares)[-8:]
