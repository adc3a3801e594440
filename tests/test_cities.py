"""Every city of the province (issue 17): codes, the resolver as citizens type a city, a slip for every
city x document decoded back from the virtual printer, and a second province that is data only."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.errors import InputError
from kiosk.receipt.authority import LocalAuthority
from kiosk.receipt.cities import fold, resolve
from kiosk.receipt.issue import issue_receipt
from kiosk.receipt.layouts import LayoutError, load_layouts, parse_layouts, use_layouts
from kiosk.receipt.numbers import NumberError, verify
from kiosk.store import Store
from tests.test_receipt_support import jpeg

HAINAN = Path(__file__).parent / "fixtures" / "provinces" / "hainan.toml"

# GB/T 2260 codes of Guangdong's 21 prefecture-level cities (issue 17, checked against the NBS list)
CODES = {
    "广州市": "440100", "韶关市": "440200", "深圳市": "440300", "珠海市": "440400", "汕头市": "440500",
    "佛山市": "440600", "江门市": "440700", "湛江市": "440800", "茂名市": "440900", "肇庆市": "441200",
    "惠州市": "441300", "梅州市": "441400", "汕尾市": "441500", "河源市": "441600", "阳江市": "441700",
    "清远市": "441800", "东莞市": "441900", "中山市": "442000", "潮州市": "445100", "揭阳市": "445200",
    "云浮市": "445300",
}  # fmt: skip


@pytest.fixture(autouse=True)
def bundled_province():
    """Each test starts and ends on the bundled Guangdong file (the choice is process-wide)."""
    use_layouts()
    yield
    use_layouts()


def test_the_21_cities_of_guangdong_with_their_division_codes():
    lay = load_layouts()
    assert lay.province_zh == "广东省" and len(lay.cities) == 21
    assert {c.name_zh: c.region for c in lay.cities.values()} == CODES
    by_group = {g: sorted(c.name_zh for c in lay.cities.values() if c.group == g) for g in lay.groups}
    assert [len(by_group[g]) for g in ("prd", "east", "west", "north")] == [9, 4, 3, 5]
    assert "惠州市" in by_group["prd"] and "云浮市" in by_group["north"]
    # every city's receipt serves the ID card, and the slip names the city's own counter or a neutral text
    for c in lay.cities.values():
        assert "id_card" in lay.documents_for(c.id)
    hz = lay.layout("id_card", "huizhou")
    assert "公安专厅" in hz.use_at and "预约" in hz.use_at
    neutral = lay.layout("id_card", "yunfu").use_at
    assert neutral == lay.layout("id_card", "shaoguan").use_at and "云浮" not in neutral
    # the four cities of the first version keep their data
    sz = lay.layout("id_card", "shenzhen")
    assert sz.thumbnail and sz.number_label == "回执号"
    assert "穗好办" in lay.layout("social_security", "guangzhou").use_at
    assert "东莞" in lay.layout("exit_entry", "dongguan").use_at
    assert [c.id for c in lay.cities_for("driving_licence")] == ["shenzhen", "guangzhou", "dongguan"]


TYPED = ["深圳", "深圳市", "shenzhen", "Shenzhen", " SHENZHEN ", "ＳＨＥＮＺＨＥＮ", "Shēnzhèn",
         "Shenzhen City", "shen zhen", "广东省深圳市", "广东深圳"]  # fmt: skip


@pytest.mark.parametrize("typed", TYPED)
def test_a_city_as_citizens_type_it(typed):
    assert load_layouts().city(typed).id == "shenzhen"


def test_every_city_resolves_by_each_of_its_names_and_nothing_else_does():
    lay = load_layouts()
    for c in lay.cities.values():
        for typed in (c.id, c.name_zh, c.name_zh.removesuffix("市"), c.name_en, f"  {c.name_en.upper()} "):
            assert lay.city(typed).id == c.id, typed
    # 汕头 and 汕尾 share a character; 广东 alone, a city of another province and nothing are not cities
    assert lay.city("汕头").id == "shantou" and lay.city("汕尾").id == "shanwei"
    for bad in ("广东", "杭州", "", "   ", "市", "huizhou2"):
        with pytest.raises(InputError) as exc:
            lay.city(bad)
        assert "\n" not in str(exc.value) and "kiosk receipt cities" in str(exc.value)
    assert fold("Ｇｕａｎｇ　Ｚｈōｕ") == "guangzhou"
    # the same function the session uses on the document choices (ids and their names)
    names = {"huizhou": {"zh": "惠州市", "en": "Huizhou"}, "杭州": {}}
    assert resolve("惠州", names) == "huizhou" and resolve("杭州", names) == "杭州"
    assert resolve("x", names) is None


def test_every_city_and_document_prints_a_slip_whose_barcode_verifies_with_the_citys_code(tmp_path):
    """One slip per (city, document) the data serves, rendered once by the virtual printer."""
    from kiosk.sim.printer import open_virtual

    lay = load_layouts()
    pairs = [(c.id, p) for p in lay.slips for c in lay.cities_for(p)]
    assert len(pairs) == 21 * 3 + 3
    printer = open_virtual(keep_slips=len(pairs))  # it keeps the last few slips by default
    authority = LocalAuthority("001")
    with Store(tmp_path) as s:
        issued = [issue_receipt(s, authority, printer, p, c, jpeg()) for c, p in pairs]
    assert all(r.printed for r in issued)
    slips = printer.device.slips()
    assert len(slips) == len(pairs)
    for (cid, profile), r, slip in zip(pairs, issued, slips, strict=True):
        codes = {b.format.name: b.text for b in zxingcpp.read_barcodes(slip)}
        assert codes["Code128"] == r.number, (cid, profile)
        parsed, city = verify(codes["Code128"])  # what `kiosk receipt verify` accepts
        assert city.id == cid and parsed.region == lay.cities[cid].region and parsed.profile_id == profile


def test_huizhou_from_the_command_line(tmp_path, capsys):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg())
    png = tmp_path / "slip.png"
    state = f"--state-dir={tmp_path / 'state'}"
    argv = ["receipt", "issue", "--profile", "id_card", "--city", "惠州", "--photo", str(photo), "--json"]
    assert main([*argv, "--png", str(png), state]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["city"] == "huizhou" and out["number"][1:7] == "441300" and out["printed"]
    slip = Image.open(io.BytesIO(png.read_bytes()))
    assert {b.text for b in zxingcpp.read_barcodes(slip)} == {out["number"]}
    assert main(["receipt", "verify", out["number"], "--json", state]) == 0
    v = json.loads(capsys.readouterr().out)
    got = (v["valid"], v["region"], v["city"], v["city_zh"], v["in_store"])
    assert got == (True, "441300", "huizhou", "惠州市", True)
    # a city that is not one of the province's: one line, exit 2, and where to look
    argv = ["receipt", "issue", "--profile", "id_card", "--city", "杭州", "--photo", str(photo)]
    assert main([*argv, state]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown city '杭州'" in err and "kiosk receipt cities" in err
    assert main(["receipt", "cities", "--json", state]) == 0
    rows = json.loads(capsys.readouterr().out)["cities"]
    assert len(rows) == 21 and rows[0]["home"] and {r["region"] for r in rows} == set(CODES.values())


def test_a_number_whose_region_is_not_a_city_of_the_province_does_not_verify():
    from datetime import date

    from kiosk.receipt.numbers import format_for

    fmt = format_for("id_card")
    n = fmt.make(fmt.series("330100", "001", date(2026, 12, 2)), 1)  # 杭州: well-formed, wrong province
    with pytest.raises(NumberError, match="330100 is not a city of 广东省"):
        verify(n)


def test_a_second_province_is_data_only(tmp_path, capsys):
    """A configuration naming another province's file: cities, numbers and slips follow; no code change."""
    cfg_file = tmp_path / "kiosk.toml"
    cfg_file.write_text(f'[receipt]\nlayouts_file = "{HAINAN}"\nhome_city = "海口"\n', encoding="utf-8")
    state = f"--state-dir={tmp_path / 'state'}"
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg())
    opts = [f"--config={cfg_file}", state]
    assert main(["receipt", "cities", "--json", *opts]) == 0
    rows = json.loads(capsys.readouterr().out)["cities"]
    got = [(r["id"], r["region"], r["home"]) for r in rows]
    assert got == [("haikou", "460100", True), ("sanya", "460200", False)]
    argv = ["receipt", "issue", "--profile", "id_card", "--city", "Sanya", "--photo", str(photo), "--json"]
    assert main([*argv, *opts]) == 0
    number = json.loads(capsys.readouterr().out)["number"]
    assert number[1:7] == "460200"
    assert main(["receipt", "verify", number, *opts]) == 0 and "三亚市" in capsys.readouterr().out
    # Guangdong's cities are not this province's
    argv = ["receipt", "issue", "--profile", "id_card", "--city", "惠州", "--photo", str(photo)]
    assert main([*argv, *opts]) == 2 and "cities of 海南省" in capsys.readouterr().err
    # the session's document choices come from the same configured file
    from kiosk.capture.photo_adapter import documents
    from kiosk.receipt.wiring import cities_for_config

    docs = {d["id"]: d for d in documents(cities_for_config(load_config(cfg_file, tmp_path / "state")))}
    assert docs["id_card"]["cities"] == ["haikou", "sanya"] and docs["exit_entry"]["cities"] == ["haikou"]


