"""Issue 14: every screen of the touchscreen at the kiosk's real displays (1080x1920 portrait, 1280x800,
1024x600) in headless Chromium, on a real simulated service: every visible control inside the
viewport and at least 96 CSS px high, no scrolling, axe-core finds nothing serious or critical, and a
double tap on Retake leaves the citizen in guidance.

The service's session clock is wrapped (``Jump``) so that the timeout warning, the failsafe's end and
a session timing out are reached by moving the clock, not by waiting. Screenshots go to
$KIOSK_SCREENSHOTS (default: the test's temporary directory), one per screen per size.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from axe_selenium_python import Axe
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from kiosk.capture.session import State
from kiosk.config import load_config
from kiosk.service import Service
from tests.test_ui_browser import image_size, state, text, wait_for

pytestmark = pytest.mark.browser

SIZES = [(1080, 1920), (1280, 800), (1024, 600)]
TIMEOUT_S = 300.0
WARN_S = 15.0
LICENCE = 'button.doc[data-id="driving_licence"]'
CITY = "return document.getElementById('city').value"


class Jump:
    """The session's clock: monotonic time plus what the test has jumped ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    cfg = load_config(None, tmp_path_factory.mktemp("state"))
    cfg = replace(
        cfg,
        session=replace(
            cfg.session,
            steady_s=0.5,
            countdown_s=2.5,
            done_s=TIMEOUT_S,
            failsafe_s=TIMEOUT_S,
            idle_timeout_s=TIMEOUT_S,
            guidance_timeout_s=TIMEOUT_S,
            warn_s=WARN_S,
            ui_port=0,
        ),
    )
    svc = Service(cfg, sim=True).start()
    svc.jump = Jump()
    svc.session.clock = svc.jump
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    yield svc
    svc.stop()
    thread.join(10)
    svc.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = os.environ.get("KIOSK_SCREENSHOTS")
    path = Path(out) if out else tmp_path_factory.mktemp("screens")
    path.mkdir(parents=True, exist_ok=True)
    return path


CONTROLS = """
const w = innerWidth, h = innerHeight, out = [];
for (const el of document.querySelectorAll('button, select, input, a[href], [role="button"]')) {
  const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
  if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden') continue;
  out.push({id: el.id || el.dataset.id || el.dataset.event || el.textContent.trim().slice(0, 20),
            x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, h: r.height});
}
const doc = document.scrollingElement;
return {w, h, controls: out, scroll: [doc.scrollWidth, doc.scrollHeight]};
"""


def check_screen(d, name: str, size: tuple[int, int], shots: Path, expect: int = 1) -> list[dict]:
    """Every visible control inside the viewport and >= 96 px high, no scrolling, no serious or
    critical axe-core violation; a screenshot."""
    time.sleep(0.45)  # past the tap guard and any transition
    got = d.execute_script(CONTROLS)
    assert [got["w"], got["h"]] == list(size)
    where = f"{name} at {size[0]}x{size[1]}"
    assert got["scroll"][0] <= got["w"] and got["scroll"][1] <= got["h"], f"{where}: scrolls {got['scroll']}"
    assert len(got["controls"]) >= expect, f"{where}: {got['controls']}"
    for c in got["controls"]:
        assert c["x0"] >= 0 and c["y0"] >= 0 and c["x1"] <= got["w"] + 0.5 and c["y1"] <= got["h"] + 0.5, (
            f"{where}: {c} outside the viewport"
        )
        assert c["h"] >= 96 - 0.5, f"{where}: {c['id']} is {c['h']:.0f} px high"
    d.save_screenshot(str(shots / f"{size[0]}x{size[1]}-{name}.png"))
    axe = Axe(d)
    axe.inject()
    results = axe.run(options={"resultTypes": ["violations"]})
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{where}: axe-core: {bad}"
    return got["controls"]


def click(d, css: str) -> None:
    time.sleep(0.45)  # a person does not tap within the guard after a screen appears
    d.find_element(By.CSS_SELECTOR, css).click()


def to_idle(svc, d) -> None:
    if svc.session.state is not State.IDLE:
        svc.session.post("cancel", "api")
    wait_for(d, lambda x: state(x) == "idle" and svc.session.state is State.IDLE, what="idle")


def to_guidance(svc, d) -> None:
    to_idle(svc, d)
    click(d, "#start")
    wait_for(d, lambda x: state(x) == "choose", what="choose")
    click(d, "#next")
    wait_for(d, lambda x: state(x) == "consent", what="consent")
    click(d, "#consent")
    wait_for(d, lambda x: state(x) == "requirements", what="requirements")
    click(d, "#ready")
    wait_for(d, lambda x: state(x) in ("guidance", "countdown"), what="guidance")


