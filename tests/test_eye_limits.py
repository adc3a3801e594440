"""The eye-state limits (kiosk/vision/data/eyes.toml): schema checks and the wink rule's arithmetic.

The limits themselves are set and verified on real photos (tests/test_real_photos.py); here: a
malformed file is a one-line refusal, and the wink rule closes an eye only against a wider partner.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from kiosk.vision.face_measures import (
    EYES_DATA,
    EyesDataError,
    eye_limits,
    eyelid_aperture,
    lid_gaps,
    parse_eye_limits,
)

SHIPPED = tomllib.loads(EYES_DATA.read_text("utf-8"))


def _contours(*gaps: float) -> np.ndarray:
    """Two eye contours 1.0 wide whose three lid pairs are ``gap`` apart (the 71-point layout)."""
    c = np.zeros((2, 71, 2))
    for k, g in enumerate(gaps):
        c[k, 8] = (1.0, 0.0)  # inner corner; the outer one (0) stays at the origin
        for up, down in ((11, 3), (12, 4), (13, 5)):
            c[k, up] = (0.5, -g / 2)
            c[k, down] = (0.5, g / 2)
    return c


def test_the_shipped_limits_parse_and_are_ordered():
    lim = parse_eye_limits(SHIPPED)
    assert lim == eye_limits()
    assert 0 < lim.closed_below <= lim.wink_below < 1 and 0 < lim.wink_ratio < 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"closed_below": "0.16"}, "closed_below"),
        ({"wink_ratio": True}, "wink_ratio"),
        ({"wink_below": 1.5}, "wink_below"),
        ({"closed_below": 0.2, "wink_below": 0.18}, "wink_below must be at least closed_below"),
        ({"eyes_closed": 0.1}, "eyes_closed: unknown key"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_key(change, words):
    with pytest.raises(EyesDataError, match=words):
        parse_eye_limits({**SHIPPED, **change})


def test_a_missing_limit_is_refused():
    data = {k: v for k, v in SHIPPED.items() if k != "wink_below"}
    with pytest.raises(EyesDataError, match="wink_below"):
        parse_eye_limits(data)


def test_a_winks_eye_is_closed_against_its_partner_and_a_squint_of_both_eyes_is_not():
    lim = eye_limits()
    between = (lim.closed_below + lim.wink_below) / 2  # above the limit on its own
    wide = between / lim.wink_ratio + 0.05
    assert lid_gaps(_contours(between, wide)) == pytest.approx((between, wide))
    wink = eyelid_aperture(_contours(between, wide))
    assert wink[0] < lim.closed_below and wink[1] == pytest.approx(wide)
    mirrored = eyelid_aperture(_contours(wide, between))
    assert mirrored[1] < lim.closed_below and mirrored[0] == pytest.approx(wide)
    # both eyes narrowed together (a smile, a squint): each read as it is, open
    assert eyelid_aperture(_contours(between, between)) == pytest.approx((between, between))
    # an eye above wink_below is never closed by the rule, however wide the other
    assert eyelid_aperture(_contours(lim.wink_below + 0.01, 0.6))[0] == pytest.approx(lim.wink_below + 0.01)
