"""A virtual thermal printer: interprets the ESC/POS bytes the project sends and renders them to PNG.

It is strict: a command it does not know is an error, so the demo, the tests and the console's test
print see exactly what a real 203-dpi printer would be asked to print. It also answers DLE EOT status
queries and can simulate faults (paper running out mid-job, cover open, unplugged, garbage replies).
"""

from __future__ import annotations

import io
import os
import time
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import qrcode
from barcode.charsets import code128 as c128
from PIL import Image, ImageDraw, ImageFont

from kiosk.errors import KioskError
from kiosk.fonts import cjk_font_path
from kiosk.hw.printer import Printer

PAPER_DOTS = {58: 384, 80: 576}
FAULT_EVERY_ENV = "KIOSK_SIM_PRINTER_FAULT_EVERY"  # `kiosk run --sim`: paper out in every N-th slip
FAULT_AT_BYTES = 16  # how far into a faulted slip the roll ends
RELOAD_AFTER_S = 2.0  # the simulated technician puts in a new roll this long after it ran out
KEEP_SLIPS = 8  # slips (rendered rows and bytes) the printer keeps; a service runs for weeks
CELL_W, CELL_H = 12, 24  # font A: ASCII 12x24 dots; GB18030 characters 24x24
LINE_GAP = 6  # default line spacing is 30 dots: 24 dots of glyph plus 6
QR_EC = {
    48: qrcode.constants.ERROR_CORRECT_L,
    49: qrcode.constants.ERROR_CORRECT_M,
    50: qrcode.constants.ERROR_CORRECT_Q,
    51: qrcode.constants.ERROR_CORRECT_H,
}


class EscPosError(KioskError):
    """The byte stream is not ESC/POS this printer understands (the offset says where)."""


def find_cjk_font() -> Path:
    """An installed CJK font, else the subset bundled in kiosk/fonts (the demo needs nothing but Python)."""
    return cjk_font_path()


@lru_cache(maxsize=4)
def load_fonts(path: Path, size: int = 22) -> tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont]:
    """(Chinese font, ASCII font) from a font collection: a Simplified Chinese face for GB18030 text and
    a monospaced face for ASCII, which a printer's font A draws in half-width 12-dot cells."""
    faces = []
    for index in range(16):
        try:
            faces.append(ImageFont.truetype(str(path), size, index=index))
        except OSError:
            break
    if not faces:
        raise KioskError(f"virtual printer: cannot load the font {path}")
    names = [" ".join(f.getname()) for f in faces]
    cjk = next((f for f, n in zip(faces, names, strict=True) if " SC" in n and "Mono" not in n), None)
    cjk = cjk or next((f for f, n in zip(faces, names, strict=True) if "Mono" not in n), faces[0])
    mono = next(
        (f for f, n in zip(faces, names, strict=True) if "Mono" in n and (" SC" in n or "CJK" not in n)), None
    )
    return cjk, mono or next((f for f, n in zip(faces, names, strict=True) if "Mono" in n), cjk)


def code128_modules(data: bytes) -> str:
    """Bars ('1') and spaces ('0') of a GS k 73 payload ({A/{B/{C select and switch code sets)."""
    if len(data) < 2 or data[0:1] != b"{" or data[1:2] not in (b"A", b"B", b"C"):
        raise EscPosError("Code 128 data must start with {A, {B or {C")
    cset = chr(data[1])
    values = [c128.START_CODES[cset]]
    i = 2
    while i < len(data):
        b = data[i]
        if b == 0x7B and i + 1 < len(data):  # '{' introduces a code-set switch or function
            nxt = chr(data[i + 1])
            if nxt in "ABC":
                values.append({"A": 101, "B": 100, "C": 99}[nxt] if cset != "A" or nxt != "B" else 100)
                cset = nxt
                i += 2
                continue
            if nxt == "1":
                values.append(102)
                i += 2
                continue
            if nxt == "{":
                i += 1  # literal '{'
                b = data[i]
        if cset == "C":
            if b > 99:
                raise EscPosError(f"Code 128 set C value {b} is over 99")
            values.append(b)
        elif cset == "B":
            if not 32 <= b <= 127:
                raise EscPosError(f"Code 128 set B cannot encode byte {b}")
            values.append(b - 32)
        else:
            if b > 95:
                raise EscPosError(f"Code 128 set A cannot encode byte {b}")
            values.append(b - 32 if b >= 32 else b + 64)
        i += 1
    check = (values[0] + sum(k * v for k, v in enumerate(values[1:], start=1))) % 103
    return "".join(c128.CODES[v] for v in [*values, check]) + c128.STOP + "11"


