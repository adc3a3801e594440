"""Guidance: the prompt order, value and time hysteresis, the steady timer, the policy file."""

from __future__ import annotations

import copy
import tomllib
from types import SimpleNamespace

import numpy as np
import pytest

from kiosk.capture.guidance import FrameMeasures, Guide
from kiosk.capture.rules import RULES_FILE, RulesError, load_rules, parse_rules
from kiosk.photo.profiles import get_profile
from kiosk.sim.scene import REACTIONS

GOOD = {
    "faces": 1.0,
    "face_width": 0.33,
    "offset_x": 0.0,
    "offset_y": 0.0,
    "roll": 0.0,
    "yaw": 0.0,
    "pitch": 0.0,
    "eyes": 0.3,
    "mouth": 0.03,
    "balance": 0.0,
    "exposure": 140.0,
}
FACE = SimpleNamespace(landmarks=np.full((468, 3), 100.0))
DT = 1 / 30


@pytest.fixture
def rules():
    return load_rules().for_profile(get_profile("id_card").thresholds)


def frame(**changes) -> FrameMeasures:
    values = {**GOOD, **changes}
    face = None if values["faces"] == 0 else FACE
    if face is None:
        values = {"faces": 0.0}
    return FrameMeasures(faces=int(values["faces"]), width=640, height=480, face=face, values=values)


def run(guide: Guide, t0: float, seconds: float, **changes):
    """Feed the same measures for `seconds`; returns the last guidance and the next time."""
    g = None
    t = t0
    for _ in range(max(1, round(seconds / DT))):
        g = guide.update(frame(**changes), t)
        t += DT
    return g, t


def test_one_prompt_at_a_time_in_priority_order(rules):
    guide = Guide(rules)
    bad = dict(
        face_width=0.15,
        offset_x=-0.12,
        offset_y=0.15,
        roll=9.0,
        yaw=8.0,
        pitch=-7.0,
        eyes=0.1,
        mouth=0.2,
        balance=0.3,
        exposure=60.0,
    )
    expected = [
        "come_closer",
        "move_left",
        "move_up",
        "straighten_head",
        "face_camera",
        "chin_up",
        "open_eyes",
        "close_mouth",
        "uneven_light",
        "uneven_light",
    ]
    fixes = [
        "face_width",
        "offset_x",
        "offset_y",
        "roll",
        "yaw",
        "pitch",
        "eyes",
        "mouth",
        "balance",
        "exposure",
    ]
    t = 0.0
    seen = []
    for fix in fixes:
        g, t = run(guide, t, 0.5, **bad)
        seen.append(g.prompt)
        assert g.failing[0] == {
            "face_width": "distance",
            "offset_x": "centre_x",
            "offset_y": "centre_y",
            "balance": "light_balance",
        }.get(fix, fix)
        del bad[fix]
    assert seen == expected
    g, t = run(guide, t, 0.5, **bad)
    assert g.prompt == "perfect" and g.ready and g.text["zh"] and g.text["en"]


def test_no_face_and_several_faces_come_first(rules):
    guide = Guide(rules)
    g, t = run(guide, 0.0, 0.5, faces=0)
    assert g.prompt == "no_face" and g.outline is None
    g, t = run(guide, t, 0.5, faces=2, roll=20.0)
    assert g.prompt == "many_faces"


def test_value_hysteresis_no_flicker_between_enter_and_exit(rules):
    guide = Guide(rules)
    limit = get_profile("id_card").thresholds["roll_max_deg"]
    enter, exit_ = 0.6 * limit, 0.45 * limit  # as in guidance.toml
    g, t = run(guide, 0.0, 0.5, roll=enter + 0.3)
    assert g.prompt == "straighten_head"
    for v in (enter - 0.2, exit_ + 0.2, enter - 0.1, exit_ + 0.1):  # wobbling inside the band: still failing
        g, t = run(guide, t, DT, roll=v)
        assert g.prompt == "straighten_head" and "roll" in g.failing
    g, t = run(guide, t, DT, roll=exit_ - 0.2)
    assert "roll" not in g.failing
    for v in (exit_ + 0.5, enter - 0.1, -(enter - 0.1)):  # and now passing inside the band: still passing
        g, t = run(guide, t, DT, roll=v)
        assert "roll" not in g.failing and g.prompt == "perfect"


