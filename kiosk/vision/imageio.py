"""Decode what citizens and phones produce into RGB uint8 arrays.

Pillow decodes (EXIF orientation, WebP, 16-bit, palette, RGBA) because it can read the header
before the pixels: a huge or bogus file is refused or draft-decoded instead of exhausting memory.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kiosk.errors import InputError

MIN_SIDE = 64  # pixels; smaller inputs cannot hold a usable face
MAX_PIXELS = 120_000_000  # 120 MP: above any phone or camera still, below a decompression bomb
ANALYSIS_MAX_SIDE = 1280  # huge images are analysed on a downscaled copy

Image.MAX_IMAGE_PIXELS = None  # our own limit below gives a clear message instead of a warning


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow mode to RGB uint8, compositing transparency onto white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        grey = np.clip(arr * (255.0 if arr.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def load_image(source: str | Path | bytes, max_side: int | None = None) -> np.ndarray:
    """Decode a file or bytes to an RGB uint8 array, EXIF orientation applied.

    ``max_side`` lets JPEG decoding use DCT scaling (draft mode) for speed; the result may be
    larger than max_side but never smaller. Raises InputError with a one-line reason.
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
            if max_side and img.format == "JPEG" and max(w, h) > 2 * max_side:
                img.draft("RGB", (max(1, w * max_side // max(w, h)), max(1, h * max_side // max(w, h))))
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
