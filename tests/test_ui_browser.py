"""A full simulated session driven through the real UI in headless Chromium (Debian's chromium and
chromium-driver): what the citizen sees at each step, and that the touches drive the service."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import CHROMEDRIVER, CHROMIUM

pytestmark = pytest.mark.browser


@pytest.fixture
def service(start_service):
    return start_service(steady_s=0.5, countdown_s=1.0, done_s=2.0)


def wait_for(driver, condition, timeout=30.0, what=""):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except Exception:
        state = driver.execute_script("return document.body.dataset.state")
        pytest.fail(f"timed out waiting for {what} (screen state {state})")


def state(driver):
    return driver.execute_script("return document.body.dataset.state")


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def image_size(driver, css):
    return driver.execute_script(
        "const i = document.querySelector(arguments[0]);"
        "return i.complete ? [i.naturalWidth, i.naturalHeight] : null",
        css,
    )


def test_a_whole_session_through_the_touchscreen(service, browser, tmp_path):
    b = browser
    b.get(service.ui.url)
    wait_for(
        b, lambda d: state(d) == "idle" and text(d, "#start") == "开始拍照", what="the idle screen in Chinese"
    )
    time.sleep(0.5)  # touches within 400 ms of a screen appearing are ignored (tap safety)
    b.find_element(By.ID, "lang-en").click()
    wait_for(b, lambda d: text(d, "#start") == "Start", what="English")
    for button in b.find_elements(By.CSS_SELECTOR, "#screen-idle button, header button"):
        assert button.size["height"] >= 56  # touch targets
    assert b.find_element(By.ID, "start").size["height"] >= 96
    b.find_element(By.ID, "start").click()

    wait_for(
        b,
        lambda d: state(d) == "choose" and len(d.find_elements(By.CSS_SELECTOR, "button.doc")) >= 4,
        what="the document choice",
    )
    docs = {e.get_attribute("data-id"): e.text for e in b.find_elements(By.CSS_SELECTOR, "button.doc")}
    assert docs["id_card"] == "Resident identity card"
    # the city of the receipt, by its name in the chosen language
    assert b.find_element(By.ID, "city").size["height"] >= 56  # a touch target, like the buttons
    city = Select(b.find_element(By.ID, "city"))
    assert "Guangzhou" in [o.text for o in city.options]
    city.select_by_visible_text("Guangzhou")
    wait_for(b, lambda d: service.session.city == "guangzhou", what="the city selected in the session")
    time.sleep(0.5)  # taps within the guard after a change are ignored
    b.find_element(By.CSS_SELECTOR, 'button.doc[data-id="id_card"]').click()
    card = (By.CSS_SELECTOR, 'button.doc[data-id="id_card"]')
    wait_for(b, lambda d: d.find_element(*card).get_attribute("aria-pressed") == "true", what="chosen")
    b.find_element(By.ID, "next").click()
    wait_for(b, lambda d: state(d) == "consent", what="the privacy notice")
    assert "photo" in text(b, "#screen-consent .notice")
    assert text(b, "#summary") == "Resident identity card · Guangzhou"  # the choice stays in view
    time.sleep(0.5)
    b.find_element(By.ID, "consent").click()
    wait_for(b, lambda d: state(d) == "requirements", what="what the photo needs")
    assert "hat" in text(b, "#requirements").lower()
    time.sleep(0.5)
    b.find_element(By.ID, "ready").click()

    wait_for(b, lambda d: state(d) in ("guidance", "countdown") and text(d, "#prompt"), what="a prompt")
    prompts = set()
    outline_seen = False
    deadline = time.monotonic() + 60
    while state(b) in ("guidance", "countdown") and time.monotonic() < deadline:
        p = text(b, "#prompt")
        if p:
            prompts.add(p)
        outline_seen |= bool(b.find_element(By.ID, "outline").get_attribute("points"))
        time.sleep(0.1)
    assert outline_seen, "the face outline was never drawn"
    assert "Come a little closer" in prompts and "Perfect, hold it" in prompts, prompts
    assert all(not any("\u4e00" <= ch <= "\u9fff" for ch in p) for p in prompts)  # English as chosen

    wait_for(
        b,
        lambda d: state(d) == "review" and image_size(d, "#final") == [358, 441],
        timeout=30,
        what="the final photo",
    )
    wait_for(b, lambda d: (image_size(d, "#live-review") or [0])[0] == 640, what="the live picture")
    assert text(b, "#retakes-left") == "2" and b.find_element(By.ID, "retake").is_enabled()
    b.save_screenshot(str(tmp_path / "review.png"))
    time.sleep(0.5)
    b.find_element(By.ID, "retake").click()
    wait_for(b, lambda d: state(d) in ("guidance", "countdown"), what="guidance after a retake")
    wait_for(
        b,
        lambda d: state(d) == "review" and image_size(d, "#final") == [358, 441],
        timeout=60,
        what="the second photo",
    )
    assert text(b, "#retakes-left") == "1"
    time.sleep(0.5)
    b.find_element(By.ID, "accept").click()

    wait_for(
        b,
        lambda d: state(d) == "done" and text(d, "#done-label") == "Image number:",
        what="the number",
    )
    number = text(b, "#done-detail").replace(" ", "")  # shown grouped 4-4-4-4-4-2
    record = service.receipts.store.number(number)
    assert record is not None and record.city == "guangzhou" and record.profile_id == "id_card"
    assert not b.find_element(By.ID, "done-fault").is_displayed()  # printed, no fault to report
    assert "receipt slip" in text(b, "#done-take")
    time.sleep(0.5)
    b.find_element(By.ID, "finish").click()  # or wait: done_s
    wait_for(
        b,
        lambda d: state(d) == "idle" and text(d, "#start") == "开始拍照",
        timeout=10,
        what="idle again, in Chinese for the next citizen",
    )
    assert service.session.photo is None and service.ui.hub.photo is None  # wiped
    assert b.execute_script("return document.getElementById('final').getAttribute('src')").startswith("data:")


def test_chromium_and_its_driver_are_installed():
    """CI must install them (apt: chromium chromium-driver): a missing browser is a failure, not a skip."""
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
