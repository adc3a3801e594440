"""The returning citizen (issue 15): the slip scanned at the terminal, its review, the free retake.

Real parts throughout: the reference platform over HTTP on 127.0.0.1, the platform client, the SQLite
store, the virtual printer's ESC/POS decoded back to a PNG and its codes read with zxing-cpp, and the
simulated camera showing the slip to the session's scan state.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from kiosk.capture.session import SPECS, State
from kiosk.cli.platform import REJECT_REASONS as CLI_REASONS
from kiosk.config import Config
from kiosk.demo import run_demo
from kiosk.receipt.numbers import format_for
from kiosk.receipt.platform import PlatformClient
from kiosk.receipt.returning import ReturningRefused, lookup, retakes_audited
from kiosk.sim.platform import REJECT_REASONS, Faults, Platform, PlatformServer
from kiosk.store import Store
from kiosk.text import catalogue

REPO = Path(__file__).resolve().parents[1]


def platform_cfg(tmp_path: Path, url: str, **receipt: object) -> Config:
    cfg = Config()
    return replace(
        cfg,
        state_dir=tmp_path / "state",
        receipt=replace(
            cfg.receipt, authority="platform", platform_url=url, platform_timeout_s=2.0, platform_retries=1,
            **receipt,
        ),
    )


def codes(png: str | Path) -> set[str]:
    img = np.asarray(Image.open(png).convert("L"))
    return {r.text for r in zxingcpp.read_barcodes(img)}


def upload(client: PlatformClient, key: str, photo: bytes = b"\xff\xd8first") -> str:
    return client.upload(
        key=key, photo=photo, profile_id="id_card", city="shenzhen", region="440300", station="001"
    )["number"]


# --- the reference platform and its client ---------------------------------------------------------


def test_reasons_are_worded_in_both_languages_and_the_cli_offers_them() -> None:
    assert CLI_REASONS == REJECT_REASONS
    for code in REJECT_REASONS:
        assert f"returning.reason.{code}" in catalogue()


def test_review_decided_per_number_and_resubmission_idempotent(tmp_path: Path) -> None:
    with PlatformServer(platform=Platform(faults=Faults(review="pending"))) as server:
        client = PlatformClient(server.url, timeout=2.0, retries=0)
        n1, n2 = upload(client, "session-aaaa-1"), upload(client, "session-bbbb-2")
        assert client.status(n1)["status"] == "pending"
        assert client.status(n1)["expected_by"]
        # the admin decides one number; the other stays pending
        server.platform.decide(n1, "rejected", "glare")
        st = client.status(n1)
        assert st["status"] == "rejected" and st["reason"] == "glare" and st["decided"]
        assert st["document"] == "id_card" and st["city"] == "shenzhen" and st["attempts"] == 1
        assert client.status(n2)["status"] == "pending"
        assert set(st) <= {"number", "status", "reason", "document", "city", "issued", "submitted",
                           "decided", "expected_by", "attempts"}  # nothing about the person, no photo
        # a resubmission of a pending number is refused; of the rejected one accepted, idempotently
        from kiosk.receipt.platform import PlatformRejected

        with pytest.raises(PlatformRejected):
            client.resubmit(number=n2, attempt=2, photo=b"\xff\xd8new", station="001")
        r1 = client.resubmit(number=n1, attempt=2, photo=b"\xff\xd8second", station="001")
        r2 = client.resubmit(number=n1, attempt=2, photo=b"\xff\xd8second", station="001")  # a retry
        assert r1["status"] == r2["status"] == "pending" and r2["attempts"] == 2
        with pytest.raises(PlatformRejected):  # the same attempt with another photo: a conflict
            client.resubmit(number=n1, attempt=2, photo=b"\xff\xd8third", station="001")
        with pytest.raises(PlatformRejected):  # attempt 3 only after attempt 2 was rejected
            client.resubmit(number=n1, attempt=3, photo=b"\xff\xd8third", station="001")
        assert server.platform.photos[n1] == b"\xff\xd8second"
        assert [a["attempt"] for a in server.platform.attempts(n1)] == [1, 2]


def test_lookup_refusals_unknown_and_platform_down(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    fmt = format_for("id_card")
    unknown = fmt.make(f"{fmt.doc_code}440300001261202", 99)
    with PlatformServer() as server:
        client = PlatformClient(server.url, timeout=1.0, retries=0)
        with pytest.raises(ReturningRefused) as e:
            lookup(unknown, client, store, 2)
        assert e.value.why == "unknown"
        url = server.url
    down = PlatformClient(url, timeout=0.5, retries=1, backoff=0.01)  # nobody listens any more
    with pytest.raises(ReturningRefused) as e:
        lookup(unknown, down, store, 2)
    assert e.value.why == "platform"
    with pytest.raises(ReturningRefused) as e:
        lookup(unknown, None, store, 2)
    assert e.value.why == "no_platform"
    for why in ("unreadable", "not_a_number", "other_region", "unknown", "limit", "platform", "no_platform"):
        assert f"returning.refused.{why}" in catalogue()
    store.close()


def test_slow_platform_is_bounded(tmp_path: Path) -> None:
    """A platform that answers after the client's time limit: the lookup gives up ('platform')."""
    store = Store(tmp_path / "state")
    with PlatformServer(platform=Platform(faults=Faults(delay_s=3.0))) as server:
        client = PlatformClient(server.url, timeout=0.5, retries=1, backoff=0.01)
        n = format_for("id_card").make("1440300001261202", 1)
        with pytest.raises(ReturningRefused) as e:
            lookup(n, client, store, 2)
        assert e.value.why == "platform"
    store.close()


