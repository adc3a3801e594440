"""Shared helpers of the store/receipt/printer tests: a small real JPEG, QR payloads in ESC/POS bytes."""

from __future__ import annotations

import io
import re

from PIL import Image

QR_STORE = re.compile(rb"\x1d\(k(..)1P0", re.S)


def jpeg(w: int = 90, h: int = 110, shade: int = 200) -> bytes:
    im = Image.new("RGB", (w, h), (shade, shade, shade))
    for y in range(h // 4, h // 2):
        for x in range(w // 3, 2 * w // 3):
            im.putpixel((x, y), (120, 90, 80))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def qr_payloads(data: bytes) -> list[str]:
    """Numbers sent to the printer as QR codes (GS ( k 1 P 0 data), in order; cut-off ones are skipped."""
    out = []
    for m in QR_STORE.finditer(data):
        n = m.group(1)[0] | m.group(1)[1] << 8
        payload = data[m.end() : m.start() + 5 + n]
        if len(payload) == n - 3:
            out.append(payload.decode("ascii"))
    return out


def slips_on_paper(data: bytes) -> list[tuple[bool, list[str]]]:
    """Split a printer's byte log at each ESC @ (a new job): (marked as reprint?, QR numbers) per slip."""
    mark = "补打".encode("gb18030")
    out = []
    for part in data.split(b"\x1b@")[1:]:
        out.append((mark in part, qr_payloads(part)))
    return out