def test_time_hysteresis_a_glitch_shorter_than_confirm_shows_no_prompt(rules):
    guide = Guide(rules)
    g, t = run(guide, 0.0, 1.0)
    assert g.prompt == "perfect"
    g, t = run(guide, t, 2 * DT, yaw=9.0)  # two frames: shorter than confirm_s
    assert g.prompt == "perfect" and not g.ready and g.steady_s == 0.0
    g, t = run(guide, t, 2 * DT)
    assert g.prompt == "perfect" and g.ready
    g, t = run(guide, t, rules.confirm_s + 2 * DT, yaw=9.0)
    assert g.prompt == "face_camera"


def test_steady_timer_counts_only_while_everything_holds(rules):
    guide = Guide(rules)
    g, t = run(guide, 0.0, 0.9)
    assert g.ready and g.steady_s == pytest.approx(0.9 - DT, abs=DT)
    g, t = run(guide, t, DT, mouth=0.3)
    assert not g.ready and g.steady_s == 0.0
    g, t = run(guide, t, 0.5)
    assert g.steady_s == pytest.approx(0.5 - DT, abs=DT)


def test_motion_is_measured_from_the_face_centre_and_asks_to_hold_still(rules):
    guide = Guide(rules)
    t, g = 0.0, None
    for i in range(30):  # swinging sideways by 3 % of the width each frame: 0.9 widths per second
        g = guide.update(frame(offset_x=0.015 * (-1) ** i), t)
        t += DT
    assert g.values["motion"] > 0.5 and g.prompt == "hold_still"
    g, t = run(guide, t, 1.0)
    assert g.values["motion"] < 0.05 and g.prompt == "perfect"


def test_guidance_is_stricter_than_the_profile_and_follows_its_thresholds():
    base = load_rules()
    loose = base.for_profile({**get_profile("id_card").thresholds, "roll_max_deg": 20.0})
    strict = base.for_profile(get_profile("id_card").thresholds)
    g, _ = run(Guide(loose), 0.0, 0.5, roll=10.0)
    assert "roll" not in g.failing
    g, _ = run(Guide(strict), 0.0, 0.5, roll=10.0)
    assert g.prompt == "straighten_head"
    for check in strict.checks:
        for band in check.bands:
            if check.measure in ("roll", "yaw", "pitch") and band.kind in ("abs", "high"):
                assert band.enter < get_profile("id_card").thresholds[f"{check.measure}_max_deg"]


def test_prompt_directions_match_how_a_person_moves():
    """A face on the image's left belongs to someone too far to their right: "move to your left",
    which moves them to the image's right (the camera is not a mirror). The simulated citizen
    obeys the same physics, so a wrong sign here would make the demo diverge."""
    rules = load_rules().for_profile(get_profile("id_card").thresholds)
    cases = [
        ({"offset_x": -0.1}, "move_left", "x", +1),
        ({"offset_x": 0.1}, "move_right", "x", -1),
        ({"face_width": 0.15}, "come_closer", "distance", -1),
        ({"face_width": 0.6}, "step_back", "distance", +1),
        ({"pitch": -9.0}, "chin_up", "pitch", +1),
        ({"pitch": 9.0}, "chin_down", "pitch", -1),
        ({"offset_y": 0.15}, "move_up", "y", -1),
        ({"offset_y": -0.15}, "move_down", "y", +1),
    ]
    for changes, prompt, field, sign in cases:
        g, _ = run(Guide(rules), 0.0, 0.5, **changes)
        assert g.prompt == prompt
        assert REACTIONS[prompt][:2] == (field, sign)


def test_every_prompt_has_chinese_and_english_text():
    rules = load_rules()
    used = {b.prompt for c in rules.checks for b in c.bands} | {"perfect"}
    assert used <= set(rules.prompts)
    for pid in used:
        assert rules.prompts[pid]["zh"] and rules.prompts[pid]["en"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rules.prompts[pid]["zh"])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["check"][5]["abs"].update(exit=2.0), "check roll.abs: exit must be <= enter"),
        (lambda d: d["check"][2]["low"].update(exit=0.1), "check distance.low: exit must be >= enter"),
        (lambda d: d["check"][0].update(measure="smile"), "check no_face.measure: expected one of"),
        (
            lambda d: d["check"][3]["low"].update(prompt="dance"),
            "check centre_x.low.prompt: 'dance' has no text",
        ),
        (lambda d: d["lighting"].update(start=2), "lighting.start: must be between 0 and 1"),
        (lambda d: d.update(schema_version=9), "schema_version: expected 1"),
    ],
)
def test_policy_file_errors_name_the_key(mutate, message):
    data = tomllib.loads(RULES_FILE.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    mutate(data)
    with pytest.raises(RulesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rules(data)


def test_a_profile_threshold_missing_is_an_error():
    with pytest.raises(RulesError, match="profile threshold 'roll_max_deg'"):
        load_rules().for_profile({})
