"""Pure parts of production: rule priority, background replacement without halo, JPEG to a size range."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from kiosk.photo.compose import choose_scale, choose_top, fold, replace_background
from kiosk.photo.encode import EncodeError, encode_in_range
from kiosk.photo.measures import FaceGeometry, resample
from kiosk.photo.profiles import get_profile


def test_fold_keeps_the_higher_priority_rule_when_rules_conflict():
    lo, hi, conflicts = fold([("a", 10, 20), ("b", 15, 30)])
    assert (lo, hi, conflicts) == (15, 20, [])
    lo, hi, conflicts = fold([("a", 10, 20), ("b", 25, 30)])
    assert conflicts == ["b"] and lo == hi == 20  # as close to b as a allows


def test_id_card_eye_line_wins_over_head_top():
    prof = get_profile("id_card")
    # a head whose hair top is 260 px above the eyes: hair 7-21 px from the top would put the eyes
    # at 267-281, i.e. 160-174 px above the bottom, below the required 207
    top, conflicts = choose_top(prof, hair_y=1000.0, eye_y=1260.0, rows=(0, 5000))
    assert conflicts == ["head_top"]
    assert 441 - (1260.0 - top) >= 207
    # a normal head: both hold, the hair lands inside 7..21
    top, conflicts = choose_top(prof, hair_y=1000.0, eye_y=1150.0, rows=(0, 5000))
    assert conflicts == [] and 7 <= 1000.0 - top <= 21 and 441 - (1150.0 - top) >= 207


def test_driving_licence_scale_satisfies_width_and_length_together():
    prof = get_profile("driving_licence")
    geo = FaceGeometry(
        face_width=100.0, inter_eye=45.0, head_length=146.0, center_x=0, eye_y=0, crown_y=0, chin_y=0
    )
    s, conflicts = choose_scale(prof, geo)
    assert conflicts == []
    assert 165 <= s * 100 <= 189 and 224 <= s * 146 <= 260
    # a head too long for its width: head_length has priority, face width gives way
    geo.head_length = 250.0
    s, conflicts = choose_scale(prof, geo)
    assert conflicts == ["face_width"] and 224 <= s * 250 <= 260


def _soft_disc(size: int = 200, radius: float = 60, edge: float = 6) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    d = np.hypot(xx - size / 2, yy - size / 2)
    return np.clip((radius - d) / edge + 0.5, 0, 1).astype(np.float32)


def test_background_replacement_leaves_no_dark_halo():
    alpha = _soft_disc()
    fg, old_bg, new_bg = np.array([200, 150, 120.0]), np.array([20, 30, 40.0]), (255, 255, 255)
    img = (alpha[..., None] * fg + (1 - alpha[..., None]) * old_bg).astype(np.uint8)
    out = replace_background(img, alpha, new_bg).astype(np.float32)
    edge = (alpha > 0.05) & (alpha < 0.95)
    expected = alpha[..., None] * fg + (1 - alpha[..., None]) * np.array(new_bg)
    assert np.abs(out[edge] - expected[edge]).max() < 12  # the old dark background is gone from the edge
    naive = alpha[..., None] * img + (1 - alpha[..., None]) * np.array(new_bg)
    assert np.abs(naive[edge] - expected[edge]).max() > 40  # while a plain blend keeps a dark ring
    assert (out[alpha < 0.02] == 255).all()
    assert np.abs(out[alpha > 0.99] - fg).max() < 2


def test_resample_antialiases_a_large_reduction():
    stripes = np.zeros((2000, 2000), np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes: a point sampler aliases them to black or white
    m = np.array([[0.1, 0, 0], [0, 0.1, 0]])
    small = resample(stripes, m, (200, 200))
    assert abs(float(small[10:-10, 10:-10].mean()) - 127.5) < 3
    assert small[10:-10, 10:-10].std() < 3


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (441, 358, 3), dtype=np.uint8), (0, 0), 2.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


@pytest.mark.parametrize(("lo", "hi"), [(14 * 1024, 20_000), (30 * 1024, 40_000), (50 * 1024, 80_000)])
def test_encode_lands_in_the_range_with_dpi_and_no_padding(lo, hi):
    rgb = _photo()
    enc = encode_in_range(rgb, lo, hi, 350)
    assert lo <= len(enc.data) <= hi
    img = Image.open(io.BytesIO(enc.data))
    assert img.format == "JPEG" and img.size == (358, 441)
    assert tuple(round(v) for v in img.info["dpi"]) == (350, 350)
    assert enc.data.endswith(b"\xff\xd9")  # nothing after the end-of-image marker
    assert "exif" not in img.info
    assert enc.psnr > 20 and not math.isnan(enc.psnr)


def test_encode_refuses_an_impossible_range_with_a_clear_message():
    flat = np.full((441, 358, 3), 255, np.uint8)  # a white card compresses far below 14 KB
    with pytest.raises(EncodeError, match=r"cannot encode a 358x441 JPEG within 14336\.\.20000 bytes"):
        encode_in_range(flat, 14 * 1024, 20_000, 350)
    with pytest.raises(EncodeError, match="cannot encode"):
        encode_in_range(_photo(), 100, 800, 350)  # noise needs more than 800 bytes even at quality 30
