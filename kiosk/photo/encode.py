"""JPEG at the profile's dpi inside its file-size range, found by searching the encoder's quality
and chroma subsampling — never by padding bytes; a range that cannot be met is refused."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from kiosk.errors import KioskError

QUALITY_MIN = 30  # below this JPEG blocks show on a face; refusing is better than a blocky photo
QUALITY_MAX = 100
SUBSAMPLINGS = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}  # Pillow's codes


class EncodeError(KioskError):
    """The photo cannot be encoded inside the profile's file-size range."""


@dataclass
class Encoded:
    data: bytes
    quality: int
    subsampling: str
    psnr: float  # dB against the uncompressed photo

    def to_json(self) -> dict:
        return {
            "bytes": len(self.data),
            "quality": self.quality,
            "subsampling": self.subsampling,
            "psnr_db": round(self.psnr, 2),
        }


def jpeg_bytes(rgb: np.ndarray, quality: int, subsampling: int, dpi: int | None) -> bytes:
    """Baseline JFIF without EXIF (no camera metadata leaves the kiosk), Huffman-optimised."""
    buf = io.BytesIO()
    kwargs = {"dpi": (dpi, dpi)} if dpi else {}
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling, optimize=True, **kwargs)
    return buf.getvalue()


def _psnr(rgb: np.ndarray, data: bytes) -> float:
    dec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    mse = float(((dec - rgb.astype(np.float32)) ** 2).mean())
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def encode_in_range(rgb: np.ndarray, min_bytes: int, max_bytes: int, dpi: int | None) -> Encoded:
    """Per subsampling, the highest quality whose file fits under max_bytes (binary search; JPEG
    size grows with quality); of those at or above min_bytes, the one closest to the original."""
    if min_bytes > max_bytes:
        raise EncodeError(f"empty file-size range {min_bytes}..{max_bytes} bytes")
    best: Encoded | None = None
    smallest = largest = None
    for code, label in SUBSAMPLINGS.items():
        cache: dict[int, bytes] = {}

        def enc(q: int, code: int = code, cache: dict = cache) -> bytes:
            if q not in cache:
                cache[q] = jpeg_bytes(rgb, q, code, dpi)
            return cache[q]

        lo_size, hi_size = len(enc(QUALITY_MIN)), len(enc(QUALITY_MAX))
        smallest = lo_size if smallest is None else min(smallest, lo_size)
        largest = hi_size if largest is None else max(largest, hi_size)
        if lo_size > max_bytes or hi_size < min_bytes:
            continue
        lo, hi = QUALITY_MIN, QUALITY_MAX  # invariant: size(lo) <= max_bytes
        if hi_size <= max_bytes:
            lo = hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if len(enc(mid)) <= max_bytes:
                lo = mid
            else:
                hi = mid
        # size is not strictly monotonic in quality: take the best fitting quality seen
        fits = [q for q, b in cache.items() if min_bytes <= len(b) <= max_bytes]
        if not fits:
            continue
        q = max(fits)
        cand = Encoded(cache[q], q, label, _psnr(rgb, cache[q]))
        if best is None or cand.psnr > best.psnr:
            best = cand
    if best is None:
        raise EncodeError(
            f"cannot encode a {rgb.shape[1]}x{rgb.shape[0]} JPEG within {min_bytes}..{max_bytes} bytes "
            f"(quality {QUALITY_MIN}..{QUALITY_MAX} gives {smallest}..{largest} bytes)"
        )
    return best