def test_the_states_exist_and_idle_offers_the_scan() -> None:
    assert SPECS[State.IDLE].go["scan"] is State.SCAN
    assert SPECS[State.SCANNED].go["retake"] is State.GUIDANCE
    assert SPECS[State.SCAN].live and not SPECS[State.SCAN].lit


# --- the whole path: kiosk demo issues N, kiosk demo --returning reads it and retakes ----------------


@pytest.mark.slow
def test_demo_rejected_then_returning_retakes_under_the_same_number(tmp_path: Path) -> None:
    platform = Platform(faults=Faults(review="reject", reject_reason="background"))
    with PlatformServer(platform=platform) as server:
        cfg = platform_cfg(tmp_path, server.url)
        first = run_demo(cfg, tmp_path / "first")
        n = first.number
        assert n and first.compliant and n in codes(first.slip)
        first_sha = hashlib.sha256(Path(first.photo).read_bytes()).hexdigest()

        back = run_demo(cfg, tmp_path / "back", returning=Path(first.slip))
        out = back.to_json()
        assert out["scanned_number"] == n
        review = out["review"]
        assert review["state"] == "rejected" and review["reason"] == "background"
        assert review["reason_text"]["zh"] and review["reason_text"]["en"]
        assert review["document"]["en"] and review["city"] == first.city and review["issued"]
        assert "photo" not in review and not any("jpg" in str(v) for v in review.values())
        retake = out["retake"]
        assert retake["number"] == n and retake["compliant"] and not retake["failed"]
        assert Path(retake["photo"]).exists() and Path(retake["slip"]).exists()
        assert n in codes(retake["slip"])  # the new slip carries the same number
        assert "重拍".encode("gb18030") in Path(back.escpos).read_bytes()  # marked 重拍 / RETAKE
        # the platform holds the new photo for N, two attempts recorded
        new = Path(retake["photo"]).read_bytes()
        assert platform.photos[n] == new
        attempts = platform.attempts(n)
        assert [a["attempt"] for a in attempts] == [1, 2]
        assert attempts[0]["sha256"] == first_sha
        assert attempts[1]["sha256"] == hashlib.sha256(new).hexdigest()
        # the retake is audited in the terminal's store
        store = Store(tmp_path / "back" / "state")
        assert retakes_audited(store, n) == 1
        store.close()
        # the limit: with max_retakes = 1, the rejected-again number offers no retake
        limited = platform_cfg(tmp_path, server.url, max_retakes=1)
        again = run_demo(limited, tmp_path / "again", returning=Path(first.slip))
        assert again.review["state"] == "rejected" and again.review["retake"] is False
        assert again.review["limit"]["en"] and again.retake is None


