"""Glasses first (issue 12 item 4): glasses are seen on real photos, and only their wearers hear of glare.

The detector (kiosk/vision/glasses.py) is measured on the real photos of tests/fixtures/real/
(labels.toml: glasses = glasses | sunglasses | none, each labelled by looking at it) both ways.
Glare is painted on real faces as in tests/test_photo_glare.py: on a wearer's lens it is the
glare message; the same shine on a face without glasses is never a word about glasses, in zh or
en, in the check, in `make-photo`, or in live guidance and its hints.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from kiosk import cli
from kiosk.capture.live import LiveLoop
from kiosk.capture.rules import load_rules
from kiosk.capture.session import stuck_hint
from kiosk.photo.profiles import get_profile
from kiosk.text import pair
from kiosk.vision.analyzer import analyze_file
from kiosk.vision.glasses import GlassesDataError, parse_rules, rules
from kiosk.vision.imageio import load_image
from tests.test_photo_glare import paint

REAL = Path(__file__).parent / "fixtures" / "real"
LABELS = tomllib.loads((REAL / "labels.toml").read_text("utf-8"))["photos"]
DATA = Path(__file__).parents[1] / "kiosk" / "vision" / "data" / "glasses.toml"
GLASSES_WORDS = ("眼镜", "镜片", "glasses", "lens")
FAIL = ("眼镜片有反光，请稍调整眼镜角度", "Your glasses reflect the light: tilt them slightly")
WEARERS = ("example_3", "jianzhu_guo", "clapton_2")  # real frames: dark, tortoiseshell, metal-edged
NOT_WEARERS = ("disgust", "deepface_img16", "adams")  # shiny skin, beard and eye bags, a plain face


def _path(name: str) -> Path:
    return REAL / LABELS[name]["category"] / f"{name}.jpg"


def _says_glasses(zh: str, en: str) -> bool:
    return any(w in zh or w in en.lower() for w in GLASSES_WORDS)


def _no_glasses_words(texts: list[dict[str, str]]) -> None:
    for t in texts:
        assert not _says_glasses(t["zh"], t["en"]), t


@pytest.fixture(scope="module")
def seen(analyzer) -> dict[str, object]:
    """name -> the Glasses of the (largest) face of every single-person real photo."""
    out = {}
    for name, e in LABELS.items():
        if e["category"] == "group" or not _path(name).is_file():
            continue
        analysis, _ = analyze_file(analyzer, _path(name))
        if analysis.faces:
            out[name] = analysis.faces[0].glasses
    return out


def _counts(seen: dict, label: str) -> tuple[int, int, int]:
    """(found, missed, not measured) among the photos with this label."""
    names = [n for n in seen if LABELS[n]["glasses"] == label]
    found = sum(1 for n in names if seen[n] is not None and seen[n].worn)
    unmeasured = sum(1 for n in names if seen[n] is None)
    return found, len(names) - found - unmeasured, unmeasured


@pytest.mark.slow
def test_glasses_are_found_on_real_photos_and_not_on_faces_without_them(seen):
    """The rates of the README's "Compliance on real photos" (clear frames; sunglasses reported)."""
    found, missed, _ = _counts(seen, "glasses")
    false_found, right, _ = _counts(seen, "none")
    assert found + missed >= 12 and false_found + right >= 60  # both ways, on enough photos
    assert found / (found + missed) >= 0.9
    assert false_found / (false_found + right) <= 0.01
    sun, _, _ = _counts(seen, "sunglasses")
    assert sun >= 1  # most sunglasses are missed (README): their lower edge lies outside the rim band


@pytest.mark.slow
def test_the_verdict_holds_when_a_real_photo_is_mirrored_rolled_or_recompressed(analyzer, seen):
    """The same real photos, mirrored, rolled 20 degrees and saved again as JPEG quality 60: the
    frame's evidence is read in an eye-levelled crop, so the verdict must not depend on these."""
    import cv2

    def roll(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
        return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)

    def jpeg(rgb: np.ndarray) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 60])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

    same = changed = 0
    for name, g in seen.items():
        if g is None or LABELS[name]["glasses"] == "sunglasses":
            continue
        rgb = load_image(_path(name))
        for variant in (rgb[:, ::-1].copy(), roll(rgb), jpeg(rgb)):
            faces = analyzer.analyze(variant).faces
            if faces and faces[0].glasses is not None:
                same += faces[0].glasses.worn == g.worn
                changed += faces[0].glasses.worn != g.worn
    assert same + changed >= 200 and changed / (same + changed) <= 0.03


def test_the_verdict_follows_the_frame_on_chosen_real_photos(analyzer):
    for name in WEARERS + NOT_WEARERS:
        g = analyze_file(analyzer, _path(name))[0].faces[0].glasses
        assert g is not None and g.worn is (name in WEARERS), (name, g)
        r = rules()
        if name in WEARERS:  # every part of the evidence clears its limit
            assert g.bridge >= r.bridge_min and g.rim >= r.rim_min and g.rim_columns >= r.rim_columns_min


def test_a_face_too_small_is_not_measured_rather_than_guessed():
    rgb = np.zeros((100, 100, 3), np.uint8)
    eyes = np.array([[40.0, 50.0], [40.0 + rules().min_ied_px - 1, 50.0]])
    from kiosk.vision.glasses import detect_glasses

    assert detect_glasses(rgb, eyes) is None


def test_kiosk_analyze_json_carries_glasses(capsys):
    assert cli.main(["analyze", str(_path("jianzhu_guo")), "--json"]) == 0
    face = json.loads(capsys.readouterr().out)["faces"][0]
    assert face["glasses"]["worn"] is True
    assert set(face["glasses"]) == {"worn", "bridge", "rim", "rim_columns"}


