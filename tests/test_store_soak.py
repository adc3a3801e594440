"""SIGKILL soak: kill the issuing process at random instants, hundreds of times, then audit the store.

The child issues receipts in a loop on a printer that appends to a file (the bytes that reached the
printer survive the kill, as paper would). After every kill: numbers are unique, each series is
gap-free, every number has its photo, and every slip that reached the printer has its record.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import time

import pytest

from kiosk.hw.printer import Printer
from kiosk.receipt.authority import LocalAuthority
from kiosk.receipt.issue import issue_receipt, recover
from kiosk.receipt.numbers import load_formats, parse
from kiosk.store import Store
from tests.test_receipt_support import jpeg, qr_payloads, slips_on_paper

pytestmark = pytest.mark.soak

KILLS = int(os.environ.get("KIOSK_SOAK_KILLS", "200"))
JOBS = [
    ("id_card", "guangzhou"),
    ("social_security", "guangzhou"),
    ("driving_licence", "guangzhou"),
    ("exit_entry", "dongguan"),
]


class AppendDevice:
    """A printer on a file: every write reaches the 'paper' (the kernel keeps it across SIGKILL)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def read(self) -> bytes:
        return b""


def _child(state, paper, seed) -> None:
    rng = random.Random(seed)
    store = Store(state)
    authority = LocalAuthority("001")
    printer = Printer(AppendDevice(paper), answers_status=False, chunk=64)
    recover(store, authority, printer)
    photo = jpeg(shade=rng.randrange(150, 250))
    while True:
        profile, city = rng.choice(JOBS)
        issue_receipt(store, authority, printer, profile, city, photo)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path):
    state, paper = tmp_path / "state", tmp_path / "paper.bin"
    Store(state).close()
    with Store(tmp_path / "warm-up") as w:  # imports and data files loaded once, as in a running kiosk
        for profile, city in JOBS:
            issue_receipt(
                w,
                LocalAuthority("001"),
                Printer(AppendDevice(os.devnull), answers_status=False),
                profile,
                city,
                jpeg(),
            )
    rng = random.Random(1234)
    killed = 0
    for i in range(KILLS):
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            try:
                _child(state, paper, i)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.06))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed == KILLS  # each child was still issuing when it was killed

    with Store(state) as s:
        # the next start-up: interrupted sessions closed, cut-off slips printed again as reprints
        recover(s, LocalAuthority("001"), Printer(AppendDevice(paper), answers_status=False))
        assert s.unfinished_sessions() == [] and s.print_jobs(state="queued") == []
        records = s.numbers()
        numbers = [r.number for r in records]
        assert len(numbers) > KILLS // 4, "the children issued too few numbers for a meaningful soak"
        assert len(set(numbers)) == len(numbers)
        formats = load_formats()
        series: dict[str, list[int]] = {}
        for r in records:
            p = parse(r.number)  # check character and layout
            assert (p.series, p.seq) == (r.series, r.seq)
            series.setdefault(r.series, []).append(r.seq)
            assert formats[r.profile_id].gap_free
            photo = s.photo_path(r.session_id)
            assert photo is not None and photo.exists(), f"{r.number} has no photo"
            row = s.db.execute("SELECT sha256 FROM photos WHERE session_id = ?", (r.session_id,)).fetchone()
            assert hashlib.sha256(photo.read_bytes()).hexdigest() == row["sha256"]
        for name, seqs in series.items():
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"gap or duplicate in series {name}"
        counters = s.counters()
        for name, seqs in series.items():
            assert counters[f"seq:{name}"] == len(seqs)  # no sequence value was handed out and lost
        printed = qr_payloads(paper.read_bytes())
        print(
            f"soak: {KILLS} kills, {len(numbers)} numbers, {len(series)} series, "
            f"{len(printed)} QR codes printed, "
            f"{len(s.print_jobs(state='queued'))} queued"
        )
        assert printed, "no slip reached the printer"
        known = set(numbers)
        assert all(n in known for n in printed), "a printed slip has no record"
        for r in records:
            assert s.print_jobs(r.number), f"{r.number} has no print job"
        originals: dict[str, int] = {}
        for reprint, numbers_on_slip in slips_on_paper(paper.read_bytes()):
            for n in numbers_on_slip:
                originals[n] = originals.get(n, 0) + (not reprint)
        assert max(originals.values()) == 1, "a number came out twice without the reprint mark"
        assert set(numbers) <= set(originals), "an issued number never reached the paper"
        on_disk = {f.name for f in s.photo_dir.iterdir()}
        referenced = {s.photo_path(r.session_id).name for r in records}
        assert on_disk == referenced, "photo files without a record (or records without files)"
        printed_jobs = [j for j in s.print_jobs(state="printed")]
        assert {j.number for j in printed_jobs} <= set(printed)