@pytest.mark.slow
def test_bad_slips_each_have_their_message_and_the_terminal_stays_usable(tmp_path: Path) -> None:
    """Another province's number, a number the platform never issued, the platform down: each is a
    zh/en refusal on the review screen, and the same station then serves a normal session."""
    from kiosk.demo import run_demo as demo
    from tests.test_scan import a_number, slip_image

    def slip(number: str) -> Path:
        path = tmp_path / f"{number}.png"
        Image.fromarray(slip_image(number)).save(path)
        return path

    with PlatformServer() as server:
        cfg = platform_cfg(tmp_path, server.url)
        beijing = demo(cfg, tmp_path / "bj", returning=slip(a_number("110101")))
        assert beijing.review["refused"] == "other_region" and beijing.scanned_number
        assert server.platform.requests == 0  # refused on the terminal, nobody asked
        unknown = demo(cfg, tmp_path / "unknown", returning=slip(a_number("440300", seq=777)))
        assert unknown.review["refused"] == "unknown"
        for r in (beijing, unknown):
            assert r.review["message"]["zh"] and r.review["message"]["en"] and r.retake is None
        url = server.url
    down = demo(platform_cfg(tmp_path, url), tmp_path / "down", returning=slip(a_number("440300", 5)))
    assert down.review["refused"] == "platform"
    assert "later" in down.review["message"]["en"]

    # one station: a refused slip, back to idle, then the next citizen starts a normal session
    from kiosk.station import SimClock, build_station, open_printer

    clock = SimClock()
    cfg = replace(platform_cfg(tmp_path, url), state_dir=tmp_path / "one")
    station = build_station(cfg, sim=True, clock=clock, realtime=False, printer=open_printer("virtual"))
    try:
        session = station.session
        station.citizen.slip = slip(a_number("110101")).read_bytes()
        session.post("scan")
        for _ in range(300):
            station.step()
            clock.t += 1 / 30
            if session.state is State.SCANNED:
                break
        assert session.state is State.SCANNED and session.scan["refused"] == "other_region"
        assert session.snapshot()["photo"] is None
        session.post("accept")
        station.step()
        assert session.state is State.IDLE and session.scan is None
        session.post("start")
        station.step()
        assert session.state is State.CHOOSE
    finally:
        station.close()
        station.close_receipts()


