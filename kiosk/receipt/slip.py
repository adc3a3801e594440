"""The receipt slip as ESC/POS bytes, built with python-escpos from a layout (layouts.toml).

Chinese text is sent in the printer's GB18030 Chinese mode (FS &); the number is printed large, as a
native Code 128 barcode (GS k, code set C for digit pairs) and as a native QR code (GS ( k), so the
printer, not the host, draws the codes. The same bytes go to a real printer and to the virtual one.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy
from PIL import Image, ImageOps

from kiosk import text as catalogue
from kiosk.errors import InputError
from kiosk.receipt.layouts import SlipLayout

PAPER_DOTS = {58: 384, 80: 576}  # printable width at 203 dpi
FONT_A_W = 12  # ASCII cell width in dots; a CJK character takes two cells
CHINESE_ON = b"\x1c\x26"  # FS &: GB18030 two/four-byte characters from here on
THUMB_SHARE = {58: 0.45, 80: 0.35}  # share of the paper width used by the photo thumbnail
REPRINT_MARK = "【{} {}】".format(*catalogue.both("slip.reprint"))  # 【补打 REPRINT】
RETAKE_MARK = "【{} {}】".format(*catalogue.both("slip.retake"))  # 【重拍 RETAKE】: a free retake


@dataclass(frozen=True)
class SlipData:
    """Everything printed on one slip; nothing about the citizen beyond what the receipt needs."""

    number: str
    document_zh: str
    city_zh: str
    station: str
    issued_at: datetime  # local time of the terminal
    layout: SlipLayout
    reprint: bool = False
    photo: bytes | None = None
    retake: bool = False  # the new slip of a free retake (same number, new photo)

    @property
    def valid_until(self) -> datetime:
        return self.issued_at + timedelta(days=self.layout.validity_days)


def cells(text: str) -> int:
    """Printed width in ASCII cells: wide (CJK, full-width) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap(text: str, width: int) -> list[str]:
    """Break text into lines of at most `width` cells (no hyphenation: CJK breaks anywhere)."""
    lines, cur, n = [], "", 0
    for ch in text:
        w = cells(ch)
        if n + w > width:
            lines.append(cur)
            cur, n = "", 0
        cur += ch
        n += w
    if cur or not lines:
        lines.append(cur)
    return lines


def code128_data(number: str) -> bytes:
    """GS k 73 payload: code set C for the leading digit pairs, code set B for what is left."""
    pairs = len(number) // 2 if number.isdigit() else (len(number) - 1) // 2
    digits = number[: pairs * 2]
    rest = number[pairs * 2 :]
    out = b"{C" + bytes(int(digits[i : i + 2]) for i in range(0, len(digits), 2))
    if rest:
        out += b"{B" + rest.encode("ascii")
    return out


def code128_modules(number: str) -> int:
    """Width of the Code 128 symbol in modules: start, data, check (11 each) and stop (13)."""
    data = code128_data(number)
    pairs = data.index(b"{B") - 2 if b"{B" in data else len(data) - 2
    rest = len(data) - pairs - 4 if b"{B" in data else 0
    symbols = 1 + pairs + (1 + rest if rest else 0) + 1
    return symbols * 11 + 13


def _zh(p: Dummy, text: str) -> None:
    p._raw(text.encode("gb18030"))


def _line(p: Dummy, text: str, width: int) -> None:
    for ln in wrap(text, width):
        _zh(p, ln + "\n")


def dithered(photo: bytes, width: int) -> Image.Image:
    """The photo as a 1-bit Floyd–Steinberg image `width` dots wide (thermal printers print dots)."""
    try:
        im = Image.open(io.BytesIO(photo))
        im.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure is unusable input
        raise InputError(f"photo cannot be decoded for the slip thumbnail: {exc}") from None
    im = ImageOps.exif_transpose(im).convert("L")
    width -= width % 8
    h = max(8, round(im.height * width / im.width))
    im = ImageOps.autocontrast(im.resize((width, h), Image.Resampling.LANCZOS), cutoff=1)
    return im.convert("1")  # Pillow dithers with Floyd–Steinberg by default


