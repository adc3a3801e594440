"""`kiosk demo`: the whole simulated session, end to end, with the real models and photo engine."""

from __future__ import annotations

import json

import zxingcpp
from PIL import Image

from kiosk.cli import main
from kiosk.photo.service import PhotoTools
from kiosk.receipt.numbers import check_ok
from kiosk.store import Store


def test_demo_guides_a_badly_posed_unevenly_lit_citizen_to_a_compliant_photo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--json", "--out", str(out), "--state-dir", str(tmp_path / "state")]) == 0
    report = json.loads(capsys.readouterr().out)
    ids = [p["id"] for p in report["prompts"]]
    # the sample starts too far, off-centre, tilted, turned and smiling: guided in priority order
    order = ["come_closer", "move_left", "straighten_head", "face_camera", "close_mouth", "perfect"]
    positions = [ids.index(p) for p in order]
    assert positions == sorted(positions)
    assert all(p["zh"] and p["en"] for p in report["prompts"])
    states = [s["state"] for s in report["states"]]
    assert states[:3] == ["choose", "consent", "guidance"] and states[-3:] == ["review", "handover", "done"]
    assert report["compliant"] is True
    assert report["lights"]["right"] > report["lights"]["left"]  # the ambient light came from the left
    light = report["lighting"]
    assert (
        light["first_balance"] > 0.1 and light["converged_s"] < 1.0 and abs(light["capture_balance"]) < 0.08
    )
    photo = out / "photo.jpg"
    assert report["photo"] == str(photo)
    with Image.open(photo) as im:
        assert im.format == "JPEG" and im.size == (358, 441)
    # an independent re-check of the written file by the photo engine
    check = PhotoTools().check(photo, "id_card")
    assert check.compliant, check.failures()
    # the receipt: a valid number, committed in the demo's own store, and a slip whose barcode and
    # QR code (decoded from the PNG the virtual printer rendered from the raw ESC/POS) carry it
    number = report["number"]
    assert check_ok(number) and report["handover"]["printed"] is True
    with Store(out / "state") as store:
        assert store.number(number).city == report["city"]
    escpos = (out / "slip.escpos").read_bytes()
    assert b"\x1b@" in escpos and b"\x1dV" in escpos and number.encode() in escpos  # init, text, cut
    with Image.open(out / "slip.png") as slip:
        codes = {r.format.name: r.text for r in zxingcpp.read_barcodes(slip.convert("L"))}
    assert codes.get("Code128") == number and codes.get("QRCode") == number


def test_demo_with_an_unknown_document_fails_in_one_line(tmp_path, capsys):
    assert main(["demo", "--profile", "moon_visa", "--out", str(tmp_path), "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kiosk: demo: unknown document 'moon_visa'") and err.count("\n") == 1


def test_demo_into_an_unusable_folder_fails_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--out", str(blocker / "out"), "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"kiosk: demo: cannot create {blocker / 'out'}") and err.count("\n") == 1
