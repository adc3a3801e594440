"""Issue 13, High 2 — photos were never deleted with the default configuration: with
authority = "local" and upload = false no outbox row exists, so `kiosk store purge --days 0` deleted
nothing and every citizen's photo stayed on disk. A photo is kept from the moment nothing needs it
(the hand-over's print when nothing is uploaded; the settled upload otherwise) plus the retention, at
most STANDALONE_MAX_DAYS on a terminal that uploads nothing; a slip with a thumbnail is drawn from the
photo, so once it is purged no slip shows the face again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.receipt.authority import LocalAuthority
from kiosk.receipt.issue import issue_receipt
from kiosk.store import STANDALONE_MAX_DAYS, Store
from tests.test_receipt_support import jpeg

RASTER = b"\x1dv0"  # GS v 0: the ESC/POS raster image of the slip's photo thumbnail
DAY = 86400.0


def _kiosk(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _issue(capsys, state: Path, photo: Path, *extra: str) -> str:
    code, out, err = _kiosk(
        capsys,
        "receipt",
        "issue",
        "--profile",
        "exit_entry",  # its slip carries the photo thumbnail
        "--city",
        "shenzhen",
        "--photo",
        str(photo),
        "--json",
        f"--state-dir={state}",
        *extra,
    )
    assert code == 0, err
    return json.loads(out)["number"]


def test_default_configuration_purge_days_0_deletes_the_handed_over_photo(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    state = tmp_path / "state"
    photo = tmp_path / "p.jpg"
    photo.write_bytes(jpeg())
    number = _issue(capsys, state, photo)  # default: local authority, no upload, virtual printer
    photos = state / "photos"
    assert [p.suffix for p in photos.iterdir()] == [".jpg"]  # the slip printed: handed over

    code, out, err = _kiosk(capsys, "store", "purge", "--days", "0", "--json", f"--state-dir={state}")
    assert code == 0, err
    assert json.loads(out)["photos_deleted"] == 1 and json.loads(out)["uploading"] is False
    assert list(photos.iterdir()) == []
    with Store(state) as s:
        rec = s.number(number)
        assert rec is not None and s.photo_path(rec.session_id) is None  # the number outlives the photo
        assert s.audit_log()[-1]["action"] == "purge"

    # the slip is drawn from the photo: once it is gone, no rendering shows the face
    code, _, err = _kiosk(
        capsys,
        "receipt",
        "render",
        number,
        "-o",
        str(tmp_path / "r.png"),
        "--escpos",
        str(tmp_path / "r.bin"),
        f"--state-dir={state}",
    )
    assert code == 0, err
    assert RASTER not in (tmp_path / "r.bin").read_bytes()


def test_the_configured_retention_counts_from_the_hand_over(tmp_path):
    class Paper:
        def print_bytes(self, data: bytes) -> None:
            self.data = data

    with Store(tmp_path) as s:
        r = issue_receipt(s, LocalAuthority("001"), Paper(), "exit_entry", "shenzhen", jpeg())
        assert r.printed
        sid = s.number(r.number).session_id
        now = time.time()
        assert s.purge(3, now=now + 2 * DAY, uploading=False)["photos_deleted"] == 0
        assert s.photo_path(sid).exists()
        assert s.purge(3, now=now + 3 * DAY + 60, uploading=False)["photos_deleted"] == 1
        assert s.photo_path(sid) is None


def test_a_standalone_terminal_keeps_photos_at_most_the_maximum(tmp_path):
    class Paper:
        def print_bytes(self, data: bytes) -> None:
            pass

    with Store(tmp_path) as s:
        printed = issue_receipt(s, LocalAuthority("001"), Paper(), "exit_entry", "shenzhen", jpeg())
        unprinted = issue_receipt(s, LocalAuthority("001"), None, "exit_entry", "shenzhen", jpeg())
        sids = [s.number(r.number).session_id for r in (printed, unprinted)]
        now = time.time()
        # retention_days = 365 is capped: the printed one goes after the maximum
        assert s.purge(365, now=now + 1 * DAY, uploading=False)["photos_deleted"] == 0
        assert s.purge(365, now=now + STANDALONE_MAX_DAYS * DAY + 60, uploading=False)["photos_deleted"] == 2
        # the slip that never printed still needed it for its thumbnail, but not past the maximum
        assert all(s.photo_path(sid) is None for sid in sids)


def test_an_unprinted_slip_keeps_its_photo_until_the_hand_over(tmp_path):
    with Store(tmp_path) as s:
        r = issue_receipt(s, LocalAuthority("001"), None, "exit_entry", "shenzhen", jpeg())
        sid = s.number(r.number).session_id
        assert s.purge(0, uploading=False)["photos_deleted"] == 0  # the queued slip still needs it
        s.mark_printed(r.print_job)
        assert s.purge(0, uploading=False)["photos_deleted"] == 1
        assert s.photo_path(sid) is None


def test_an_uploading_terminal_keeps_the_photo_until_the_upload_is_settled(tmp_path):
    with Store(tmp_path) as s:
        a = LocalAuthority("001", upload=True)
        sent = issue_receipt(s, a, None, "exit_entry", "shenzhen", jpeg())
        waiting = issue_receipt(s, a, None, "exit_entry", "shenzhen", jpeg())
        sid_sent, sid_waiting = (s.number(r.number).session_id for r in (sent, waiting))
        s.mark_printed(sent.print_job)
        s.mark_printed(waiting.print_job)
        s.outbox_result(sid_sent, "rejected")
        assert s.purge(0)["photos_deleted"] == 1
        assert s.photo_path(sid_sent) is None and s.photo_path(sid_waiting).exists()
        # uploads switched off: nothing will send the waiting photo, the standalone rule applies
        assert s.purge(0, uploading=False)["photos_deleted"] == 1


def test_the_daily_timer_runs_the_purge_with_the_configuration():
    units = Path(__file__).resolve().parents[2] / "systemd"
    service = (units / "kiosk-purge.service").read_text()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert exec_start.split()[1:] == ["store", "purge"]  # the configured retention, no override
    assert "Unit=kiosk-purge.service" in (units / "kiosk-purge.timer").read_text()


@pytest.mark.parametrize("days", ["-1", "4000"])
def test_purge_days_out_of_range_is_one_line(tmp_path, capsys, days):
    code, _, err = _kiosk(capsys, "store", "purge", "--days", days, f"--state-dir={tmp_path}")
    assert code == 2 and err.count("\n") == 1 and "--days" in err