def compose(slip: SlipData, paper_mm: int = 58) -> bytes:
    """The slip's ESC/POS byte stream for paper of `paper_mm` (58 or 80)."""
    if paper_mm not in PAPER_DOTS:
        raise InputError(f"paper width must be 58 or 80 mm, not {paper_mm}")
    dots = PAPER_DOTS[paper_mm]
    width = dots // FONT_A_W
    lay = slip.layout
    p = Dummy()
    p.profile.profile_data["media"] = {"dpi": 203, "width": {"mm": paper_mm, "pixels": dots}}
    p.hw("INIT")
    p._raw(CHINESE_ON)
    for marked, mark in ((slip.reprint, REPRINT_MARK), (slip.retake, RETAKE_MARK)):
        if marked:
            p.set(align="center", bold=True, invert=True)
            _line(p, mark, width)
            p.set(bold=False, invert=False)
    for block in lay.blocks:
        if block == "title":
            big = cells(lay.title) * 2 <= width
            p.set(align="center", bold=True, double_height=True, double_width=big)
            _line(p, lay.title, width // (2 if big else 1))
            p.set(normal_textsize=True, bold=False)
            p.ln()
        elif block == "number":
            p.set(align="center")
            _line(p, f"{lay.number_label} / {catalogue.text('slip.number', 'en')}", width)
            wide = cells(slip.number) * 2 <= width
            p.set(align="center", bold=True, double_height=True, double_width=wide)
            _line(p, slip.number, width // (2 if wide else 1))
            p.set(normal_textsize=True, bold=False)
        elif block == "barcode":
            module = max(m for m in (2, 3, 4) if code128_modules(slip.number) * m <= dots or m == 2)
            p.set(align="center")
            # python-escpos' own barcode() prints to stdout; its hardware path is called directly.
            p._hw_barcode(
                code128_data(slip.number).decode("latin-1"),
                "CODE128",
                height=80,
                width=module,
                pos="OFF",
                align_ct=True,
                function_type="B",
                check=False,
            )
            p.ln()
        elif block == "qr":
            p.ln()  # a quiet zone between the QR code and what comes before it
            p.set(align="center")
            p.qr(lay.qr_payload(slip.number), ec=QR_ECLEVEL_M, size=6 if paper_mm == 80 else 5, native=True)
            p.ln()
        elif block == "fields":
            p.set(align="left")
            when = slip.issued_at
            for label, value in (
                (catalogue.text("slip.document"), slip.document_zh),
                (catalogue.text("slip.city"), slip.city_zh),
                (catalogue.text("slip.station"), slip.station),
                (catalogue.text("slip.issued"), f"{when:%Y-%m-%d %H:%M}"),
                (catalogue.text("slip.valid_until"), f"{slip.valid_until:%Y-%m-%d}"),
            ):
                _line(p, f"{label}：{value}", width)
        elif block == "use_at":
            p.set(align="left")
            _line(p, lay.use_at, width)
        elif block == "note":
            p.set(align="left")
            _line(p, lay.note, width)
        elif block == "thumbnail" and lay.thumbnail and slip.photo:
            try:
                thumb = dithered(slip.photo, int(dots * THUMB_SHARE[paper_mm]))
            except InputError:
                continue  # the number matters, not the picture: a slip is never lost to its thumbnail
            p.set(align="center")
            p.image(thumb, impl="bitImageRaster")
    for marked, mark in ((slip.reprint, REPRINT_MARK), (slip.retake, RETAKE_MARK)):
        if marked:
            p.set(align="center", bold=True)
            _line(p, mark, width)
    p.set(align="left", bold=False)
    p.ln(3)
    p.cut()
    return p.output
