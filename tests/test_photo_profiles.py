"""Profiles data file: schema validation names the bad key; the bundled file is complete."""

from __future__ import annotations

import copy
import tomllib

import pytest

from kiosk.photo.checks import FACE_CHECKS
from kiosk.photo.profiles import (
    PROFILES_FILE,
    RULE_CHECKS,
    ProfileError,
    get_profile,
    load_messages,
    load_profiles,
    parse_profiles,
)

DESIGN_IDS = (
    "single_face",
    "face_size",
    "face_centered",
    "head_top_margin",
    "eye_line",
    "yaw",
    "pitch",
    "roll",
    "eyes_open",
    "mouth_closed",
    "illumination_uniformity",
    "exposure",
    "sharpness",
    "background_uniformity",
    "background_color",
    "resolution",
    "file_size",
)


@pytest.fixture()
def raw() -> dict:
    return tomllib.loads(PROFILES_FILE.read_text(encoding="utf-8"))


def test_bundled_profiles_match_the_spec_table():
    p = load_profiles()
    assert set(p) == {"id_card", "social_security", "driving_licence", "exit_entry"}
    assert (p["id_card"].size, p["id_card"].dpi, p["id_card"].file_kb) == ((358, 441), 350, (14, 20))
    assert (p["driving_licence"].size, p["driving_licence"].dpi) == ((260, 378), 300)
    assert p["id_card"].priority[0] == "eye_line"  # the eye line wins for the ID card
    assert p["exit_entry"].rules["inter_eye"].min == pytest.approx(0.23 * 354)
    for prof in p.values():
        assert prof.source and prof.version and prof.document_zh and prof.document_en
        assert prof.backgrounds[0].id == "white"


def test_every_check_id_has_messages_in_both_languages():
    msgs = load_messages()
    for cid in (*DESIGN_IDS, *FACE_CHECKS, *RULE_CHECKS.values(), "white_clothing", "source_resolution"):
        assert "pass" in msgs[cid], cid
        assert any(k != "pass" for k in msgs[cid]), cid
        for text in msgs[cid].values():
            assert text["zh"] and text["en"]
    assert msgs["roll"]["fail"]["zh"] == "请把头摆正"


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["profiles"]["id_card"].__setitem__("dpii", 350), "profiles.id_card.dpii: unknown key"),
        (lambda d: d["profiles"]["id_card"].__setitem__("size", [358]), "profiles.id_card.size"),
        (lambda d: d["profiles"]["id_card"].__setitem__("file_kb", [20, 14]), "profiles.id_card.file_kb"),
        (
            lambda d: d["profiles"]["id_card"]["geometry"]["face_width"].__setitem__("min", "193"),
            "profiles.id_card.geometry.face_width.min",
        ),
        (
            lambda d: d["profiles"]["id_card"]["geometry"]["face_width"].__setitem__("min", 300),
            "profiles.id_card.geometry.face_width.min: above",
        ),
        (
            lambda d: d["profiles"]["id_card"].__setitem__("backgrounds", ["pink"]),
            "profiles.id_card.backgrounds[0]",
        ),
        (
            lambda d: d["profiles"]["id_card"].__setitem__("priority", ["eye_line"]),
            "profiles.id_card.priority",
        ),
        (lambda d: d["defaults"]["thresholds"].__setitem__("yaw_max", 5), "defaults.thresholds.yaw_max"),
        (lambda d: d["defaults"]["thresholds"].pop("roll_max_deg"), "thresholds.roll_max_deg: missing"),
        (lambda d: d["colors"]["white"].__setitem__("fill", [255, 255, 300]), "colors.white.fill[2]"),
        (
            lambda d: d["profiles"]["id_card"]["geometry"].__setitem__("chin_width", {"min": 1}),
            "profiles.id_card.geometry.chin_width",
        ),
        (lambda d: d.__setitem__("schema_version", 2), "schema_version"),
    ],
)
def test_schema_errors_name_the_key(raw, edit, key):
    data = copy.deepcopy(raw)
    edit(data)
    with pytest.raises(ProfileError) as err:
        parse_profiles(data)
    assert key in str(err.value)


def test_a_city_variant_is_a_data_change(tmp_path):
    text = (
        PROFILES_FILE.read_text(encoding="utf-8")
        + """
[profiles.id_card_shenzhen]
version = "2024.1"
document = { zh = "居民身份证", en = "Resident identity card" }
source = "test variant"
cities = ["440300"]
size = [358, 441]
dpi = 350
file_kb = [14, 30]
backgrounds = ["white"]
priority = ["face_width", "head_top"]
[profiles.id_card_shenzhen.geometry.face_width]
min = 190
max = 224
[profiles.id_card_shenzhen.geometry.head_top]
min = 7
max = 21
[profiles.id_card_shenzhen.thresholds]
roll_max_deg = 5.0
"""
    )
    f = tmp_path / "profiles.toml"
    f.write_text(text, encoding="utf-8")
    p = get_profile("id_card_shenzhen", f)
    assert p.cities == ("440300",)
    assert p.thresholds["roll_max_deg"] == 5.0
    assert p.thresholds["yaw_max_deg"] == load_profiles()["id_card"].thresholds["yaw_max_deg"]


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(ProfileError, match="known: driving_licence, exit_entry, id_card, social_security"):
        get_profile("passport")
