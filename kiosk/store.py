"""The terminal's durable records: one SQLite database in WAL mode, plus the photo files it points to.

Every durable fact goes through here (numbers, sessions, photos, upload outbox, print jobs, audit log,
counters) so that a power cut at any instant leaves a consistent state: a number and the print job of
its slip are committed in one transaction before a byte goes to the printer.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.durable import write_atomic
from kiosk.errors import KioskError

DB_NAME = "kiosk.sqlite3"
PHOTO_DIR = "photos"
ORPHAN_GRACE_S = 3600.0  # a photo file without a record younger than this may belong to a running issue
# Outside the database, so that losing it cannot lose them: the highest sequence handed out per series
# and the count of numbers ever issued (written durably before a number is handed out).
MARKS_NAME = "numbers-mark.json"
MARKS_KEEP_SERIES = 512  # the newest series kept (a series is one document, city and day)
LOSS_ACK = "store_loss_acknowledged"  # the audit action of a technician's acknowledgement
# A terminal that uploads nothing needs a photo only until its slip is handed over: it keeps it at most
# this long (from the hand-over; from the issue when the slip never printed), whatever retention_days says.
STANDALONE_MAX_DAYS = 7.0
SETTLED = ("confirmed", "rejected")  # upload states after which the platform needs nothing more

# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS: list[str] = [
    # 1: numbers, sessions, photos, print jobs, audit log, counters
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        profile_id TEXT NOT NULL,
        city TEXT NOT NULL,
        station TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        outcome TEXT
    );
    CREATE TABLE numbers (
        number TEXT PRIMARY KEY,
        session_id TEXT NOT NULL UNIQUE REFERENCES sessions(id),
        profile_id TEXT NOT NULL,
        city TEXT NOT NULL,
        station TEXT NOT NULL,
        authority TEXT NOT NULL,
        series TEXT,
        seq INTEGER,
        issued_at REAL NOT NULL,
        UNIQUE (series, seq)
    );
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL UNIQUE REFERENCES sessions(id),
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at REAL NOT NULL,
        deleted_at REAL
    );
    CREATE TABLE print_jobs (
        id INTEGER PRIMARY KEY,
        number TEXT NOT NULL REFERENCES numbers(number),
        reprint INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('queued', 'printing', 'printed', 'failed')),
        fault TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        printed_at REAL
    );
    CREATE INDEX print_jobs_number ON print_jobs(number);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    """,
    # 2: the upload outbox and the platform's review status of a number
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL UNIQUE REFERENCES sessions(id),
        idempotency_key TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'confirmed', 'rejected')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        confirmed_at REAL
    );
    ALTER TABLE numbers ADD COLUMN review TEXT NOT NULL DEFAULT 'none';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(KioskError):
    """The database cannot be opened, is from a newer firmware, or a record is missing."""


class StoreLost(StoreError):
    """The database is missing, empty or behind where this terminal issued numbers before: no number
    is issued until a technician acknowledges it on the console (`store acknowledge-loss`)."""


def disk_full(path: str | Path) -> bool:
    """No block left for an unprivileged writer where ``path`` lives."""
    try:
        return os.statvfs(path).f_bavail == 0
    except OSError:
        return False


def _db_error(exc: sqlite3.Error) -> StoreError:
    """A database that is corrupt, full or unreadable: one line for a person, not a traceback."""
    text = str(exc)
    if "full" in text:
        return StoreError(f"the store cannot write: {text} (free space in the state directory)")
    if "malformed" in text or "not a database" in text:
        return StoreError(f"the store is damaged: {text} (restore it, or move it aside to start a new one)")
    return StoreError(f"store: {text}")


