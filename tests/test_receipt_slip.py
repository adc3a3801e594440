"""Slips through the virtual printer: the barcode and QR code decoded from the PNG match the store."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from kiosk.receipt.authority import LocalAuthority
from kiosk.receipt.issue import issue_receipt, reprint
from kiosk.receipt.layouts import load_layouts, parse_layouts
from kiosk.sim.printer import EscPosError, render
from kiosk.station import open_printer
from kiosk.store import Store
from tests.test_receipt_support import jpeg


def _decoded(im: Image.Image) -> dict[str, str]:
    return {r.format.name: r.text for r in zxingcpp.read_barcodes(im)}


@pytest.mark.parametrize("paper_mm", [58, 80])
@pytest.mark.parametrize(
    "profile,city",
    [
        ("id_card", "shenzhen"),
        ("social_security", "guangzhou"),
        ("driving_licence", "dongguan"),
        ("exit_entry", "foshan"),
    ],
)
def test_barcode_and_qr_on_the_rendered_slip_are_the_stored_number(tmp_path, profile, city, paper_mm):
    printer = open_printer("virtual", paper_mm=paper_mm)
    with Store(tmp_path) as s:
        r = issue_receipt(s, LocalAuthority("001"), printer, profile, city, jpeg(), paper_mm=paper_mm)
        assert r.printed and s.print_job(r.print_job).state == "printed"
        stored = s.number(r.number)
    slip = Image.open(io.BytesIO(printer.device.png()))
    assert slip.width == {58: 384, 80: 576}[paper_mm] + 32
    codes = _decoded(slip)
    assert codes == {"Code128": stored.number, "QRCode": stored.number}


def test_layouts_differ_by_document_and_city(tmp_path):
    lay = load_layouts()
    sz, gz = lay.layout("id_card", "shenzhen"), lay.layout("id_card", "guangzhou")
    assert sz.number_label != gz.number_label and sz.blocks != gz.blocks
    assert lay.layout("exit_entry", "guangzhou").title != gz.title
    printer = open_printer("virtual")
    with Store(tmp_path) as s:
        a = LocalAuthority("001")
        issue_receipt(s, a, printer, "id_card", "shenzhen", jpeg())
        issue_receipt(s, a, printer, "id_card", "guangzhou", jpeg())
    with_thumb, without = printer.device.slips()
    # the Shenzhen ID-card slip carries the dithered photo: it is longer and darker
    assert with_thumb.height > without.height + 100


def test_reprint_is_marked_and_decodes_to_the_same_number(tmp_path):
    printer = open_printer("virtual")
    with Store(tmp_path) as s:
        a = LocalAuthority("001")
        r = issue_receipt(s, a, printer, "social_security", "foshan", jpeg())
        assert reprint(s, printer, r.number, a.tz) is None
        jobs = s.print_jobs(r.number)
        assert [j.reprint for j in jobs] == [False, True] and all(j.state == "printed" for j in jobs)
        assert s.audit_log()[-1]["action"] == "reprint"
    original, again = printer.device.slips()
    assert _decoded(again) == _decoded(original) == {"Code128": r.number, "QRCode": r.number}
    assert "补打".encode("gb18030") in bytes(printer.device.received)
    assert again.height > original.height  # the reprint marks add lines at top and bottom


def test_chinese_text_is_sent_in_gb18030():
    printer = open_printer("virtual")
    with Store_tmp() as (s, _):
        issue_receipt(s, LocalAuthority("001"), printer, "id_card", "guangzhou", jpeg())
    raw = bytes(printer.device.received)
    assert b"\x1c\x26" in raw  # FS &: Chinese mode
    assert "居民身份证数字相片采集回执".encode("gb18030") in raw
    assert "广州市".encode("gb18030") in raw and "广州市".encode() not in raw


class Store_tmp:  # noqa: N801 - a tiny context manager for a throwaway store
    def __enter__(self):
        import tempfile

        self.dir = tempfile.TemporaryDirectory()
        self.store = Store(self.dir.name)
        return self.store, self.dir.name

    def __exit__(self, *exc):
        self.store.close()
        self.dir.cleanup()


def test_virtual_printer_rejects_unknown_commands_and_truncated_streams():
    with pytest.raises(EscPosError, match="ESC 0x7f"):
        render(b"\x1b@\x1b\x7f")
    with pytest.raises(EscPosError, match="ends inside"):
        render(b"\x1b@\x1dv0\x00\x10\x00\x10\x00" + b"\x00" * 20)


@pytest.mark.parametrize(
    "profile,city,photo,match",
    [
        ("passport", "shenzhen", None, "unknown document"),
        ("id_card", "atlantis", None, "unknown city"),
        ("driving_licence", "foshan", None, "not served"),
        ("id_card", "shenzhen", b"", "empty"),
        ("id_card", "shenzhen", b"\xff\xd8garbage" * 10, "not a readable JPEG"),
        ("id_card", "shenzhen", b"\xff" * (3 * 1024 * 1024), "at most"),
        ("id_card", "shenzhen", jpeg(400, 500)[:3000], "not a readable JPEG"),
    ],
)
def test_malformed_inputs_are_refused_before_anything_is_stored(tmp_path, profile, city, photo, match):
    from kiosk.errors import InputError

    with Store(tmp_path) as s:
        with pytest.raises(InputError, match=match):
            issue_receipt(s, LocalAuthority("001"), None, profile, city, jpeg() if photo is None else photo)
        assert s.numbers() == [] and list(s.photo_dir.iterdir()) == []


def test_layout_schema_names_the_bad_key():
    from kiosk.receipt.layouts import LayoutError

    base = {"schema_version": 1, "cities": {"x": {"name": {"zh": "X", "en": "X"}, "region": "440300"}}}
    slip = {
        "title": "t",
        "number_label": "n",
        "validity_days": 30,
        "use_at": "u",
        "note": "",
        "qr": "{number}",
        "thumbnail": False,
        "blocks": ["number"],
    }
    parse_layouts({**base, "slips": {"id_card": slip}})
    with pytest.raises(LayoutError, match="slips.id_card.blocks"):
        parse_layouts({**base, "slips": {"id_card": {**slip, "blocks": ["title", "fireworks"]}}})
    with pytest.raises(LayoutError, match="slips.id_card.city.y"):
        parse_layouts({**base, "slips": {"id_card": {**slip, "city": {"y": {"title": "z"}}}}})
    with pytest.raises(LayoutError, match="validity_days"):
        parse_layouts({**base, "slips": {"id_card": {**slip, "validity_days": "soon"}}})
