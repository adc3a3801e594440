"""Issue 13, Medium 6 — the console's `receipt reprint NUMBER` printed a past citizen's photo for any
(guessable, sequential) number, against the README's promise. A reprint asked for by number carries
no photo; the photo is only on the hand-over's own slip (also when that slip prints late, after a
printer fault)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from kiosk.config import load_config
from kiosk.hw.printer import PrinterFault
from kiosk.maintenance import MaintenanceContext, register_console_handlers
from kiosk.receipt.authority import LocalAuthority
from kiosk.receipt.issue import issue_receipt, print_queued, reprint
from kiosk.service_api import ServiceApi, call, socket_path
from kiosk.store import Store
from tests.test_receipt_support import jpeg

RASTER = b"\x1dv0"  # GS v 0: the slip's photo thumbnail
REPRINT = "补打".encode("gb18030")
TZ = ZoneInfo("Asia/Shanghai")


class Paper:
    """A printer that keeps each job's bytes; ``jam`` faults the next job."""

    def __init__(self) -> None:
        self.jobs: list[bytes] = []
        self.jam = False

    def status(self) -> None:
        return None

    def print_bytes(self, data: bytes) -> None:
        if self.jam:
            self.jam = False
            raise PrinterFault("paper_out", "out of paper")
        self.jobs.append(data)


@pytest.fixture
def served(tmp_path):
    state = tmp_path / "state"
    store = Store(state, durable=False)
    paper = Paper()
    ctx = MaintenanceContext(
        config=load_config(None, state),
        store=store,
        printer=paper,
        reprint=lambda number, actor: reprint(store, paper, number, TZ, actor=actor),
    )
    api = ServiceApi()
    register_console_handlers(api, ctx)
    api.serve(socket_path(state))
    yield store, paper, socket_path(state)
    api.close()
    store.close()


def test_console_reprint_never_prints_the_photo(served):
    store, paper, sock = served
    r = issue_receipt(store, LocalAuthority("001"), paper, "exit_entry", "shenzhen", jpeg())
    assert r.printed and RASTER in paper.jobs[-1]  # the citizen's own slip shows the face
    reply = call(sock, "console.receipt_reprint", timeout=30.0, number=r.number)
    assert reply["result"] == "reprinted"
    slip = paper.jobs[-1]
    assert REPRINT in slip and r.number.encode() in slip and RASTER not in slip
    assert store.photo_path(store.number(r.number).session_id).exists()  # the photo is still there


def test_the_hand_over_slip_printed_late_keeps_its_photo(served):
    store, paper, _ = served
    paper.jam = True
    r = issue_receipt(store, LocalAuthority("001"), paper, "exit_entry", "shenzhen", jpeg())
    assert not r.printed and paper.jobs == []
    print_queued(store, paper, TZ)  # the technician loaded paper: the citizen's slip comes out
    assert len(paper.jobs) == 1 and RASTER in paper.jobs[0] and REPRINT in paper.jobs[0]
