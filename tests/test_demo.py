"""`kiosk demo`: the whole simulated session, end to end, with the real models and photo engine."""

from __future__ import annotations

import inspect
import json
import shutil

import pytest
import zxingcpp
from PIL import Image

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.demo import LIMIT_S, DemoFailed, demo_command, run_demo
from kiosk.photo.service import PhotoTools
from kiosk.receipt.numbers import check_ok
from kiosk.samples import sample_path
from kiosk.store import Store

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full


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
    assert states[:4] == ["choose", "consent", "requirements", "guidance"]
    assert states[-3:] == ["review", "handover", "done"]
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "moon_visa"], "kiosk: demo: unknown document 'moon_visa'"),
        (["--city", "nowhere"], "kiosk: demo: id_card receipts are not issued for 'nowhere'"),
    ],
)
def test_demo_with_an_unknown_document_or_city_is_bad_input_in_one_line(tmp_path, capsys, args, message):
    assert main(["demo", *args, "--out", str(tmp_path / "out"), "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # refused before anything is built or written


def test_demo_into_an_unusable_folder_fails_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--out", str(blocker / "out"), "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"kiosk: demo: cannot create {blocker / 'out'}") and err.count("\n") == 1


@pytest.fixture
def own_face_config(tmp_path):
    """A configuration whose simulated camera shows a face of our own (a copy of the sample)."""
    face = tmp_path / "li_wei.jpg"
    shutil.copy(sample_path(), face)
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[hardware]\nsim_face = "{face}"\n')
    return load_config(path, tmp_path / "state")


def test_a_failed_demo_still_answers_in_json_and_names_the_configured_face(tmp_path, capsys, own_face_config):
    """Two simulated seconds are too few for the badly posed citizen: the session times out at the
    limit it was given, and --json says so in one object (exit 1, one line on stderr)."""
    code = demo_command(own_face_config, tmp_path / "out", as_json=True, max_sim_s=2.0)
    out, err = capsys.readouterr()
    assert code == 1
    report = json.loads(out)
    assert report["outcome"] == "timeout"
    assert report["reason"] == "no accepted photo within 2 simulated seconds"
    assert report["face"] == "li_wei.jpg" and report["compliant"] is False and report["number"] is None
    assert 2.0 <= report["sim_seconds"] < 2.5  # it stops at the limit it names
    assert [s["state"] for s in report["states"]][-1] == "idle" and report["prompts"]
    assert err == "kiosk: demo: no accepted photo within 2 simulated seconds\n"


def test_the_demo_names_the_configured_face_and_its_help_the_limit_it_stops_at(
    tmp_path, capsys, own_face_config
):
    with pytest.raises(DemoFailed):
        demo_command(own_face_config, tmp_path / "out", max_sim_s=0.5)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("kiosk demo: a simulated session on li_wei.jpg, document id_card")
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"within {LIMIT_S:g} simulated seconds" in help_text
    assert inspect.signature(run_demo).parameters["max_sim_s"].default == LIMIT_S
    assert inspect.signature(demo_command).parameters["max_sim_s"].default == LIMIT_S
