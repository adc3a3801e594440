"""Reading a returning citizen's slip from the live camera frames: its QR code or Code 128 barcode.

Pure functions on frames (numpy RGB or grey arrays), no camera and no session: the session's scan
state feeds frames to a ``SlipReader`` until one yields a number, and ``check_number`` says whether
the number can be one of this province's (format, check character, region). zxing-cpp is the
decoder the field uses; a frame it cannot read is tried once more smoothed (sensor noise) and with its
contrast evened out (CLAHE): a very dim or half-shadowed slip, which zxing-cpp alone does not read
(tests/test_scan.py, benchmarks/scan.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import zxingcpp

from kiosk.receipt.numbers import NumberError, ParsedNumber, check_ok, parse

FORMATS = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128)  # what the slip carries
_CLAHE = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))


class ScanRefused(Exception):
    """A scanned number the terminal cannot look up; ``code`` names its text (returning.toml)."""

    def __init__(self, code: str, detail: str = "", **fields: Any) -> None:
        super().__init__(detail or code)
        self.code, self.fields = code, fields


@dataclass(frozen=True)
class Decoded:
    """What one frame said: the text of a code, which symbology, and whether it is a valid number."""

    text: str
    symbology: str
    valid: bool  # digits with the right MOD 11-2 check character


def _grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def decode_frame(frame: np.ndarray) -> Decoded | None:
    """The slip's number from one frame, or None when no code could be read.

    A code whose text is a valid number wins over one that is not (a stray code in view); the
    frame as seen first, then evened out (dim, shadowed).
    """
    grey = _grey(frame)
    found: list[Decoded] = []
    for img in (grey, None):
        if img is None:
            img = _CLAHE.apply(cv2.GaussianBlur(grey, (0, 0), 1.0))
        for r in zxingcpp.read_barcodes(img, formats=FORMATS):
            text = r.text.strip().upper()
            found.append(Decoded(text, "qr" if r.format == zxingcpp.BarcodeFormat.QRCode else "code128",
                                 check_ok(text)))
        if any(d.valid for d in found):
            break
    if not found:
        return None
    return next((d for d in found if d.valid), found[0])


class SlipReader:
    """Frames in, one number out: the first valid number read, or after ``give_up`` frames nothing.

    A code that reads but is not a number (a wrong check character, another kind of code) is kept
    as the reason, so the citizen is told "this is not a receipt's code" rather than "hold it flat".
    """

    def __init__(self, give_up: int = 0) -> None:
        self.give_up = give_up  # 0: never (the session's timer ends the scan)
        self.frames = 0
        self.read: Decoded | None = None  # the last code read that was no number
        self.number: str | None = None
        self.symbology: str | None = None

    def feed(self, frame: np.ndarray) -> str | None:
        self.frames += 1
        d = decode_frame(frame)
        if d is not None and d.valid:
            self.number, self.symbology = d.text, d.symbology
            return d.text
        if d is not None:
            self.read = d
        return None

    @property
    def exhausted(self) -> bool:
        return self.give_up > 0 and self.frames >= self.give_up

    def reason(self) -> str:
        """Why nothing was read: ``not_a_number`` (a code that is none of ours) or ``unreadable``."""
        return "not_a_number" if self.read is not None else "unreadable"


def check_number(number: str, layouts: Any) -> tuple[ParsedNumber, Any]:
    """A scanned number: format and check character (``not_a_number``), and its region digits a
    city of the province in use (``other_region``). Returns the parsed number and its City."""
    try:
        parsed = parse(number)
    except NumberError as exc:
        raise ScanRefused("not_a_number", str(exc)) from None
    city = layouts.city_by_region(parsed.region)
    if city is None:
        raise ScanRefused("other_region", f"{parsed.number}: region {parsed.region} is not in this province")
    return parsed, city

