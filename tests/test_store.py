"""The store: WAL, schema migrations, records committed together, retention purge."""

from __future__ import annotations

import hashlib
import sqlite3
import time

import pytest

from kiosk.receipt.authority import LocalAuthority
from kiosk.receipt.issue import issue_receipt
from kiosk.store import DB_NAME, MIGRATIONS, SCHEMA_VERSION, Store, StoreError
from tests.test_receipt_support import jpeg


def test_wal_and_schema_version(tmp_path):
    with Store(tmp_path) as s:
        assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert s.schema_version == SCHEMA_VERSION


def test_migrates_a_version_1_database_keeping_its_rows(tmp_path):
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO sessions VALUES ('s1', 'id_card', 'shenzhen', '001', 1.0, NULL, NULL)")
    db.execute("INSERT INTO numbers VALUES ('N1', 's1', 'id_card', 'shenzhen', '001', 'local', 'S', 1, 1.0)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with Store(tmp_path) as s:
        assert s.schema_version == SCHEMA_VERSION
        rec = s.number("N1")
        assert rec is not None and rec.review == "none" and rec.session_id == "s1"
        assert s.outbox() == []


def test_refuses_a_database_from_newer_firmware(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path)


def test_issue_commits_number_photo_and_job_together(tmp_path):
    photo = jpeg()
    with Store(tmp_path) as s:
        r = issue_receipt(s, LocalAuthority("001", upload=True), None, "id_card", "shenzhen", photo)
        rec = s.number(r.number)
        assert rec is not None and rec.seq == 1 and rec.city == "shenzhen"
        path = s.photo_path(rec.session_id)
        assert (
            path is not None and hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(photo).digest()
        )
        jobs = s.print_jobs(r.number)
        assert [j.state for j in jobs] == ["queued"] and not r.printed and r.fault == "no_printer"
        assert [o["state"] for o in s.outbox()] == ["pending"]
        assert s.session(rec.session_id)["outcome"] == "issued_print_no_printer"


def test_failed_issue_leaves_no_photo(tmp_path):
    class Broken(LocalAuthority):
        def issue(self, store, req, now=None):
            raise RuntimeError("authority down")

    with Store(tmp_path) as s:
        with pytest.raises(RuntimeError):
            issue_receipt(s, Broken("001"), None, "id_card", "shenzhen", jpeg())
        assert list(s.photo_dir.iterdir()) == []
        assert s.numbers() == []


def test_purge_deletes_photos_only_after_confirmed_upload_plus_retention(tmp_path):
    with Store(tmp_path) as s:
        a = LocalAuthority("001", upload=True)
        r1 = issue_receipt(s, a, None, "id_card", "shenzhen", jpeg())
        r2 = issue_receipt(s, a, None, "exit_entry", "guangzhou", jpeg())
        sid1, sid2 = s.number(r1.number).session_id, s.number(r2.number).session_id
        s.outbox_result(sid1, "confirmed")
        orphan = s.photo_dir / "deadbeef.jpg"
        orphan.write_bytes(b"x")
        now = time.time()
        # the orphan (an issue cut off before its commit) goes as soon as it is past its grace time
        assert s.purge(30, now=now + 29 * 86400) == {"photos_deleted": 0, "orphans_deleted": 1}
        assert s.photo_path(sid1).exists()
        assert s.purge(30, now=now + 31 * 86400) == {"photos_deleted": 1, "orphans_deleted": 0}
        assert s.photo_path(sid1) is None and s.photo_path(sid2).exists() and not orphan.exists()
        assert s.number(r1.number) is not None  # the number outlives its photo
        assert s.audit_log()[-1]["action"] == "purge"


def test_interrupted_print_goes_back_to_the_queue(tmp_path):
    with Store(tmp_path) as s:
        r = issue_receipt(s, LocalAuthority("001"), None, "id_card", "shenzhen", jpeg())
        s.mark_printing(r.print_job)
        assert s.recover_interrupted_prints() == [r.print_job]
        job = s.print_job(r.print_job)
        assert job.state == "queued" and job.fault == "interrupted" and job.attempts == 1


def test_threads_sharing_one_store_never_interleave_transactions(tmp_path):
    """The service's threads (session, API, outbox) share one Store: counters stay exact."""
    import threading

    s = Store(tmp_path, durable=False)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for _ in range(150):
                with s.transaction() as db:
                    s.next_counter(db, "shared")
                s.audit("tech", name, "x")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(300):
                s.counters()
                s.audit_log()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert s.counters()["shared"] == 600
    assert len(s.audit_log()) == 600
    s.close()


def test_write_atomic_leaves_old_or_new_never_half(tmp_path, monkeypatch):
    """A failure between the temp write and the rename leaves the old file and no temp file."""
    import os as _os

    from kiosk.durable import write_atomic

    target = tmp_path / "photo.jpg"
    write_atomic(target, b"old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, b"new" * 1000)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]
    write_atomic(target, b"new", mode=0o644)
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o644
