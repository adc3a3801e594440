"""Printer faults on the virtual printer: paper out mid-job, unplugged, garbage or no status replies."""

from __future__ import annotations

import pytest
import zxingcpp

from kiosk.hw.printer import Printer, PrinterFault, parse_status
from kiosk.receipt.authority import LocalAuthority
from kiosk.receipt.issue import issue_receipt, print_queued
from kiosk.sim.printer import VirtualPrinter
from kiosk.store import Store
from tests.test_receipt_support import jpeg


def _printer(**kw) -> tuple[Printer, VirtualPrinter]:
    vp = VirtualPrinter(**kw)
    return Printer(vp, answers_status=True, chunk=128, reply_timeout=0.05), vp


def test_paper_out_mid_job_keeps_the_job_and_reprints_after_fixing(tmp_path):
    printer, vp = _printer(paper_left=300)
    with Store(tmp_path) as s:
        a = LocalAuthority("001")
        r = issue_receipt(s, a, printer, "id_card", "guangzhou", jpeg())
        assert not r.printed and r.fault == "paper_out" and "缺纸" in r.message_zh
        job = s.print_job(r.print_job)
        assert job.state == "queued" and job.fault == "paper_out"
        assert s.number(r.number) is not None  # the number stands even though the slip did not print
        # a second citizen is refused at the printer before any byte is sent
        sent = len(vp.received)
        r2 = issue_receipt(s, a, printer, "exit_entry", "guangzhou", jpeg())
        assert r2.fault == "paper_out" and len(vp.received) - sent == 9  # only the three status queries
        vp.load_paper()
        done = print_queued(s, printer, a.tz)
        assert done == {r.print_job: None, r2.print_job: None}
        assert all(j.state == "printed" for j in s.print_jobs())
    slips = vp.slips()
    decoded = [{x.text for x in zxingcpp.read_barcodes(im)} for im in slips[-2:]]
    assert decoded == [{r.number}, {r2.number}]
    assert bytes(vp.received).count("补打".encode("gb18030")) >= 4  # both are marked as reprints


def test_unplugged_printer(tmp_path):
    printer, vp = _printer(unplugged=True)
    with Store(tmp_path) as s:
        r = issue_receipt(s, LocalAuthority("001"), printer, "id_card", "guangzhou", jpeg())
        assert r.fault == "unplugged" and s.print_job(r.print_job).state == "queued"


@pytest.mark.parametrize(
    "kw,fault", [({"garbage_status": True}, "garbage_reply"), ({"silent": True}, "no_reply")]
)
def test_bad_status_replies_are_faults(tmp_path, kw, fault):
    printer, vp = _printer(**kw)
    with pytest.raises(PrinterFault) as exc:
        printer.status()
    assert exc.value.code == fault


def test_cover_open_and_status_bits():
    printer, vp = _printer()
    assert printer.status().fault is None
    vp.status.cover_open = True
    st = printer.status()
    assert st.cover_open and not st.online and st.fault == "cover_open"
    with pytest.raises(PrinterFault, match="garbage"):
        parse_status(0x12, 0x12, 0x80)
    assert parse_status(0x12, 0x12, 0x1E).paper_near_end


def test_every_fault_has_a_message_for_citizen_and_technician():
    from kiosk.hw.printer import FAULTS
    from kiosk.receipt.issue import fault_message

    for code in FAULTS:
        for who in ("citizen", "technician"):
            zh, en = fault_message(code, who)
            assert zh and en and zh != en
