"""Decode what citizens and phones produce into RGB uint8 arrays.

Pillow decodes (EXIF orientation, WebP, 16-bit, palette, RGBA) because it can read the header
before the pixels: a huge or bogus file is refused or draft-decoded instead of exhausting memory.
A file's size says nothing about its pixels (a 233 KB PNG holds 10950x10950 16-bit pixels): the
decode's peak memory is estimated from the header (pixels x DECODE_COST of its mode) and kept under
DECODE_BUDGET, by decoding a JPEG at 1/2..1/8 (DCT scaling) or refusing anything else.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kiosk.errors import InputError

MIN_SIDE = 64  # pixels; smaller inputs cannot hold a usable face
MAX_PIXELS = 120_000_000  # 120 MP: above any phone or camera still, below a decompression bomb
ANALYSIS_MAX_SIDE = 1280  # huge images are analysed on a downscaled copy
DECODE_BUDGET = 600 * 2**20  # bytes: the most one decode may hold at its peak (a Pi has 1-8 GB)
# peak bytes per pixel from Pillow's decoded image to our RGB array, by the file's mode: measured
# peak RSS of load_image per pixel (16 MP files: L 7, I;16 9, RGB 10, P 11, CMYK 14, RGBA/LA 23;
# WebP's decoder 7.5 more), plus a margin; tests/security/test_image_memory.py holds the line
DECODE_COST = {
    "1": 12, "L": 8, "P": 12, "I;16": 10, "I;16B": 10, "I;16L": 10, "RGB": 12, "CMYK": 16, "YCbCr": 16,
    "I": 16, "F": 16,
}  # fmt: skip
DECODE_COST_OTHER = 25  # RGBA, LA, PA ...: composited onto white through copies
FORMAT_COST = {"WEBP": 8}  # the decoder's own buffer
EXIF_COPY = 4  # bytes per pixel more when the EXIF orientation makes Pillow copy the image
EXIF_IN_HEADER = ("JPEG", "MPO", "WEBP", "TIFF")  # formats whose EXIF Pillow reads without the pixels

Image.MAX_IMAGE_PIXELS = None  # our own limit below gives a clear message instead of a warning


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow mode to RGB uint8, compositing transparency onto white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return _grey_rows(arr, lambda a: np.clip(a / peak * 255.0 + 0.5, 0, 255))
    if img.mode == "F":
        arr = np.asarray(img)
        gain = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        return _grey_rows(arr, lambda a: np.clip(a * gain, 0, 255))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if img.mode == "L":  # no 4-byte RGB image in between
        return np.repeat(np.asarray(img)[:, :, None], 3, axis=2)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))  # RGB: no copy first


def _grey_rows(arr: np.ndarray, scale: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A grey array of any depth to RGB uint8, a band of rows at a time: the float temporaries of
    ``scale`` stay small (a 120 MP 16-bit image as float64 alone was 960 MB)."""
    h, w = arr.shape[:2]
    out = np.empty((h, w, 3), np.uint8)
    band = max(1, 2**20 // max(1, w))
    for y in range(0, h, band):
        out[y : y + band] = scale(arr[y : y + band].astype(np.float32)).astype(np.uint8)[:, :, None]
    return out


def decode_cost(img: Image.Image) -> int:
    """Estimated peak bytes of decoding ``img`` (still unloaded) to an RGB array: header only."""
    w, h = img.size
    per_pixel = DECODE_COST.get(img.mode, DECODE_COST_OTHER) + FORMAT_COST.get(img.format or "", 0)
    # a PNG's EXIF may follow its pixels (Pillow's getexif would decode them): assume a rotation
    rotated = img.getexif().get(0x0112, 1) not in (1, None) if img.format in EXIF_IN_HEADER else True
    if rotated:
        per_pixel += EXIF_COPY
    return w * h * per_pixel


def draft_scale(w: int, h: int, max_side: int | None) -> int:
    """The reduction (1, 2, 4 or 8) a JPEG of w x h is draft-decoded at for ``max_side``: the
    largest that keeps its longer side >= max_side. PhotoTools.make reduces a still held in memory
    by the same factor, so a still and its JPEG are analysed alike."""
    scale = 1
    if max_side and max(w, h) > 2 * max_side:
        while scale < 8 and max(w, h) // (scale * 2) >= max_side:
            scale *= 2
    return scale


def _within_budget(img: Image.Image, name: str, max_side: int | None) -> None:
    """Draft a JPEG down until its decode fits DECODE_BUDGET (also to ~max_side when asked);
    refuse any other image whose decode would not fit."""
    w, h = img.size
    cost = decode_cost(img)
    scale = 1
    if img.format == "JPEG":
        scale = draft_scale(w, h, max_side)
        while scale < 8 and cost // (scale * scale) > DECODE_BUDGET:
            scale *= 2
        if scale > 1:
            img.draft("RGB", (w // scale, h // scale))  # Pillow picks 1/scale exactly for these
    if cost // (scale * scale) > DECODE_BUDGET:
        most = DECODE_BUDGET // (cost // (w * h)) // 1_000_000
        raise InputError(
            f"{name}: image too large to decode ({w}x{h} {img.mode}; at most about {most} MP of this kind)"
        )


def load_image(source: str | Path | bytes, max_side: int | None = None) -> np.ndarray:
    """Decode a file or bytes to an RGB uint8 array, EXIF orientation applied.

    ``max_side`` lets JPEG decoding use DCT scaling (draft mode) for speed; the result may be
    larger than max_side but never smaller. A JPEG whose full decode would exceed DECODE_BUDGET is
    decoded reduced (the result is then smaller than the file: callers scale by its shape); anything
    else over the budget is refused. Raises InputError with a one-line reason.
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    with fh:
        try:
            img = Image.open(fh)
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise InputError(f"{name}: image too large ({w}x{h} pixels)")
            if min(w, h) < MIN_SIDE:
                raise InputError(f"{name}: image too small ({w}x{h}; at least {MIN_SIDE} px per side)")
            _within_budget(img, name, max_side)
            img = ImageOps.exif_transpose(img)
            arr = _to_rgb8(img)
        except InputError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError):
            raise InputError(f"{name}: not an image or an unsupported format") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InputError(f"{name}: corrupt or truncated image ({exc})") from None
    return np.ascontiguousarray(arr)


def original_size(source: str | Path | bytes) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only."""
    fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    with fh:
        img = Image.open(fh)
        w, h = img.size
        orientation = img.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mjpeg", ".mjpg"}


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
