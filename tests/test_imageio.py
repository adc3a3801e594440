"""Decoding what phones produce, and refusing what cannot be a photo."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kiosk.errors import InputError
from kiosk.samples import sample_path
from kiosk.vision.analyzer import analyze_file
from kiosk.vision.imageio import load_image, original_size


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def sample_pil() -> Image.Image:
    return Image.open(sample_path()).convert("RGB")


def test_exif_orientation_is_applied(sample_pil, analyzer):
    """A phone stores the sensor's pixels sideways plus an orientation tag; we must see it upright."""
    sideways = sample_pil.transpose(Image.Transpose.ROTATE_90).resize((512, 400))  # counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = _encode(sideways, "JPEG", exif=exif.tobytes(), quality=92)
    rgb = load_image(data)
    assert rgb.shape[:2] == (512, 400)
    assert original_size(data) == (400, 512)
    analysis, _ = analyze_file(analyzer, data)
    assert len(analysis.faces) == 1
    assert abs(analysis.faces[0].pose.roll) < 10  # upright, not lying on its side


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA"])
def test_modes_decode_to_rgb8_and_keep_the_face(sample_pil, analyzer, mode):
    if mode == "I;16":
        grey = np.asarray(sample_pil.convert("L"), dtype=np.uint16) * 257
        img = Image.fromarray(grey)
    elif mode == "P":
        img = sample_pil.convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        img = sample_pil.convert(mode)
    rgb = load_image(_encode(img, "PNG"))
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3)
    analysis, _ = analyze_file(analyzer, _encode(img, "PNG"))
    assert len(analysis.faces) == 1


def test_sixteen_bit_scale_is_preserved(sample_pil):
    grey8 = np.asarray(sample_pil.convert("L"))
    img16 = Image.fromarray(grey8.astype(np.uint16) * 257)
    rgb = load_image(_encode(img16, "PNG"))
    assert np.abs(rgb[:, :, 0].astype(int) - grey8).max() <= 1


def test_rgba_transparency_becomes_white():
    img = Image.new("RGBA", (100, 100), (10, 20, 30, 0))
    rgb = load_image(_encode(img, "PNG"))
    assert (rgb == 255).all()


def test_webp(sample_pil, analyzer):
    analysis, _ = analyze_file(analyzer, _encode(sample_pil, "WEBP", quality=85))
    assert len(analysis.faces) == 1


def test_huge_image_is_analysed_downscaled_with_full_size_coordinates(sample_pil, analyzer):
    small, _ = analyze_file(analyzer, _encode(sample_pil, "PNG"))
    big_img = sample_pil.resize((3072, 3072), Image.Resampling.BICUBIC)
    big, analysed = analyze_file(analyzer, _encode(big_img, "JPEG", quality=90))
    assert max(analysed.shape[:2]) <= analyzer.config.analysis_max_side
    assert (big.width, big.height) == (3072, 3072)
    assert big.scale < 0.5
    a, b = small.faces[0], big.faces[0]
    assert np.allclose(np.array(b.box) / 6, a.box, atol=2.5)
    assert b.inter_eye_distance == pytest.approx(6 * a.inter_eye_distance, rel=0.05)
    assert np.median(np.abs(b.landmarks[:, :2] / 6 - a.landmarks[:, :2])) < 1.0


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "not an image"),
        (b"hello, I am text\n" * 20, "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "corrupt"),
    ],
)
def test_garbage_is_refused_with_one_line(data, reason):
    with pytest.raises(InputError) as info:
        load_image(data)
    assert "\n" not in str(info.value)


def test_truncated_jpeg_is_refused(sample_pil):
    data = _encode(sample_pil, "JPEG", quality=90)
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(data[: len(data) // 3])


def test_tiny_image_is_refused():
    with pytest.raises(InputError, match="too small"):
        load_image(_encode(Image.new("RGB", (40, 300)), "PNG"))


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_image(tmp_path / "absent.jpg")


def test_sixteen_bit_colour_png(sample_rgb, analyzer, tmp_path):
    import cv2

    path = tmp_path / "scan16.png"
    cv2.imwrite(str(path), cv2.cvtColor(sample_rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    rgb = load_image(path)
    assert rgb.dtype == np.uint8 and np.abs(rgb.astype(int) - sample_rgb).max() <= 1
    analysis, _ = analyze_file(analyzer, path)
    assert len(analysis.faces) == 1