def test_layout_errors_name_the_key():
    base = {
        "schema_version": 1,
        "province": {"name": {"zh": "广东省", "en": "Guangdong"}, "region": "440000"},
        "cities": {
            "a": {"name": {"zh": "甲市", "en": "A"}, "region": "440100"},
            "b": {"name": {"zh": "乙市", "en": "B"}, "region": "440200"},
        },
        "slips": {},
    }
    parse_layouts(base)
    bad = [
        ({"b": {"name": {"zh": "乙市", "en": "B"}, "region": "440100"}}, "cities.b.region: 440100 is also"),
        ({"b": {"name": {"zh": "乙市", "en": "B"}, "region": "330100"}}, "not in the province 440000"),
        ({"b": {"name": {"zh": "甲", "en": "B"}, "region": "440200"}}, "a and b are both called"),
        ({"b": {"name": {"zh": "乙市", "en": "B"}, "region": "440200", "group": "x"}}, "no \\[groups\\]"),
    ]
    for cities, match in bad:
        with pytest.raises(LayoutError, match=match):
            parse_layouts({**base, "cities": {**base["cities"], **cities}})
    with pytest.raises(LayoutError, match="home: 'c'"):
        parse_layouts({**base, "home": "c"})
    with pytest.raises(LayoutError, match="receipt.home_city: '杭州'"):
        use_layouts(None, "杭州")


