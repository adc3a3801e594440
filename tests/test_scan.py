"""Decoding the slip's codes from camera-like images made from the rendered slip (kiosk.capture.scan):
at an angle with perspective, partly shadowed, dim; an unreadable slip gives the hint."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from kiosk.capture.scan import ScanRefused, SlipReader, check_number, decode_frame
from kiosk.receipt.layouts import load_layouts
from kiosk.receipt.numbers import format_for, mod11_2
from kiosk.receipt.slip import SlipData, compose
from kiosk.station import render_escpos
from kiosk.text import pair

FRAME = (640, 480)


def slip_image(number: str, city: str = "shenzhen") -> np.ndarray:
    """The slip as the virtual printer renders its ESC/POS bytes (grey, white paper)."""
    lay = load_layouts()
    data = SlipData(
        number=number,
        document_zh="居民身份证",
        city_zh=lay.city(city).name_zh,
        station="001",
        issued_at=datetime(2026, 12, 2, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
        layout=lay.layout("id_card", city),
    )
    return np.asarray(render_escpos(compose(data))[0].convert("L"))


def a_number(region: str = "440300", seq: int = 13) -> str:
    fmt = format_for("id_card")
    return fmt.make(f"{fmt.doc_code}{region}001261202", seq)


def photograph(
    slip: np.ndarray,
    angle: float = 0.0,
    tilt: float = 0.0,
    gain: float = 1.0,
    shadow: float = 0.0,
    blur: float = 0.0,
    width_share: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """A 640x480 camera frame of the slip held up: its middle (the QR code) in view, turned by ``angle``
    degrees, tilted away (perspective, ``tilt`` of its height), lit at ``gain``, a soft shadow over
    ``shadow`` of the frame from the left, sensor noise."""
    w, h = FRAME
    scale = width_share * w / slip.shape[1]
    sw, sh = slip.shape[1] * scale, slip.shape[0] * scale
    cx, cy = w / 2, h / 2 - (0.62 - 0.5) * sh  # the slip's QR code (at ~62 % of its length) near the centre
    src = np.float32([[0, 0], [slip.shape[1], 0], [slip.shape[1], slip.shape[0]], [0, slip.shape[0]]])
    dx = tilt * sw / 2  # the far (top) edge looks narrower
    dst = np.float32([[-sw / 2 + dx, -sh / 2], [sw / 2 - dx, -sh / 2], [sw / 2, sh / 2], [-sw / 2, sh / 2]])
    a = np.radians(angle)
    rot = np.float32([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = dst @ rot.T + np.float32([cx, cy])
    m = cv2.getPerspectiveTransform(src, dst)
    desk = np.full((h, w), 120, np.uint8)
    img = cv2.warpPerspective(slip, m, (w, h), flags=cv2.INTER_AREA, borderValue=0)
    mask = cv2.warpPerspective(np.full(slip.shape, 255, np.uint8), m, (w, h), borderValue=0)
    img = np.where(mask > 127, img, desk).astype(np.float32)
    light = np.full((h, w), gain, np.float32)
    if shadow > 0:
        xs = np.arange(w, dtype=np.float32)
        edge = shadow * w
        light *= (0.4 + 0.6 * np.clip((xs - edge) / 40.0 + 0.5, 0, 1))[None, :]
    img *= light
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    img += np.random.default_rng(seed).normal(0, 2.0, img.shape).astype(np.float32)
    grey = np.clip(img, 0, 255).astype(np.uint8)
    return np.dstack([grey] * 3)  # the camera's RGB


@pytest.fixture(scope="module")
def slip() -> tuple[str, np.ndarray]:
    n = a_number()
    return n, slip_image(n)


def test_the_rendered_slip_reads_straight(slip: tuple[str, np.ndarray]) -> None:
    number, img = slip
    d = decode_frame(photograph(img))
    assert d is not None and d.valid and d.text == number and d.symbology == "qr"


@pytest.mark.parametrize(
    "how",
    [
        {"angle": 20.0},
        {"angle": -20.0, "tilt": 0.12},
        {"angle": 15.0, "tilt": 0.15},
        {"shadow": 0.5},  # the shadow's edge across the code
        {"gain": 0.25},  # dim: paper at ~60 of 255
        {"angle": 12.0, "tilt": 0.1, "gain": 0.3, "shadow": 0.45},
    ],
    ids=["rot20", "rot-20-persp", "rot15-persp", "shadow", "dim", "all"],
)
def test_decodes_at_an_angle_shadowed_and_dim(slip: tuple[str, np.ndarray], how: dict) -> None:
    number, img = slip
    frame = photograph(img, **how)
    reader = SlipReader()
    assert reader.feed(frame) == number
    assert reader.number == number


@pytest.mark.parametrize(
    "how", [{"gain": 0.06}, {"shadow": 0.5, "gain": 0.1}], ids=["very-dim", "dark-shadow"]
)
def test_the_second_pass_reads_what_zxing_alone_does_not(slip: tuple[str, np.ndarray], how: dict) -> None:
    """Paper at ~15 of 255 under sensor noise: zxing-cpp on the frame finds nothing; smoothed and
    evened out (the reader's second pass) it reads the number."""
    import zxingcpp

    from kiosk.capture.scan import FORMATS

    number, img = slip
    frame = photograph(img, **how)
    assert not zxingcpp.read_barcodes(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), formats=FORMATS)
    d = decode_frame(frame)
    assert d is not None and d.text == number