def wait_review(svc, d) -> None:
    wait_for(
        d,
        lambda x: state(x) == "review" and (image_size(x, "#final") or [0])[0] == 358,
        timeout=90,
        what="the final photo",
    )


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_screen_fits_the_display_with_big_targets_and_no_serious_axe_violations(
    service, shots, size, chromium
):
    svc = service
    d = chromium(*size, exact=True)
    d.get(svc.ui.url)
    to_idle(svc, d)
    wait_for(d, lambda x: text(x, "#start") == "开始拍照", what="the idle screen")
    check_screen(d, "idle", size, shots, expect=4)

    click(d, "#start")
    docs = (By.CSS_SELECTOR, "button.doc")
    wait_for(d, lambda x: state(x) == "choose" and x.find_elements(*docs), what="choose")
    # the home city is chosen for every citizen; the licence is not issued everywhere
    city = svc.session.home_city()
    assert d.execute_script(CITY) == city
    svc.session.post("select", "api", city="shaoguan")
    wait_for(
        d,
        lambda x: not x.find_element(By.CSS_SELECTOR, LICENCE).is_enabled(),
        what="the licence disabled in Shaoguan",
    )
    assert "韶关" in text(d, LICENCE + " .why")
    check_screen(d, "choose", size, shots, expect=7)
    svc.session.post("select", "api", city=city)
    wait_for(d, lambda x: x.execute_script(CITY) == city, what="the home city again")

    click(d, "#next")
    wait_for(d, lambda x: state(x) == "consent", what="consent")
    summary = text(d, "#summary")
    assert "居民身份证" in summary and svc.session.city and summary.endswith("市"), summary
    check_screen(d, "consent", size, shots, expect=5)
    click(d, "#back")  # Back from consent keeps the choice
    wait_for(d, lambda x: state(x) == "choose", what="back to choose")
    click(d, "#next")
    wait_for(d, lambda x: state(x) == "consent", what="consent again")
    click(d, "#consent")
    wait_for(d, lambda x: state(x) == "requirements", what="requirements")
    assert len(d.find_elements(By.CSS_SELECTOR, "#requirements li svg")) >= 10  # drawn do/don't pictures
    check_screen(d, "requirements", size, shots, expect=5)
    click(d, "#ready")
    wait_for(d, lambda x: state(x) == "guidance" and text(x, "#prompt"), what="a prompt")
    check_screen(d, "guidance", size, shots, expect=3)
    preview = d.find_element(By.ID, "preview").rect
    assert preview["height"] >= 0.4 * size[1] or preview["width"] >= 0.9 * size[0], preview

    svc.jump.offset += TIMEOUT_S - WARN_S + 1  # the live phase is about to time out
    wait_for(d, lambda x: x.find_element(By.ID, "warning").is_displayed(), what="the warning")
    secs = int(text(d, "#warning-seconds"))
    assert 0 < secs <= WARN_S
    assert text(d, "#warning-title") == "还需要更多时间吗？"
    check_screen(d, "warning", size, shots, expect=3)
    click(d, "#more-time")
    wait_for(d, lambda x: not x.find_element(By.ID, "warning").is_displayed(), what="more time")
    assert svc.session.state in (State.GUIDANCE, State.COUNTDOWN)

    wait_for(d, lambda x: state(x) == "countdown", timeout=60, what="the countdown")
    check_screen(d, "countdown", size, shots, expect=2)
    wait_review(svc, d)
    check_screen(d, "review", size, shots, expect=5)
    retake = d.find_element(By.ID, "retake")
    if size == (1280, 800):
        # the double tap: two taps 150 ms apart on Retake; the second must not cancel the session
        left = svc.session.cfg.max_retakes - svc.session.retakes
        time.sleep(0.5)
        ActionChains(d).move_to_element(retake).click().pause(0.15).click().perform()
        time.sleep(1.0)
        assert svc.session.state in (State.GUIDANCE, State.COUNTDOWN, State.CAPTURE), svc.session.state
        assert svc.session.cfg.max_retakes - svc.session.retakes == left - 1  # one retake, not two
        wait_review(svc, d)
    click(d, "#accept")
    wait_for(d, lambda x: state(x) == "done" and text(x, "#done-detail"), timeout=30, what="the number")
    number = text(d, "#done-detail")
    assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4} \d{4} \d[\dX]", number), number
    check_screen(d, "done", size, shots, expect=3)
    click(d, "#finish")
    wait_for(d, lambda x: state(x) == "idle", what="idle after finish")

    to_guidance(svc, d)
    svc.session.camera.failure = "unplugged in the test"
    wait_for(d, lambda x: state(x) == "failsafe", what="the failsafe screen")
    check_screen(d, "failsafe", size, shots, expect=2)
    svc.jump.offset += TIMEOUT_S + 1
    wait_for(d, lambda x: state(x) == "idle", what="idle after the failsafe")

    click(d, "#start")
    wait_for(d, lambda x: state(x) == "choose", what="choose")
    svc.jump.offset += TIMEOUT_S + 1  # nobody touches the screen: the session ends
    wait_for(
        d,
        lambda x: state(x) == "idle" and x.find_element(By.ID, "ended-message").is_displayed(),
        what="idle saying why",
    )
    assert "超时" in text(d, "#ended-message") or "无操作" in text(d, "#ended-message")
    check_screen(d, "idle-after-timeout", size, shots, expect=4)