@dataclass(frozen=True)
class NumberRecord:
    number: str
    session_id: str
    profile_id: str
    city: str
    station: str
    authority: str
    series: str | None
    seq: int | None
    issued_at: float
    review: str

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "session_id": self.session_id,
            "profile": self.profile_id,
            "city": self.city,
            "station": self.station,
            "authority": self.authority,
            "series": self.series,
            "seq": self.seq,
            "issued_at": self.issued_at,
            "review": self.review,
        }


@dataclass(frozen=True)
class PrintJob:
    id: int
    number: str
    reprint: bool
    state: str
    fault: str | None
    attempts: int
    created_at: float
    printed_at: float | None


class _Rows:
    """A statement's result, fetched while the connection lock was held."""

    def __init__(self, rows: list[Any], lastrowid: int | None, rowcount: int) -> None:
        self._rows, self.lastrowid, self.rowcount = rows, lastrowid, rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class _SerialConnection:
    """One SQLite connection shared by the service's threads (session, service API, outbox).

    Each statement runs and is fetched under a re-entrant lock, and ``Store.transaction`` holds
    that lock from BEGIN to COMMIT, so another thread's statement can never land inside (or
    commit, or roll back) someone else's transaction.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.lock = threading.RLock()

    def execute(self, sql: str, params: Any = ()) -> _Rows:
        with self.lock:
            try:
                cur = self.conn.execute(sql, params)
                return _Rows(cur.fetchall() if cur.description else [], cur.lastrowid, cur.rowcount)
            except sqlite3.Error as exc:
                raise _db_error(exc) from None

    def executemany(self, sql: str, seq: Any) -> _Rows:
        with self.lock:
            try:
                cur = self.conn.executemany(sql, seq)
                return _Rows([], cur.lastrowid, cur.rowcount)
            except sqlite3.Error as exc:
                raise _db_error(exc) from None

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class Store:
    """The terminal's database: one connection per process, safe to share between its threads."""

    def __init__(self, state_dir: str | Path, *, durable: bool = True, exclusive: bool = False) -> None:
        """``exclusive``: no other process may use the store meanwhile, and SQLite needs no shared-memory
        file (what `store purge` uses on a full disk, where that file cannot be created)."""
        self.state_dir = Path(state_dir)
        self.photo_dir = self.state_dir / PHOTO_DIR
        self.marks_path = self.state_dir / MARKS_NAME
        try:
            self._open(durable, exclusive)
        except BaseException:
            if getattr(self, "db", None) is not None:
                self.db.close()  # a half-open connection would hold its lock against the next try
            raise

    def _open(self, durable: bool, exclusive: bool) -> None:
        try:
            self.photo_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.state_dir / DB_NAME, isolation_level=None, timeout=30.0, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            self.db = _SerialConnection(conn)
            if exclusive:  # before the first WAL access: then SQLite never creates the -shm file
                self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            # FULL: a committed transaction survives a power cut, not only a process crash.
            self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            self.db.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error, StoreError) as exc:
            why = "the disk is full" if disk_full(self.state_dir) else str(exc)
            raise StoreError(f"cannot open the store in {self.state_dir}: {why}") from None
        if mode.lower() != "wal":
            raise StoreError(f"the store in {self.state_dir} cannot use WAL mode (got {mode})")
        self._migrate()

    @classmethod
    def for_purge(cls, state_dir: str | Path) -> Store:
        """The store for `store purge`, which must work on a full disk (it is what frees the space)."""
        try:
            return cls(state_dir)
        except StoreError:
            if not disk_full(state_dir):
                raise
            return cls(state_dir, exclusive=True)

    # --- schema -------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        with self.transaction():
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store in {self.state_dir} has schema version {version}, newer than this "
                    f"firmware's {SCHEMA_VERSION}; refusing to touch it"
                )
            for v in range(version, target):
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={v + 1}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[_SerialConnection]:
        """BEGIN IMMEDIATE: take the write lock first so two issuers never read the same counter."""
        with self.db.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
                    self.db.execute("ROLLBACK")
                raise
            try:
                self.db.execute("COMMIT")
            except StoreError:
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise

    # --- sessions and photos --------------------------------------------------------------------

    def begin_session(self, profile_id: str, city: str, station: str, now: float | None = None) -> str:
        sid = uuid.uuid4().hex
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sessions (id, profile_id, city, station, started_at) VALUES (?, ?, ?, ?, ?)",
                (sid, profile_id, city, station, time.time() if now is None else now),
            )
        return sid

    def end_session(self, session_id: str, outcome: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET ended_at = ?, outcome = ? WHERE id = ?",
                (time.time(), outcome, session_id),
            )

    def session(self, session_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return dict(row) if row else None

    def write_photo_file(self, session_id: str, data: bytes) -> Path:
        """Write the photo durably (fsync file and directory) before any record points to it."""
        return write_atomic(self.photo_dir / f"{session_id}.jpg", data)

    def photo_path(self, session_id: str) -> Path | None:
        row = self.db.execute(
            "SELECT path FROM photos WHERE session_id = ? AND deleted_at IS NULL", (session_id,)
        ).fetchone()
        return self.state_dir / row["path"] if row else None

    # --- numbers and print jobs -------------------------------------------------------------------

    def next_counter(self, db: _SerialConnection, name: str) -> int:
        """Increment and return a counter; inside transaction(), so a value is never handed out twice."""
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (name,),
        )
        return int(db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])

    def bump_counter(self, name: str, by: int = 1) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, by),
            )

    def counters(self) -> dict[str, int]:
        return {
            r["name"]: r["value"] for r in self.db.execute("SELECT name, value FROM counters ORDER BY name")
        }

    def record_number(
        self,
        db: _SerialConnection,
        *,
        number: str,
        session_id: str,
        authority: str,
        series: str | None = None,
        seq: int | None = None,
        photo: Path | None = None,
        photo_sha256: str | None = None,
        upload: str | None = None,
        review: str = "none",
        now: float | None = None,
    ) -> int:
        """Record an issued number with its photo, print job and outbox entry; returns the print job id.

        Call inside transaction(): the number, the photo record and the queued slip commit together.
        """
        now = time.time() if now is None else now
        s = db.execute(
            "SELECT profile_id, city, station FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if s is None:
            raise StoreError(f"no session {session_id}")
        db.execute(
            "INSERT INTO numbers (number, session_id, profile_id, city, station, authority, series, seq, "
            "issued_at, review) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                session_id,
                s["profile_id"],
                s["city"],
                s["station"],
                authority,
                series,
                seq,
                now,
                review,
            ),
        )
        if photo is not None:
            db.execute(
                "INSERT INTO photos (session_id, path, sha256, size, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    session_id,
                    str(photo.relative_to(self.state_dir)),
                    photo_sha256 or hashlib.sha256(photo.read_bytes()).hexdigest(),
                    photo.stat().st_size,
                    now,
                ),
            )
        if upload is not None:  # 'pending': still to upload; 'sent': the platform has it, poll its review
            db.execute(
                "INSERT INTO outbox (session_id, idempotency_key, state, next_attempt_at) "
                "VALUES (?, ?, ?, ?)",
                (session_id, session_id, upload, now),
            )
        cur = db.execute(
            "INSERT INTO print_jobs (number, reprint, state, created_at) VALUES (?, 0, 'queued', ?)",
            (number, now),
        )
        self.next_counter(db, "numbers_issued")
        return int(cur.lastrowid)

    def number(self, number: str) -> NumberRecord | None:
        row = self.db.execute("SELECT * FROM numbers WHERE number = ?", (number,)).fetchone()
        return NumberRecord(**dict(row)) if row else None

    def number_for_session(self, session_id: str) -> NumberRecord | None:
        row = self.db.execute("SELECT * FROM numbers WHERE session_id = ?", (session_id,)).fetchone()
        return NumberRecord(**dict(row)) if row else None

    def numbers(self, limit: int | None = None) -> list[NumberRecord]:
        sql = "SELECT * FROM numbers ORDER BY issued_at DESC, number DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [NumberRecord(**dict(r)) for r in self.db.execute(sql)]

    def set_review(self, number: str, review: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE numbers SET review = ? WHERE number = ?", (review, number))

    def queue_reprint(self, number: str, actor: str) -> int:
        if self.number(number) is None:
            raise StoreError(f"no issued number {number}")
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO print_jobs (number, reprint, state, created_at) VALUES (?, 1, 'queued', ?)",
                (number, now),
            )
            self._audit(db, actor, "reprint", number, now)
            return int(cur.lastrowid)

    def print_job(self, job_id: int) -> PrintJob:
        row = self.db.execute("SELECT * FROM print_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise StoreError(f"no print job {job_id}")
        d = dict(row)
        d["reprint"] = bool(d["reprint"])
        return PrintJob(**d)

    def print_jobs(self, number: str | None = None, state: str | None = None) -> list[PrintJob]:
        sql, args = "SELECT id FROM print_jobs WHERE 1=1", []
        if number is not None:
            sql, args = sql + " AND number = ?", [*args, number]
        if state is not None:
            sql, args = sql + " AND state = ?", [*args, state]
        return [self.print_job(r["id"]) for r in self.db.execute(sql + " ORDER BY id", args).fetchall()]

    def mark_printing(self, job_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE print_jobs SET state = 'printing', attempts = attempts + 1 WHERE id = ?", (job_id,)
            )

    def mark_printed(self, job_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE print_jobs SET state = 'printed', fault = NULL, printed_at = ? WHERE id = ?",
                (time.time(), job_id),
            )
            self.next_counter(db, "slips_printed")

    def mark_print_fault(self, job_id: int, fault: str) -> None:
        """The job stays queued: it prints (as a reprint) once the technician has fixed the printer."""
        with self.transaction() as db:
            db.execute("UPDATE print_jobs SET state = 'queued', fault = ? WHERE id = ?", (fault, job_id))
            self.next_counter(db, "printer_faults")

    def recover_interrupted_prints(self) -> list[int]:
        """Jobs left 'printing' by a crash go back to the queue; what came out of the printer is unknown."""
        with self.transaction() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM print_jobs WHERE state = 'printing'")]
            db.execute(
                "UPDATE print_jobs SET state = 'queued', fault = 'interrupted' WHERE state = 'printing'"
            )
        return ids

    # --- upload outbox ----------------------------------------------------------------------------

    def outbox_due(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        rows = self.db.execute(
            "SELECT o.*, n.number, n.profile_id, n.city, n.station FROM outbox o "
            "JOIN numbers n ON n.session_id = o.session_id "
            "WHERE o.state IN ('pending', 'sent') AND o.next_attempt_at <= ? ORDER BY o.id",
            (now,),
        )
        return [dict(r) for r in rows]

    def outbox_result(
        self,
        session_id: str,
        state: str,
        error: str | None = None,
        retry_in: float = 0.0,
        review: str | None = None,
        now: float | None = None,
    ) -> None:
        """Record one upload/poll attempt; the number's review state changes in the same transaction."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
                "confirmed_at = CASE WHEN ? IN ('confirmed', 'rejected') THEN ? ELSE confirmed_at END "
                "WHERE session_id = ?",
                (state, error, now + retry_in, state, now, session_id),
            )
            if review is not None:
                db.execute("UPDATE numbers SET review = ? WHERE session_id = ?", (review, session_id))

    def unfinished_sessions(self) -> list[dict[str, Any]]:
        """Sessions cut off between their start and their number (a crash or power cut mid-issue)."""
        rows = self.db.execute(
            "SELECT s.* FROM sessions s LEFT JOIN numbers n ON n.session_id = s.id "
            "WHERE s.outcome IS NULL AND n.number IS NULL ORDER BY s.started_at"
        )
        return [dict(r) for r in rows]

    def outbox(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM outbox ORDER BY id")]

    # --- audit and retention ----------------------------------------------------------------------

    def _audit(self, db: _SerialConnection, actor: str, action: str, detail: str, now: float) -> None:
        db.execute(
            "INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)", (now, actor, action, detail)
        )

    def audit(self, actor: str, action: str, detail: str = "") -> None:
        with self.transaction() as db:
            self._audit(db, actor, action, detail, time.time())

    def audit_log(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM audit ORDER BY id")]

    def purge(
        self,
        retention_days: float,
        now: float | None = None,
        actor: str = "system",
        *,
        uploading: bool = True,
    ) -> dict[str, int]:
        """Delete every photo nothing needs any more, retention_days after that moment; and orphan files.

        A photo is needed until its upload is settled (confirmed or rejected) when it is uploaded, else
        until its slip is handed over (printed). ``uploading`` False: this terminal uploads nothing, so
        a pending upload needs nothing either, and the photo is kept at most STANDALONE_MAX_DAYS (from
        the hand-over, or from the issue when the slip never printed). A slip with a thumbnail is drawn
        from the photo file when it prints: once the file is gone no slip shows the face again.
        Orphans are photo files no record points to (an issue interrupted before its commit). Files go
        first and the records after, so on a full disk the purge frees space before it writes.
        """
        now = time.time() if now is None else now
        rows = self.db.execute(
            "SELECT p.id, p.path, COALESCE(n.issued_at, p.created_at) AS issued_at, "
            "o.state AS upload, o.confirmed_at, "
            "(SELECT MIN(j.printed_at) FROM print_jobs j WHERE j.number = n.number "
            " AND j.state = 'printed') AS handed_over "
            "FROM photos p LEFT JOIN numbers n ON n.session_id = p.session_id "
            "LEFT JOIN outbox o ON o.session_id = p.session_id WHERE p.deleted_at IS NULL"
        ).fetchall()
        due = [r for r in rows if _photo_due(r, retention_days, now, uploading)]
        for r in due:
            (self.state_dir / r["path"]).unlink(missing_ok=True)
        known = {r["path"] for r in rows} - {r["path"] for r in due}
        orphans = 0
        for f in self.photo_dir.iterdir():
            rel = str(f.relative_to(self.state_dir))
            if rel not in known and f.is_file() and now - f.stat().st_mtime > ORPHAN_GRACE_S:
                f.unlink(missing_ok=True)
                orphans += 1
        with self.transaction() as db:
            db.executemany("UPDATE photos SET deleted_at = ? WHERE id = ?", [(now, r["id"]) for r in due])
            self._audit(db, actor, "purge", f"photos={len(due)} orphans={orphans}", now)
        return {"photos_deleted": len(due), "orphans_deleted": orphans}

    # --- numbers outside the database: a lost store never reissues one ----------------------------

    def _read_marks(self) -> dict[str, Any]:
        try:
            data = json.loads(self.marks_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"total": 0, "series": {}}
        except (OSError, ValueError) as exc:
            raise StoreLost(f"{self.marks_path}: unreadable number marks ({exc}); not issuing") from None
        if not (isinstance(data, dict) and isinstance(data.get("series"), dict)):
            raise StoreLost(f"{self.marks_path}: not a number-marks file; not issuing")
        return {
            "total": int(data.get("total", 0)),
            "series": {str(k): int(v) for k, v in data["series"].items()},
        }

    def mark_issued(self, number: str) -> None:
        """Raise the marks to this number's series and the issued count, durably, before it is handed out.

        Inside a write transaction, so two processes issuing at once never lower each other's marks.
        """
        with self.transaction() as db:
            rec = db.execute("SELECT series FROM numbers WHERE number = ?", (number,)).fetchone()
            counters = self._counter_values(db)
            marks = self._read_marks()
            new = dict(marks["series"])
            if rec is not None and rec["series"] is not None:
                key = rec["series"]
                new[key] = max(new.get(key, 0), counters.get(f"seq:{key}", 0))
            total = max(marks["total"], counters.get("numbers_issued", 0))
            if new == marks["series"] and total == marks["total"]:
                return
            keep = sorted(new, key=lambda k: (k[-6:], k))[-MARKS_KEEP_SERIES:]  # series end in YYMMDD
            doc = {"version": 1, "total": total, "series": {k: new[k] for k in keep}}
            write_atomic(self.marks_path, json.dumps(doc, sort_keys=True).encode("utf-8"))

    @staticmethod
    def _counter_values(db: _SerialConnection) -> dict[str, int]:
        return {r["name"]: int(r["value"]) for r in db.execute("SELECT name, value FROM counters")}

    def lost(self) -> str | None:
        """Why this store cannot be trusted to issue numbers (records existed that it does not have); None
        when it can. Evidence: the marks file, photo files, with no acknowledgement in the store."""
        marks = self._read_marks()
        counters = self._counter_values(self.db)
        issued = counters.get("numbers_issued", 0)
        if issued < marks["total"]:
            return (
                f"the store knows {issued} issued number(s) but {marks['total']} were handed out "
                f"({self.marks_path.name}): the database was lost or replaced"
            )
        for series, seq in sorted(marks["series"].items()):
            if counters.get(f"seq:{series}", 0) < seq:
                return (
                    f"series {series} reached {seq} but the store says {counters.get(f'seq:{series}', 0)}: "
                    "the database was lost or replaced"
                )
        if issued == 0:
            photos = [f for f in self.photo_dir.glob("*.jpg") if f.is_file()]
            if photos and not self._acknowledged():
                return f"the store is empty but {len(photos)} photo file(s) of earlier numbers remain"
        return None

    def _acknowledged(self) -> bool:
        return (
            self.db.execute("SELECT 1 FROM audit WHERE action = ? LIMIT 1", (LOSS_ACK,)).fetchone()
            is not None
        )

    def check_not_lost(self) -> None:
        """Raise StoreLost when the store cannot be trusted to issue (see lost())."""
        reason = self.lost()
        if reason:
            raise StoreLost(
                f"not issuing numbers: {reason}; a technician must acknowledge it on the console "
                "(store acknowledge-loss)",
                code="receipt.store.lost.citizen",
            )

    def acknowledge_loss(self, actor: str) -> dict[str, Any]:
        """The technician accepts the loss: the counters continue past every mark (no number is issued
        twice) and the acknowledgement is audited. Refused when nothing was lost."""
        reason = self.lost()
        if reason is None:
            raise StoreError("the store has lost nothing: there is nothing to acknowledge")
        marks = self._read_marks()
        now = time.time()
        with self.transaction() as db:
            seeds = {f"seq:{k}": v for k, v in marks["series"].items()}
            seeds["numbers_issued"] = marks["total"]
            db.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)",
                list(seeds.items()),
            )
            self._audit(db, actor, LOSS_ACK, reason, now)
        return {
            "result": "acknowledged",
            "reason": reason,
            "series": len(marks["series"]),
            "total": marks["total"],
        }


def _photo_due(r: Any, retention_days: float, now: float, uploading: bool) -> bool:
    """The retention rule of one photo row (see Store.purge)."""
    if r["upload"] is not None and (uploading or r["upload"] in SETTLED):
        released = r["confirmed_at"] if r["upload"] in SETTLED else None
        return released is not None and released + retention_days * 86400.0 <= now
    days = min(retention_days, STANDALONE_MAX_DAYS)
    if r["handed_over"] is not None and r["handed_over"] + days * 86400.0 <= now:
        return True
    return r["issued_at"] + STANDALONE_MAX_DAYS * 86400.0 <= now