@dataclass
class Style:
    align: int = 0  # 0 left, 1 centre, 2 right
    bold: bool = False
    underline: int = 0
    invert: bool = False
    wmul: int = 1
    hmul: int = 1
    font_b: bool = False
    upside_down: bool = False


@dataclass
class Status:
    """The printer's state as DLE EOT reports it."""

    online: bool = True
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    cutter_error: bool = False


@dataclass
class VirtualPrinter:
    """Interprets ESC/POS into a growing strip of paper; `paper_dots` is 384 (58 mm) or 576 (80 mm).

    Fault simulation: `paper_left` bytes of printing before the roll ends (None: endless),
    `unplugged` makes every write fail, `garbage_status` makes status replies invalid,
    `silent` makes the printer never answer a status query. `fault_every` N: the roll runs out
    partway through every N-th slip, and a new roll is in `reload_after_s` later (the next status
    query after that finds the printer ready): a hall's printer faults, injected by count.
    Only the last `keep_slips` slips are kept (`slips()`, `received`): in `kiosk run --sim` every
    slip of the day would otherwise stay rendered in memory (0.45 MB each).
    """

    paper_mm: int = 58
    paper_left: int | None = None
    unplugged: bool = False
    garbage_status: bool = False
    silent: bool = False
    fault_every: int = 0
    reload_after_s: float = RELOAD_AFTER_S
    keep_slips: int = KEEP_SLIPS
    status: Status = field(default_factory=Status)
    received: bytearray = field(default_factory=bytearray)
    _replies: bytearray = field(default_factory=bytearray)
    _pending: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if self.paper_mm not in PAPER_DOTS:
            raise KioskError(f"virtual printer: paper must be 58 or 80 mm, not {self.paper_mm}")
        self.dots = PAPER_DOTS[self.paper_mm]
        self._font_path = find_cjk_font()
        self._font, self._ascii_font = load_fonts(self._font_path)
        self._rows: list[Image.Image] = []
        self._cuts: list[int] = []  # row index after which the paper was cut
        self._cut_bytes: list[int] = []  # len(received) when each cut was interpreted
        self._slips_cut = 0  # slips finished since power-on
        self._faulted_slip = -1  # the slip the injected fault hit (its reprint runs)
        self._paper_out_at: float | None = None
        self._reset()

    # --- the device side --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """What the host sends; the printer interprets whole commands as they complete."""
        if self.unplugged:
            raise OSError(19, "No such device (virtual printer unplugged)")
        self.received += data
        if len(data) == 3 and data[:2] == b"\x10\x04":
            # real-time command: answered on receipt, even between the bytes of an unfinished command
            self._answer_status(data[2])
            return
        if self.status.paper_out or self.status.cover_open or not self.status.online:
            return  # the printer buffers nothing useful while it is stopped
        slip = self._slips_cut + 1
        if self.fault_every > 0 and slip % self.fault_every == 0 and self._faulted_slip != slip:
            self._faulted_slip = slip  # this slip's roll ends partway
            self.paper_left = min(self.paper_left or FAULT_AT_BYTES, FAULT_AT_BYTES)
        if self.paper_left is not None:
            if len(data) > self.paper_left:
                data = data[: self.paper_left]
                self.paper_left = 0
            else:
                self.paper_left -= len(data)
        self._pending += data
        self._interpret()
        if self.paper_left == 0:
            self.status.paper_out = True
            self._paper_out_at = time.monotonic()
            self._flush_line()

    def read(self) -> bytes:
        out = bytes(self._replies)
        self._replies.clear()
        return out

    def _answer_status(self, n: int) -> None:
        if self.unplugged or self.silent:
            return
        if (
            self.fault_every > 0
            and self._paper_out_at is not None
            and time.monotonic() - self._paper_out_at >= self.reload_after_s
        ):
            self.load_paper()  # the injected fault's new roll
        if self.garbage_status:
            self._replies += b"\xff"
            return
        s = self.status
        if n == 1:
            b = 0x12 | (0x08 if (not s.online or s.paper_out or s.cover_open) else 0)
        elif n == 2:
            b = (
                0x12
                | (0x04 if s.cover_open else 0)
                | (0x20 if s.paper_out else 0)
                | (0x40 if s.cutter_error else 0)
            )
        elif n == 3:
            b = 0x12 | (0x08 if s.cutter_error else 0)
        elif n == 4:
            b = 0x12 | (0x0C if s.paper_near_end or s.paper_out else 0) | (0x60 if s.paper_out else 0)
        else:
            raise EscPosError(f"DLE EOT {n}: unknown status request")
        self._replies.append(b)

    def load_paper(self, paper_left: int | None = None) -> None:
        """The technician puts in a new roll: the printer comes back online."""
        self.status.paper_out = False
        self._paper_out_at = None
        self.paper_left = paper_left
        self._pending.clear()
        self._reset()

    # --- interpretation -----------------------------------------------------------------------------

    def _reset(self) -> None:
        self.style = Style()
        self.chinese = False
        self._line: list[tuple[str, Style]] = []
        self._line_cells = 0
        self.barcode_h, self.barcode_w, self.hri = 162, 3, 0
        self.qr_size, self.qr_ec, self.qr_data = 3, 48, b""
        self.line_spacing = CELL_H + LINE_GAP

    def _need(self, i: int, n: int) -> bool:
        return i + n <= len(self._pending)

    def _interpret(self) -> None:  # noqa: C901 - one branch per command, as in the manual
        buf = self._pending
        i = 0
        while i < len(buf):
            b = buf[i]
            start = i
            if b == 0x0A:
                self._newline()
                i += 1
            elif b == 0x0D:
                i += 1
            elif b == 0x1B:
                if not self._need(i, 2):
                    break
                c = buf[i + 1]
                if c == 0x40:  # ESC @
                    self._flush_line()
                    self._reset()
                    i += 2
                elif c in (0x21, 0x61, 0x45, 0x2D, 0x4D, 0x7B, 0x74, 0x64, 0x4A, 0x33, 0x47, 0x56, 0x20):
                    if not self._need(i, 3):
                        break
                    n = buf[i + 2]
                    self._esc(c, n)
                    i += 3
                elif c == 0x32:  # ESC 2: default line spacing
                    self.line_spacing = CELL_H + LINE_GAP
                    i += 2
                else:
                    raise EscPosError(
                        f"unknown command ESC 0x{c:02x} at byte {len(self.received) - len(buf) + i}"
                    )
            elif b == 0x1D:
                if not self._need(i, 2):
                    break
                c = buf[i + 1]
                if c in (0x21, 0x42, 0x62, 0x68, 0x77, 0x48, 0x66, 0x61):
                    if not self._need(i, 3):
                        break
                    self._gs(c, buf[i + 2])
                    i += 3
                elif c == 0x56:  # GS V m [n]
                    if not self._need(i, 3):
                        break
                    m = buf[i + 2]
                    n = 0
                    if m in (65, 66, 97, 98, 103, 104):
                        if not self._need(i, 4):
                            break
                        n = buf[i + 3]
                        i += 1
                    self._cut(n)
                    i += 3
                elif c == 0x6B:  # GS k
                    if not self._need(i, 3):
                        break
                    m = buf[i + 2]
                    if m < 65:
                        end = buf.find(b"\x00", i + 3)
                        if end < 0:
                            break
                        raise EscPosError(f"GS k function A barcode type {m} is not supported")
                    if not self._need(i, 4) or not self._need(i, 4 + buf[i + 3]):
                        break
                    data = bytes(buf[i + 4 : i + 4 + buf[i + 3]])
                    if m != 73:
                        raise EscPosError(f"GS k barcode type {m} is not supported (only Code 128)")
                    self._barcode(data)
                    i += 4 + len(data)
                elif c == 0x76:  # GS v 0 raster image
                    if not self._need(i, 8):
                        break
                    wb = buf[i + 4] | buf[i + 5] << 8
                    h = buf[i + 6] | buf[i + 7] << 8
                    if not self._need(i, 8 + wb * h):
                        break
                    self._raster(bytes(buf[i + 8 : i + 8 + wb * h]), wb, h)
                    i += 8 + wb * h
                elif c == 0x28:  # GS ( k / GS ( L
                    if not self._need(i, 5):
                        break
                    ln = buf[i + 3] | buf[i + 4] << 8
                    if not self._need(i, 5 + ln):
                        break
                    body = bytes(buf[i + 5 : i + 5 + ln])
                    if buf[i + 2] == 0x6B:
                        self._qr(body)
                    else:
                        raise EscPosError(f"GS ( 0x{buf[i + 2]:02x} is not supported")
                    i += 5 + ln
                else:
                    raise EscPosError(f"unknown command GS 0x{c:02x}")
            elif b == 0x1C:
                if not self._need(i, 2):
                    break
                c = buf[i + 1]
                if c == 0x26:
                    self.chinese = True
                elif c == 0x2E:
                    self.chinese = False
                else:
                    raise EscPosError(f"unknown command FS 0x{c:02x}")
                i += 2
            elif b == 0x10:
                if not self._need(i, 3):
                    break
                if buf[i + 1] != 0x04:
                    raise EscPosError(f"unknown command DLE 0x{buf[i + 1]:02x}")
                self._answer_status(buf[i + 2])
                i += 3
            elif b < 0x20:
                raise EscPosError(f"unexpected control byte 0x{b:02x}")
            else:
                n = self._char_len(buf, i)
                if n == 0:
                    break
                raw = bytes(buf[i : i + n])
                try:
                    ch = raw.decode("gb18030") if self.chinese else raw.decode("cp437")
                except UnicodeDecodeError:
                    ch = "?"
                self._add_char(ch)
                i += n
            if i == start:  # an incomplete command: wait for more bytes
                break
        del buf[:i]

    def _char_len(self, buf: bytearray, i: int) -> int:
        """Bytes in the character at i (GB18030: 1, 2 or 4); 0 when it is not complete yet."""
        b = buf[i]
        if not self.chinese or b < 0x81 or b == 0xFF:
            return 1
        if not self._need(i, 2):
            return 0
        if 0x30 <= buf[i + 1] <= 0x39:
            return 4 if self._need(i, 4) else 0
        return 2

    def _esc(self, c: int, n: int) -> None:
        s = self.style
        if c == 0x21:  # ESC ! print mode
            s.font_b, s.bold = bool(n & 1), bool(n & 8)
            s.hmul, s.wmul = (2 if n & 16 else 1), (2 if n & 32 else 1)
            s.underline = 1 if n & 128 else 0
        elif c == 0x61:
            s.align = n % 48 if n >= 48 else n
        elif c in (0x45, 0x47):
            s.bold = bool(n & 1)
        elif c == 0x2D:
            s.underline = n % 48 if n >= 48 else n
        elif c == 0x4D:
            s.font_b = bool(n & 1)
        elif c == 0x7B:
            s.upside_down = bool(n & 1)
        elif c == 0x64:  # ESC d n: print and feed n lines
            self._flush_line()
            self._blank(n * self.line_spacing)
        elif c == 0x4A:  # ESC J n: print and feed n dots
            self._flush_line()
            self._blank(n)
        elif c == 0x33:
            self.line_spacing = max(n, CELL_H)
        # ESC t (code table), ESC V (rotation), ESC SP (right spacing): accepted, no effect here

    def _gs(self, c: int, n: int) -> None:
        s = self.style
        if c == 0x21:
            s.wmul, s.hmul = (n >> 4 & 7) + 1, (n & 7) + 1
        elif c == 0x42:
            s.invert = bool(n & 1)
        elif c == 0x68:
            self.barcode_h = max(n, 1)
        elif c == 0x77:
            if not 1 <= n <= 6:
                raise EscPosError(f"GS w {n}: barcode module width must be 1..6")
            self.barcode_w = n
        elif c == 0x48:
            self.hri = n % 48 if n >= 48 else n
        # GS b (smoothing), GS f (HRI font), GS a (automatic status back): no effect on the paper

    # --- drawing ------------------------------------------------------------------------------------

    def _add_char(self, ch: str) -> None:
        s = self.style
        w = (2 if unicodedata.east_asian_width(ch) in "WF" else 1) * s.wmul
        if self._line_cells + w > self.dots // CELL_W:
            self._flush_line()
        self._line.append((ch, Style(**vars(s))))
        self._line_cells += w

    def _newline(self) -> None:
        if not self._line:
            self._blank(self.line_spacing)
            return
        self._flush_line()

    def _flush_line(self) -> None:
        if not self._line:
            return
        hmul = max(st.hmul for _, st in self._line)
        height = CELL_H * hmul + (self.line_spacing - CELL_H)
        row = Image.new("L", (self.dots, height), 255)
        x = 0
        glyphs = []
        for ch, st in self._line:
            wcells = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
            cell = Image.new("L", (wcells * CELL_W, CELL_H), 0 if st.invert else 255)
            d = ImageDraw.Draw(cell)
            ink = 255 if st.invert else 0
            d.text(
                (wcells * CELL_W / 2, CELL_H / 2),
                ch,
                font=self._font if wcells == 2 else self._ascii_font,
                fill=ink,
                anchor="mm",
                stroke_width=1 if st.bold else 0,
                stroke_fill=ink,
            )
            if st.underline:
                d.line([(0, CELL_H - 2), (cell.width, CELL_H - 2)], fill=ink, width=st.underline)
            if st.wmul > 1 or st.hmul > 1:
                cell = cell.resize((cell.width * st.wmul, CELL_H * st.hmul), Image.Resampling.NEAREST)
            if st.upside_down:
                cell = cell.rotate(180)
            glyphs.append((x, cell, st.hmul))
            x += cell.width
        offset = {0: 0, 1: (self.dots - x) // 2, 2: self.dots - x}.get(self._line[0][1].align, 0)
        for gx, cell, hm in glyphs:
            row.paste(cell, (offset + gx, CELL_H * (hmul - hm)))
        self._rows.append(row)
        self._line, self._line_cells = [], 0

    def _blank(self, height: int) -> None:
        if height > 0:
            self._rows.append(Image.new("L", (self.dots, height), 255))

    def _place(self, im: Image.Image) -> None:
        """An image row (barcode, QR, raster) aligned as text is."""
        self._flush_line()
        if im.width > self.dots:
            raise EscPosError(f"image {im.width} dots wide does not fit paper of {self.dots} dots")
        row = Image.new("L", (self.dots, im.height), 255)
        x = {0: 0, 1: (self.dots - im.width) // 2, 2: self.dots - im.width}.get(self.style.align, 0)
        row.paste(im, (x, 0))
        self._rows.append(row)

    def _barcode(self, data: bytes) -> None:
        bars = code128_modules(data)
        w = len(bars) * self.barcode_w
        if w > self.dots:
            return  # a real printer silently skips a barcode wider than the paper
        im = Image.new("L", (w, self.barcode_h), 255)
        d = ImageDraw.Draw(im)
        for k, bit in enumerate(bars):
            if bit == "1":
                d.rectangle([k * self.barcode_w, 0, (k + 1) * self.barcode_w - 1, self.barcode_h - 1], fill=0)
        self._place(im)

    def _raster(self, data: bytes, wb: int, h: int) -> None:
        im = Image.frombytes("1", (wb * 8, h), data)
        # ESC/POS raster: 1 = black dot; Pillow mode "1": 1 = white
        self._place(Image.eval(im.convert("L"), lambda v: 255 - v))

    def _qr(self, body: bytes) -> None:
        if len(body) < 2 or body[0] != 0x31:
            raise EscPosError("GS ( k: only the QR code (cn 49) is supported")
        fn, arg = body[1], body[2:]
        if fn == 65:  # model
            pass
        elif fn == 67:
            if not arg or not 1 <= arg[0] <= 16:
                raise EscPosError("GS ( k: QR module size must be 1..16")
            self.qr_size = arg[0]
        elif fn == 69:
            if not arg or arg[0] not in QR_EC:
                raise EscPosError("GS ( k: QR error correction must be 48..51")
            self.qr_ec = arg[0]
        elif fn == 80:
            self.qr_data = arg[1:]  # m = 48, then the data
        elif fn == 81:
            if not self.qr_data:
                return
            q = qrcode.QRCode(box_size=self.qr_size, border=0, error_correction=QR_EC[self.qr_ec])
            q.add_data(self.qr_data)
            q.make(fit=True)
            img = q.make_image()._img.convert("L")
            self._place(img)
        else:
            raise EscPosError(f"GS ( k: QR function {fn} is not supported")

    def _cut(self, feed: int) -> None:
        self._flush_line()
        self._blank(feed)
        self._cuts.append(len(self._rows))
        self._cut_bytes.append(len(self.received))
        self._slips_cut += 1
        self._forget_old_slips()

    def _forget_old_slips(self) -> None:
        """Drop the rows and bytes of all but the last ``keep_slips`` slips."""
        if len(self._cuts) <= self.keep_slips:
            return
        rows, nbytes = self._cuts[-self.keep_slips - 1], self._cut_bytes[-self.keep_slips - 1]
        del self._rows[:rows]
        del self.received[:nbytes]
        self._cuts = [c - rows for c in self._cuts[-self.keep_slips :]]
        self._cut_bytes = [b - nbytes for b in self._cut_bytes[-self.keep_slips :]]

    # --- output -------------------------------------------------------------------------------------

    def held_bytes(self) -> int:
        """What the printer keeps of its past slips: the bytes received and the rendered rows' pixels."""
        return len(self.received) + sum(r.width * r.height for r in self._rows)

    def slips(self) -> list[Image.Image]:
        """One image per cut (the part after the last cut, if any, is the slip still in the printer)."""
        self._flush_line()
        out, start = [], 0
        for end in [*self._cuts, len(self._rows)]:
            if end > start:
                out.append(self._stack(self._rows[start:end]))
            start = end
        return out

    def _stack(self, rows: list[Image.Image]) -> Image.Image:
        margin = 16
        im = Image.new("L", (self.dots + 2 * margin, sum(r.height for r in rows) + 2 * margin), 255)
        y = margin
        for r in rows:
            im.paste(r, (margin, y))
            y += r.height
        return im.convert("1").convert("L")

    def png(self, index: int = -1) -> bytes:
        slips = self.slips()
        if not slips:
            raise KioskError("virtual printer: nothing has been printed")
        buf = io.BytesIO()
        slips[index].save(buf, format="PNG", optimize=True)
        return buf.getvalue()


def render(data: bytes, paper_mm: int = 58) -> list[Image.Image]:
    """Render an ESC/POS byte stream (e.g. a captured .bin file) to one image per slip."""
    vp = VirtualPrinter(paper_mm=paper_mm)
    vp.write(data)
    if vp._pending:
        raise EscPosError(f"the stream ends inside a command ({len(vp._pending)} bytes left over)")
    return vp.slips()


def open_virtual(paper_mm: int = 58, keep_slips: int = KEEP_SLIPS) -> Printer:
    """The virtual printer behind the same Printer the real ones use (it answers status queries);
    ``KIOSK_SIM_PRINTER_FAULT_EVERY=N`` injects a paper-out into every N-th slip (endurance runs)."""
    every = os.environ.get(FAULT_EVERY_ENV, "0").strip() or "0"
    if not every.isdigit():
        raise KioskError(f"{FAULT_EVERY_ENV}: expected a number of slips, not {every!r}")
    device = VirtualPrinter(paper_mm=paper_mm, fault_every=int(every), keep_slips=keep_slips)
    return Printer(device, answers_status=True, name="virtual")