@pytest.mark.parametrize("typed", ["深圳市", " SHENZHEN ", "shenzhen"])
def test_the_session_takes_the_city_as_typed_and_keeps_its_id(typed):
    """The UI posts what the citizen chose or typed; the session resolves it with the same function."""
    from kiosk.capture.photo_adapter import documents
    from kiosk.capture.session import Session, State
    from kiosk.config import SessionConfig
    from kiosk.receipt.wiring import cities_for

    s = Session(SessionConfig(), None, None, None, lambda *a: {}, documents(cities_for), lambda p: {})
    s.post("start")
    s.step()
    s.post("choose", profile="id_card", city="杭州")  # not a city of the province: ignored
    s.step()
    assert s.state is State.CHOOSE
    s.post("choose", profile="id_card", city=typed)
    s.step()
    assert s.state is State.CONSENT and s.city == "shenzhen"


@pytest.mark.browser
def test_the_city_picker_lists_21_cities_home_first_then_by_region(tmp_path, browser):
    """Headless Chromium on the real UI: the home city on top, the others in 珠三角/粤东/粤西/粤北."""
    import threading
    import time
    from dataclasses import replace

    from selenium.webdriver.common.by import By

    from kiosk.service import Service
    from tests.test_ui_browser import state, wait_for

    cfg = load_config(None, tmp_path / "state")
    home = replace(cfg.receipt, home_city="惠州")  # a terminal in Huizhou
    cfg = replace(cfg, session=replace(cfg.session, ui_port=0), receipt=home)
    svc = Service(cfg, sim=True).start()
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    driver = browser
    try:
        driver.get(svc.ui.url)
        wait_for(driver, lambda d: state(d) == "idle", what="the idle screen")
        time.sleep(0.6)  # the UI ignores taps for 400 ms after a screen appears (tap safety)
        driver.find_element(By.ID, "start").click()
        wait_for(driver, lambda d: state(d) == "choose", what="the document choice")
        picker = driver.execute_script(
            "const s = document.getElementById('city');"
            "return [s.options.length, s.value, s.options[0].text, s.options[0].parentNode.tagName,"
            " [...s.querySelectorAll('optgroup')].map(g => g.label)]"
        )
        assert picker == [21, "huizhou", "惠州市", "SELECT", ["珠三角", "粤东", "粤西", "粤北"]]
    finally:
        svc.stop()
        thread.join(10)
        svc.close()
