"""Issue 13, item 11 — images under the pixel cap were decoded at full size: a 233 KB PNG of
10950x10950 16-bit pixels peaked at 3.1 GB (float64 conversion of 120 MP). Now the decode's peak is
estimated from the header and kept under DECODE_BUDGET (600 MiB): a JPEG is decoded reduced (DCT
scaling), anything else that would not fit is refused in one line. Peaks are measured as the rise
of a fresh process's peak RSS (VmHWM) around one `load_image`."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiosk.vision.imageio import DECODE_BUDGET, decode_cost

# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
CHILD = """
import json, sys
from kiosk.errors import InputError
from kiosk.vision.imageio import load_image

def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak starts again from here
base = kib("VmRSS")
try:
    out = {"shape": list(load_image(sys.argv[1]).shape)}
except InputError as exc:
    out = {"error": str(exc)}
out["peak"] = (kib("VmHWM") - base) * 1024
print(json.dumps(out))
"""


def flat_png(path: Path, w: int, h: int, depth: int = 16, color: int = 0) -> Path:
    """A PNG of w x h black pixels written row by row: kilobytes on disk, any size decoded."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    row = b"\0" + bytes(w * channels * depth // 8)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(6)
    pixels = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    head = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    png = chunk(b"IHDR", head) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png)
    return path


def decode_in_child(path: Path) -> dict:
    cmd = [sys.executable, "-c", CHILD, str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_a_233_kb_png_of_120_megapixels_is_refused_without_decoding(tmp_path):
    path = flat_png(tmp_path / "bomb.png", 10950, 10950)
    assert path.stat().st_size < 300_000
    result = decode_in_child(path)
    assert result["peak"] <= DECODE_BUDGET, f"peak {result['peak'] / 2**20:.0f} MiB"
    assert "image too large to decode" in result["error"] and "\n" not in result["error"]


@pytest.mark.slow
def test_an_80_megapixel_jpeg_is_decoded_reduced_within_the_budget(tmp_path):
    w, h = 10000, 8000
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[::7] = 200
    rgb[:, ::5, 1] = 90
    Image.fromarray(rgb).save(tmp_path / "big.jpg", quality=85)
    del rgb
    result = decode_in_child(tmp_path / "big.jpg")
    assert result["peak"] <= DECODE_BUDGET, f"peak {result['peak'] / 2**20:.0f} MiB"
    assert result["shape"] == [h // 2, w // 2, 3]


def _gradient(w: int, h: int, channels: int) -> np.ndarray:
    ramp = (np.arange(w, dtype=np.uint16) * 255 // w).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (h, w, channels)))


KINDS = {  # file -> how it is made (3000 x 3000, 9 MP)
    "l.png": lambda g: Image.fromarray(g(1)[:, :, 0]),
    "rgb.png": lambda g: Image.fromarray(g(3)),
    "rgba.png": lambda g: Image.fromarray(g(4)),
    "p.png": lambda g: Image.fromarray(g(3)).convert("P"),
    "rgb.jpg": lambda g: Image.fromarray(g(3)),
    "cmyk.jpg": lambda g: Image.fromarray(g(3)).convert("CMYK"),
    "rgb.webp": lambda g: Image.fromarray(g(3)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [*KINDS, "g16.png"])
def test_the_cost_model_covers_the_measured_peak(tmp_path, name):
    """decode_cost (what the budget is checked against) is at least what a decode really takes."""
    side = 3000
    path = tmp_path / name
    if name == "g16.png":
        flat_png(path, side, side)
    else:
        KINDS[name](lambda c: _gradient(side, side, c)).save(path)
    with Image.open(path) as img:
        estimate = decode_cost(img)
    result = decode_in_child(path)
    assert result["shape"] == [side, side, 3]
    assert result["peak"] <= estimate, f"{name}: {result['peak'] / side**2:.1f} bytes/pixel measured"
