"""The bundled CJK font: `kiosk demo` and the slip render Chinese on a machine with no CJK font.

The system fonts are hidden two ways: in-process by emptying kiosk.fonts.SYSTEM_FONTS, and for the
whole command by mounting an empty tmpfs over /usr/share/fonts in a private mount namespace (root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kiosk.fonts as fonts
from kiosk.fonts import make_subset
from kiosk.sim.printer import find_cjk_font, render

TTLib = pytest.importorskip("fontTools.ttLib", reason="fontTools (test extra) reads the font's cmap")


@pytest.fixture
def no_system_fonts(monkeypatch):
    monkeypatch.setattr(fonts, "SYSTEM_FONTS", ())


def bundled_cmap() -> dict[int, str]:
    return TTLib.TTFont(str(fonts.bundled_font_path())).getBestCmap()


def test_bundled_font_is_small_licensed_and_packaged():
    path = fonts.bundled_font_path()
    assert path.is_file() and path.stat().st_size < 2_000_000
    licence = path.with_name("LICENSE.OFL").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence and "Adobe" in licence
    name = TTLib.TTFont(str(path))["name"]
    assert name.getDebugName(1) == "Noto Sans Mono CJK SC" and "Open Font License" in name.getDebugName(13)


def test_subset_covers_gb2312_level_1_and_every_character_of_our_data():
    cmap = bundled_cmap()
    level1 = {
        bytes((hi, lo)).decode("gb2312")
        for hi in range(0xB0, 0xD8)
        for lo in range(0xA1, 0xFF)
        if (hi, lo) <= (0xD7, 0xF9)
    }
    assert len(level1) == 3755
    missing = sorted(c for c in level1 | make_subset.data_chars() if ord(c) not in cmap)
    # a new Chinese string outside the subset: rerun `python kiosk/fonts/make_subset.py`
    assert not missing, f"not in the bundled font: {''.join(missing)}"
    assert all(ord(c) in cmap for c in "0123456789ABCxyz：，。（）【】")


def test_system_font_preferred_bundled_font_as_fallback(no_system_fonts, tmp_path, monkeypatch):
    assert fonts.cjk_font_path() == fonts.bundled_font_path() == find_cjk_font()
    system = tmp_path / "NotoSansCJK-Regular.ttc"
    system.write_bytes(b"")
    monkeypatch.setattr(fonts, "SYSTEM_FONTS", (str(tmp_path / "absent.ttc"), str(system)))
    assert fonts.cjk_font_path() == system


def _glyph(ch: str) -> np.ndarray:
    """The virtual printer's rendering of one character (GB18030 in Chinese mode, FS &)."""
    im = render(b"\x1b@\x1c&" + ch.encode("gb18030") + b"\n")[0]
    return np.asarray(im.convert("L")) < 128


def test_slip_characters_are_not_tofu_without_system_fonts(no_system_fonts):
    absent = "龘"  # GB18030, not GB2312: the font's .notdef box
    assert ord(absent) not in bundled_cmap()
    tofu = _glyph(absent)
    glyphs = [_glyph(ch) for ch in "惠州市"]
    for g in glyphs:
        assert g.sum() > 20 and not np.array_equal(g, tofu)
    assert len({g.tobytes() for g in glyphs}) == 3  # three different characters, three different bitmaps
    assert _glyph("A").sum() > 5 and not np.array_equal(_glyph("A"), _glyph("B"))


def test_a_whole_slip_renders_with_the_bundled_font(no_system_fonts, tmp_path):
    """`kiosk receipt render` path: compose the real slip bytes and decode them back on the printer."""
    from datetime import datetime

    from kiosk.receipt.layouts import load_layouts
    from kiosk.receipt.slip import SlipData, compose

    layouts = load_layouts()
    city = layouts.cities_for("id_card")[0]
    layout = layouts.layout("id_card", city.id)
    slip = SlipData("X", "居民身份证", city.name_zh, "0001", datetime(2026, 12, 2, 9, 0), layout)
    pages = render(compose(slip))
    assert len(pages) == 1 and (np.asarray(pages[0].convert("L")) < 128).sum() > 1000


