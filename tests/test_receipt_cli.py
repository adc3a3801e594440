"""The receipt, platform and store commands: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json

import pytest
import zxingcpp
from PIL import Image

from kiosk.cli import main
from tests.test_receipt_support import jpeg


def _run(capsys, *argv):
    # global options go after the subcommand: each subparser has its own --state-dir/--config
    opts = [a for a in argv if a.startswith("--state-dir=") or a.startswith("--config=")]
    rest = [a for a in argv if a not in opts]
    code = main(rest + opts)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "photo.jpg"
    p.write_bytes(jpeg())
    return p


def test_issue_list_verify_reprint_render(tmp_path, capsys, photo):
    st = [f"--state-dir={tmp_path / 'state'}"]
    code, out, _ = _run(
        capsys,
        *st,
        "receipt",
        "issue",
        "--profile",
        "exit_entry",
        "--city",
        "东莞市",
        "--photo",
        str(photo),
        "--json",
        "--png",
        str(tmp_path / "slip.png"),
    )
    assert code == 0
    issued = json.loads(out)
    number = issued["number"]
    assert issued["printed"] and issued["city"] == "dongguan"
    assert {r.text for r in zxingcpp.read_barcodes(Image.open(tmp_path / "slip.png"))} == {number}

    code, out, _ = _run(capsys, *st, "receipt", "list", "--json")
    rows = json.loads(out)["receipts"]
    assert code == 0 and [r["number"] for r in rows] == [number] and rows[0]["printed"]

    code, out, _ = _run(capsys, *st, "receipt", "verify", number, "--json")
    v = json.loads(out)
    assert (
        code == 0
        and v["valid"]
        and v["in_store"]
        and v["profile"] == "exit_entry"
        and v["region"] == "441900"
    )

    code, out, _ = _run(capsys, *st, "receipt", "reprint", number, "--png", str(tmp_path / "again.png"))
    assert code == 0 and "reprinted" in out

    code, out, _ = _run(
        capsys,
        *st,
        "receipt",
        "render",
        number,
        "-o",
        str(tmp_path / "r.png"),
        "--paper",
        "80",
        "--escpos",
        str(tmp_path / "r.bin"),
    )
    im = Image.open(tmp_path / "r.png")
    assert code == 0 and im.width == 576 + 32
    assert {r.text for r in zxingcpp.read_barcodes(im)} == {number}
    assert (tmp_path / "r.bin").read_bytes().startswith(b"\x1b@")

    code, out, _ = _run(capsys, *st, "store", "purge", "--json")
    assert code == 0 and json.loads(out)["photos_deleted"] == 0  # not uploaded yet: the photo stays


@pytest.mark.parametrize(
    "argv,message",
    [
        (["receipt", "verify", "1440300001261125000018"], "check character"),
        (["receipt", "verify", "hello"], "not an image number"),
        (["receipt", "reprint", "1440300001261125000019"], "no issued number"),
        (
            ["receipt", "issue", "--profile", "passport", "--city", "shenzhen", "--photo", "PHOTO"],
            "unknown document",
        ),
        (
            ["receipt", "issue", "--profile", "id_card", "--city", "atlantis", "--photo", "PHOTO"],
            "unknown city",
        ),
        (
            ["receipt", "issue", "--profile", "id_card", "--city", "shenzhen", "--photo", "/nonexistent.jpg"],
            "No such file",
        ),
        (
            ["receipt", "issue", "--profile", "id_card", "--city", "shenzhen", "--photo", "CORRUPT"],
            "readable JPEG",
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys, photo, argv, message):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    argv = [str(photo) if a == "PHOTO" else str(corrupt) if a == "CORRUPT" else a for a in argv]
    code, out, err = _run(capsys, f"--state-dir={tmp_path / 'state'}", *argv)
    assert code != 0 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_config_receipt_keys_are_validated(tmp_path, capsys):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[receipt]\npaper_mm = 70\n")
    code, _, err = _run(capsys, f"--config={cfg}", f"--state-dir={tmp_path}", "receipt", "list")
    assert code == 2 and "receipt.paper_mm" in err
    cfg.write_text('[receipt]\nstation = "1"\n')
    code, _, err = _run(capsys, f"--config={cfg}", f"--state-dir={tmp_path}", "receipt", "list")
    assert code == 2 and "receipt.station" in err


def test_receipt_service_hand_over_recover_and_cities(tmp_path):
    from kiosk.config import load_config
    from kiosk.receipt.wiring import ReceiptService, cities_for
    from kiosk.station import printer_from_config

    cfg = load_config(None, tmp_path)
    svc = ReceiptService(cfg, printer=printer_from_config(cfg))
    try:
        assert svc.ready() is None and svc.recover()["abandoned"] == 0
        out = svc.hand_over(jpeg(), "driving_licence", "shenzhen")
        assert out["printed"] and svc.store.number(out["number"]) is not None
        assert {r.text for r in zxingcpp.read_barcodes(svc.printer.device.slips()[-1])} == {out["number"]}
        assert svc.reprint(out["number"]) is None
    finally:
        svc.close()
    assert [c["id"] for c in cities_for("driving_licence")] == ["shenzhen", "guangzhou", "dongguan"]
    assert len(cities_for("id_card")) == 21  # every prefecture-level city of Guangdong (issue 17)