# --- glare: only for wearers ----------------------------------------------------------------------


def _glare(tools, rgb: np.ndarray):
    from tests.test_photo_checks import checks

    return checks(tools, rgb, "id_card")["glasses_glare"]


@pytest.mark.parametrize("name", WEARERS)
def test_a_reflection_on_a_real_lens_gets_the_glare_message(tools, analyzer, name):
    rgb = load_image(_path(name))
    face = analyzer.analyze(rgb).faces[0]
    plain = _glare(tools, rgb)
    assert plain.passed and plain.details["glasses"] is True
    for eye in (0, 1):
        c = _glare(tools, paint(rgb, face, eye, 0.15, 0.2, 0.1, 0.07))
        assert not c.passed and c.outcome == "fail" and c.details["glasses"] is True
        assert (c.message_zh, c.message_en) == FAIL


def test_the_white_wall_seen_past_a_real_lens_is_no_reflection(tools):
    """compreface_face_2: his head turned, the outer edge of a lens lies over the white background;
    the lens area stops at the face oval, so only light on the face counts."""
    c = tools.check(_path("compreface_face_2"), "id_card").get("glasses_glare")
    assert c.details["glasses"] is True and c.passed and c.value == 0.0


@pytest.mark.parametrize("name", NOT_WEARERS)
def test_a_man_without_glasses_is_never_told_about_glasses(tools, analyzer, name):
    rgb = load_image(_path(name))
    face = analyzer.analyze(rgb).faces[0]
    for shone in (rgb, paint(rgb, face, 0, 0.15, 0.2, 0.1, 0.07), paint(rgb, face, 1, 0.15, 0.2, 0.1, 0.07)):
        c = _glare(tools, shone)
        assert c.passed and c.outcome == "no_glasses" and c.details["glasses"] is False
        _no_glasses_words([c.message()])


def test_the_lunasdk_man_whose_skin_shine_read_as_glare_is_not_told_to_tilt_glasses(tools, tmp_path, capsys):
    """The issue's bug, on the real photo that showed it: make-photo and check, zh and en."""
    c = tools.check(_path("disgust"), "id_card").get("glasses_glare")
    assert c.value > c.threshold  # the measure still sees the shine on his skin ...
    assert c.passed and c.details["glasses"] is False  # ... but he wears no glasses
    out = tmp_path / "photo.jpg"
    code = cli.main(["make-photo", str(_path("disgust")), "--profile", "id_card", "-o", str(out), "--json"])
    made = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    texts = [{"zh": x["message_zh"], "en": x["message_en"]} for x in made.get("checks", [])]
    assert texts  # the report was made
    _no_glasses_words(texts)


# --- live guidance --------------------------------------------------------------------------------


def _live(analyzer, rgb: np.ndarray, frames: int = 24) -> list:
    live = LiveLoop(analyzer, load_rules())
    live.start(get_profile("id_card").thresholds)
    try:
        return [live.process(rgb, i / 30) for i in range(frames)]
    finally:
        live.stop()


def test_live_guidance_asks_a_wearer_with_glare_to_tilt_the_glasses(analyzer):
    rgb = load_image(_path("jianzhu_guo"))
    face = analyzer.analyze(rgb).faces[0]
    clean = _live(analyzer, rgb)
    assert clean[-1].values["glasses"] == 1.0 and "glare" not in clean[-1].failing
    glared = _live(analyzer, paint(rgb, face, 0, 0.15, 0.2, 0.1, 0.07))
    assert "glare" in glared[-1].failing and glared[-1].values["glare"] > 0
    assert load_rules().text("tilt_glasses") == {"zh": FAIL[0], "en": FAIL[1]}


def test_live_guidance_never_speaks_of_glasses_to_a_face_without_them(analyzer):
    rgb = load_image(_path("disgust"))
    face = analyzer.analyze(rgb).faces[0]
    for frame in (rgb, paint(rgb, face, 0, 0.15, 0.2, 0.1, 0.07)):
        out = _live(analyzer, frame)
        assert all("glare" not in g.failing and "glare" not in g.values for g in out)
        assert all(g.prompt != "tilt_glasses" for g in out)
        assert out[-1].values["glasses"] == -1.0
        _no_glasses_words([g.text for g in out if g.text])


def test_the_stuck_hint_for_closed_eyes_names_glasses_only_for_a_wearer():
    wearer = stuck_hint("open_eyes", {"glasses": 1.0})[1]
    assert _says_glasses(*pair(wearer).values())
    for values in ({"glasses": -1.0}, {}):  # no glasses seen, or not measured: no word of them
        _no_glasses_words([pair(stuck_hint("open_eyes", values)[1])])
    assert _says_glasses(*pair(stuck_hint("tilt_glasses", {})[1]).values())


# --- the data file ----------------------------------------------------------------------------------


def test_the_shipped_thresholds_parse():
    assert parse_rules(tomllib.loads(DATA.read_text("utf-8"))) == rules()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["glasses"].pop("bridge_min"), "glasses.bridge_min: missing"),
        (lambda t: t["glasses"].update(rim_min="high"), "glasses.rim_min: expected a non-negative number"),
        (lambda t: t["glasses"].update(rim_rows=[0.7, 0.2]), "glasses.rim_rows: expected [low, high]"),
        (lambda t: t["glasses"].update(colour=1), "glasses.colour: unknown key"),
        (lambda t: t.update(schema_version=2), "schema_version must be 1"),
    ],
)
def test_a_bad_data_file_is_one_clear_error_naming_the_key(change, message):
    data = tomllib.loads(DATA.read_text("utf-8"))
    change(data)
    with pytest.raises(GlassesDataError, match=message.replace("[", r"\[")):
        parse_rules(data)