def _hidden_fonts_shell() -> list[str]:
    """A shell in a private mount namespace where /usr/share/fonts is an empty tmpfs."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("hiding the system fonts needs root (unshare -m, mount tmpfs)")
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /usr/share/fonts && ls /usr/share/fonts | wc -l"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or probe.stdout.strip() != "0":
        pytest.skip(f"cannot mount over /usr/share/fonts here: {probe.stderr.strip()}")
    return ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /usr/share/fonts && exec "$@"', "sh"]


@pytest.mark.slow
def test_kiosk_demo_with_no_system_font_at_all(tmp_path):
    """The README's first command on a machine without fonts-noto-cjk: a compliant photo and a slip."""
    shell = _hidden_fonts_shell()
    out = tmp_path / "demo"
    kiosk = str(Path(sys.executable).with_name("kiosk"))  # the installed entry point, as in the README
    cmd = [kiosk, "demo", "--json", "--out", str(out), "--state-dir", str(tmp_path)]
    proc = subprocess.run(shell + cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["compliant"] is True and Path(report["slip"]).is_file()
    assert (out / "photo.jpg").is_file()
    assert "no CJK font" not in proc.stderr


def test_the_touchscreen_falls_back_to_the_bundled_font():
    """style.css names the bundled font after the system ones; the UI server serves it."""
    import http.client

    from kiosk.capture.hub import Hub
    from kiosk.ui.server import STATIC, UiServer

    css = (STATIC / "style.css").read_text(encoding="utf-8")
    assert 'url("/fonts/cjk.otf")' in css and '"Kiosk CJK", sans-serif' in css
    ui = UiServer(Hub(), lambda *a, **k: None, port=0).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=5)
        conn.request("GET", "/fonts/cjk.otf")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Type") == "font/otf"
        assert resp.read() == fonts.bundled_font_path().read_bytes()
    finally:
        ui.close()


BROWSER_PROBE = """
import json, sys, tempfile
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from kiosk.capture.hub import Hub
from kiosk.ui.server import UiServer

ui = UiServer(Hub(), lambda *a, **k: None, port=0).start()
opts = Options()
opts.binary_location = sys.argv[1]
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--user-data-dir=" + tempfile.mkdtemp()):
    opts.add_argument(flag)
driver = webdriver.Chrome(service=Service(sys.argv[2]), options=opts)
try:
    driver.set_script_timeout(30)
    driver.get(f"http://127.0.0.1:{ui.port}/")
    print(json.dumps(driver.execute_async_script('''
const done = arguments[arguments.length - 1];
const fam = getComputedStyle(document.body).fontFamily;
document.fonts.ready.then(() => document.fonts.load("48px " + fam, "惠州市")).then(loaded => {
  const c = document.createElement("canvas"); c.width = c.height = 64;
  const x = c.getContext("2d"), px = [];
  for (const ch of ["惠", "州", "龘"]) {  // 龘 is not in the subset: the .notdef box
    x.fillStyle = "#fff"; x.fillRect(0, 0, 64, 64); x.fillStyle = "#000";
    x.font = "48px " + fam; x.fillText(ch, 4, 52);
    px.push(Array.from(x.getImageData(0, 0, 64, 64).data.filter((v, i) => i % 4 == 0)).join());
  }
  done({loaded: loaded.map(f => f.family), differ: px[0] != px[1], tofu: px[0] == px[2] || px[1] == px[2]});
}).catch(e => done({error: String(e)}));
''')))
finally:
    driver.quit()
    ui.close()
"""


@pytest.mark.browser
def test_the_touchscreen_draws_chinese_in_chromium_without_a_cjk_font(tmp_path):
    """Chromium with Latin fonts only (what its package brings): the screen's Chinese comes from
    /fonts/cjk.otf, two characters draw differently and neither is the .notdef box."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(driver).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver")
    cjk_dirs = [
        d for d in ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/wqy") if Path(d).is_dir()
    ]
    hide = " && ".join(f"mount -t tmpfs none {d}" for d in cjk_dirs) or "true"
    shell = _hidden_fonts_shell()
    shell[4] = shell[4].replace("mount -t tmpfs none /usr/share/fonts", hide)
    left = subprocess.run([*shell, "fc-list", ":lang=zh", "file"], capture_output=True, text=True)
    if left.stdout.strip():
        pytest.skip(f"a CJK font outside the hidden folders: {left.stdout.splitlines()[0]}")
    probe = tmp_path / "probe.py"
    probe.write_text(BROWSER_PROBE, encoding="utf-8")
    proc = subprocess.run(
        [*shell, sys.executable, str(probe), chromium, driver], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"loaded": ["Kiosk CJK"], "differ": True, "tofu": False}


@pytest.mark.slow
def test_make_subset_reproduces_the_bundled_font(tmp_path):
    """The committed font is what make_subset.py makes from Debian's Noto Sans CJK (same characters)."""
    if not make_subset.SOURCE.is_file():
        pytest.skip(f"{make_subset.SOURCE} is not installed (fonts-noto-cjk)")
    out = tmp_path / "subset.otf"
    assert make_subset.main(["-o", str(out)]) == 0
    made = TTLib.TTFont(str(out))
    assert set(made.getBestCmap()) == set(bundled_cmap())
    assert made["maxp"].numGlyphs == TTLib.TTFont(str(fonts.bundled_font_path()))["maxp"].numGlyphs