@pytest.mark.slow
def test_demo_returning_cli_json_unreadable_and_other_region(tmp_path: Path) -> None:
    """`kiosk demo --returning X --json`: a blank picture gives the hint; the terminal stays usable."""
    blank = tmp_path / "blank.png"
    Image.new("L", (384, 1000), 255).save(blank)
    cmd = [str(Path(sys.executable).with_name("kiosk")), "--state-dir", str(tmp_path / "st"), "demo", "--out",
           str(tmp_path / "o"), "--returning", str(blank), "--json"]
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[session]\nscan_timeout_s = 3.0\n")
    r = subprocess.run(cmd + ["--config", str(cfg)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["scanned_number"] is None
    assert out["review"]["refused"] == "unreadable" and "20 cm" in out["review"]["message"]["en"]
    bad = tmp_path / "nope.png"
    bad.write_text("not an image")
    r = subprocess.run(cmd[:-2] + [str(bad), "--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


# --- the returning screens in headless Chromium, zh and en -------------------------------------------


@pytest.mark.browser
def test_returning_screens_in_chromium_zh_and_en(tmp_path: Path, browser) -> None:
    """Idle offers the scan; the slip held up is read; the review shows state, document, city, dates
    and the reason in zh, then en -- no photo anywhere; the free retake leads to the camera, the
    review and the hand-over, and the platform holds the new photo as the number's second attempt."""
    import threading
    import time

    from selenium.webdriver.common.by import By

    from kiosk.service import Service
    from tests.test_scan import slip_image
    from tests.test_ui_browser import state, text, wait_for
    from tests.test_ui_screens import check_screen

    platform = Platform(faults=Faults(review="pending"))
    with PlatformServer(platform=platform) as server:
        client = PlatformClient(server.url, timeout=2.0, retries=0)
        n = upload(client, "session-browser-1")
        platform.decide(n, "rejected", "glare")
        png = tmp_path / "slip.png"
        Image.fromarray(slip_image(n)).save(png)
        cfg = platform_cfg(tmp_path, server.url)
        cfg = replace(cfg, session=replace(cfg.session, ui_port=0, steady_s=0.5, countdown_s=1.0))
        svc = Service(cfg, sim=True).start()
        svc.station.citizen.slip = png.read_bytes()
        thread = threading.Thread(target=svc.run, daemon=True)
        thread.start()
        b = browser
        try:
            b.get(svc.ui.url)
            wait_for(b, lambda d: text(d, "#scan-start") == "已有回执？扫码查询", what="the scan offer in zh")
            assert b.find_element(By.ID, "scan-start").size["height"] >= 96
            time.sleep(0.5)  # the tap guard after a screen appears
            b.find_element(By.ID, "scan-start").click()
            wait_for(b, lambda d: state(d) == "scanned", what="the review of the scanned slip")
            wait_for(b, lambda d: text(d, "#scanned-state") == "审核未通过", what="rejected in zh")
            fields = text(b, "#scanned-fields")
            assert "居民身份证" in fields and "深圳" in fields and "反光" in fields
            assert n[:4] in text(b, "#scanned-number").replace(" ", "")
            # privacy: no picture on the scan and review screens (the slip carries a thumbnail)
            assert not b.find_elements(By.CSS_SELECTOR, "#screen-scan img, #screen-scanned img")
            assert b.find_element(By.ID, "free-retake").is_displayed()
            # 96 px targets inside the viewport, no scrolling, no serious axe-core violation
            size = tuple(b.execute_script("return [innerWidth, innerHeight]"))
            check_screen(b, "scanned-zh", size, tmp_path, expect=2)
            time.sleep(0.5)
            b.find_element(By.ID, "lang-en").click()
            wait_for(b, lambda d: text(d, "#scanned-state") == "Not approved", what="rejected in en")
            fields = text(b, "#scanned-fields")
            assert "Resident identity card" in fields and "Shenzhen" in fields and "glare" in fields
            assert text(b, "#free-retake") == "Retake for free"
            check_screen(b, "scanned-en", size, tmp_path, expect=2)
            time.sleep(0.5)
            b.find_element(By.ID, "free-retake").click()
            wait_for(b, lambda d: state(d) in ("guidance", "countdown"), what="the camera for the retake")
            assert "Retake" in text(b, "#summary") and svc.session.retake_of == n
            assert svc.session.profile == "id_card" and svc.session.city == "shenzhen"
            # the citizen is guided to a compliant photo, accepts it, and gets the 重拍 slip
            wait_for(b, lambda d: state(d) == "review", timeout=90, what="the retaken photo to review")
            time.sleep(0.5)
            b.find_element(By.ID, "accept").click()
            wait_for(b, lambda d: state(d) == "done", what="the retake handed over")
            assert "Retaken" in text(b, "#done-take") and n[-2:] in text(b, "#done-detail")
            assert [a["attempt"] for a in platform.attempts(n)] == [1, 2]
            time.sleep(0.5)
            b.find_element(By.ID, "finish").click()
            wait_for(b, lambda d: state(d) == "idle", what="back to idle")
            assert svc.session.retake_of is None  # forgotten with the citizen
        finally:
            svc.stop()
            thread.join(10)
            svc.close()