def test_barcode_alone_reads(slip: tuple[str, np.ndarray]) -> None:
    """Held so that only the Code 128 barcode near the top is in view."""
    number, img = slip
    top = img[: int(img.shape[0] * 0.3)]
    frame = cv2.resize(top, (560, int(top.shape[0] * 560 / top.shape[1])), interpolation=cv2.INTER_AREA)
    d = decode_frame(frame)
    assert d is not None and d.symbology == "code128" and d.text == number


def test_unreadable_slip_gives_the_hint(slip: tuple[str, np.ndarray]) -> None:
    """Too far and out of focus: nothing reads, the reason is 'unreadable', whose text is the hint."""
    _, img = slip
    reader = SlipReader(give_up=3)
    for seed in range(3):
        assert reader.feed(photograph(img, width_share=0.15, blur=2.5, seed=seed)) is None
    assert reader.exhausted and reader.reason() == "unreadable"
    hint = pair("returning.refused.unreadable")
    assert "20" in hint["zh"] and "20 cm" in hint["en"] and "flat" in hint["en"]


def test_a_code_that_is_no_number() -> None:
    """A QR code with other text (a check character off by one) is 'not_a_number', not 'unreadable'."""
    n = a_number()
    wrong = n[:-1] + ("0" if n[-1] != "0" else "1")
    qr = zxing_qr(wrong)
    reader = SlipReader(give_up=1)
    assert reader.feed(qr) is None
    assert reader.reason() == "not_a_number"


def zxing_qr(text: str) -> np.ndarray:
    import zxingcpp

    bc = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
    img = np.asarray(bc.to_image(scale=6))
    return cv2.copyMakeBorder(img, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)


def test_check_number_format_check_character_region() -> None:
    lay = load_layouts()
    parsed, city = check_number(a_number("440300"), lay)
    assert city.id == "shenzhen" and parsed.profile_id == "id_card"
    with pytest.raises(ScanRefused) as e:
        check_number(a_number("110101"), lay)  # Beijing: issued elsewhere
    assert e.value.code == "other_region"
    body = a_number()[:-1]
    bad = body + ("0" if mod11_2(body) != "0" else "1")
    for text in (bad, "hello", "12345"):
        with pytest.raises(ScanRefused) as e:
            check_number(text, lay)
        assert e.value.code == "not_a_number"
