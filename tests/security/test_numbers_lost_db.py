"""Issue 13, High 4 — a lost database reissued numbers: after the database file was emptied,
`receipt issue` handed out a number already issued that day. A high-water mark of every series and
the count of numbers ever issued are kept outside the database (written durably before a number is
handed out); a store that is missing, empty or behind them refuses to issue until a technician
acknowledges it on the console (audited), and numbers then continue past the marks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.receipt.authority import LocalAuthority
from kiosk.receipt.issue import issue_receipt
from kiosk.receipt.numbers import parse
from kiosk.receipt.wiring import ReceiptService
from kiosk.store import DB_NAME, MARKS_NAME, Store, StoreLost
from tests.test_receipt_support import jpeg


def _issue(capsys, state: Path, photo: Path) -> tuple[int, str, str]:
    code = main(
        ["receipt", "issue", "--profile", "id_card", "--city", "shenzhen", "--photo", str(photo)]
        + ["--json", f"--state-dir={state}"]
    )
    out, err = capsys.readouterr()
    return code, out, err


def _lose_database(state: Path, how: str) -> None:
    db = state / DB_NAME
    for side in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        side.unlink(missing_ok=True)
    if how == "emptied":
        db.write_bytes(b"")
    else:
        db.unlink()


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "p.jpg"
    p.write_bytes(jpeg())
    return p


@pytest.mark.parametrize("how", ["emptied", "deleted"])
def test_a_lost_database_refuses_to_issue_and_never_reissues(tmp_path, capsys, photo, how):
    state = tmp_path / "state"
    code, out, err = _issue(capsys, state, photo)
    assert code == 0, err
    first = json.loads(out)["number"]
    marks = json.loads((state / MARKS_NAME).read_text())
    assert marks["total"] == 1 and marks["series"] == {parse(first).series: 1}

    _lose_database(state, how)
    code, out, err = _issue(capsys, state, photo)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "acknowledge" in err and "Traceback" not in err
    with Store(state) as s:
        assert s.numbers() == []  # nothing was committed either

    # the service says it before a citizen starts, in the citizen's words
    cfg = load_config(None, state)
    svc = ReceiptService(cfg, printer=None)  # type: ignore[arg-type]
    try:
        assert svc.ready() is not None and "窗口" in svc.ready()[0]
        result = svc.acknowledge_loss("console")
    finally:
        svc.close()
    assert result["result"] == "acknowledged"

    code, out, err = _issue(capsys, state, photo)
    assert code == 0, err
    second = json.loads(out)["number"]
    assert second != first and parse(second).seq == 2
    with Store(state) as s:
        acks = [r for r in s.audit_log() if r["action"] == "store_loss_acknowledged"]
        assert len(acks) == 1 and acks[0]["actor"] == "console"


def test_a_database_restored_from_an_older_copy_is_behind_the_marks(tmp_path):
    with Store(tmp_path / "a") as s:
        issue_receipt(s, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg())
    shutil.copytree(tmp_path / "a", tmp_path / "backup")
    with Store(tmp_path / "a") as s:
        second = issue_receipt(s, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg()).number
    # the backup's database, with today's marks: number 2 would come again
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        (tmp_path / "a" / name).unlink(missing_ok=True)
        if (tmp_path / "backup" / name).exists():
            shutil.copy(tmp_path / "backup" / name, tmp_path / "a" / name)
    with Store(tmp_path / "a") as s:
        assert s.numbers() and s.lost() is not None
        with pytest.raises(StoreLost, match="acknowledge"):
            issue_receipt(s, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg())
        s.acknowledge_loss("console")
        third = issue_receipt(s, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg()).number
    assert parse(third).seq == 3 and third != second


def test_photos_of_earlier_numbers_are_evidence_too(tmp_path):
    with Store(tmp_path) as s:
        issue_receipt(s, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg())
    (tmp_path / MARKS_NAME).unlink()  # the mark gone as well: the photo still says records existed
    _lose_database(tmp_path, "deleted")
    with Store(tmp_path) as s:
        with pytest.raises(StoreLost, match="photo"):
            issue_receipt(s, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg())


def test_nothing_to_acknowledge_on_a_sound_store(tmp_path):
    with Store(tmp_path) as s:
        issue_receipt(s, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg())
        assert s.lost() is None
        with pytest.raises(Exception, match="nothing to acknowledge"):
            s.acknowledge_loss("console")


@pytest.mark.slow
def test_the_technician_acknowledges_on_the_console(tmp_path):
    from tests.test_console_pty import Rig

    rig = Rig(tmp_path, with_status=False, idle_timeout_s=60.0, start=False)
    try:
        issue_receipt(rig.store, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg())
        with rig.store.transaction() as db:  # every record gone, the file still there
            for table in ("print_jobs", "photos", "outbox", "numbers", "sessions", "counters", "audit"):
                db.execute(f"DELETE FROM {table}")
        rig.ctx.acknowledge_loss = rig.store.acknowledge_loss
        rig.thread.start()
        t = rig.term
        t.line("")
        t.login()
        out = t.run("status")
        assert "REFUSED" in out
        t.line("store acknowledge-loss")
        t.expect("type yes to confirm: ")
        t.line("yes")
        t.expect(r"acknowledged.*\n")
        t.expect("kiosk> ")
        assert "issuing" in t.run("status")
        again = issue_receipt(rig.store, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg())
        assert parse(again.number).seq == 2
        acks = [r for r in rig.store.audit_log() if r["action"] == "store_loss_acknowledged"]
        assert len(acks) == 1 and acks[0]["actor"] == "console"
    finally:
        rig.close()
