"""The session state machine: every state, every timeout, retake limits, a camera failing
mid-session, buttons, and the wipe of the citizen's data. Fakes stand in for the camera, the
live loop and the photo engine so that each rule is exercised alone (the demo test runs them all
for real)."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.capture.guidance import Guidance
from kiosk.capture.photo_adapter import CaptureResult
from kiosk.capture.session import (
    BUTTONS,
    CAMERA_SORRY,
    SORRY,
    SPECS,
    TRANSITIONS,
    Session,
    State,
    StateSpec,
    check_specs,
)
from kiosk.config import SessionConfig
from kiosk.hw.camera import CameraError, Frame
from kiosk.photo.results import CheckReport, CheckResult

S = State
DOCS = [
    {"id": "id_card", "zh": "居民身份证", "en": "ID card", "cities": []},
    {"id": "local", "zh": "本地", "en": "Local", "cities": ["杭州"]},
]
CFG = SessionConfig(
    steady_s=1.0,
    countdown_s=3.0,
    max_retakes=2,
    idle_timeout_s=60.0,
    guidance_timeout_s=90.0,
    done_s=8.0,
    failsafe_s=3.0,
)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class FakeCamera:
    def __init__(self):
        self.fail: str | None = None
        self.n = 0

    def frame(self):
        if self.fail:
            raise CameraError(self.fail)
        self.n += 1
        return Frame(np.full((48, 64, 3), self.n % 255, np.uint8), self.n / 30, self.n)

    def still(self):
        if self.fail:
            raise CameraError(self.fail)
        return np.zeros((96, 128, 3), np.uint8)


class FakeLive:
    def __init__(self):
        self.ready = False
        self.since = None
        self.last = None
        self.started = 0
        self.stopped = 0
        self.thresholds = None

    def start(self, thresholds):
        self.started += 1
        self.thresholds = thresholds
        self.since = None

    def stop(self):
        self.stopped += 1
        self.last = None

    def process(self, rgb, t):
        if self.ready:
            self.since = t if self.since is None else self.since
        else:
            self.since = None
        steady = t - self.since if self.since is not None else 0.0
        self.last = Guidance(
            "perfect" if self.ready else "come_closer",
            None,
            [] if self.ready else ["distance"],
            self.ready,
            steady,
            {},
            None,
            {},
        )
        return self.last


class FakeMaker:
    def __init__(self):
        self.compliant = True
        self.error: Exception | None = None
        self.made = 0

    def make(self, still, profile):
        if self.error:
            raise self.error
        self.made += 1
        if self.compliant:
            report = CheckReport(profile, "test", [CheckResult("yaw", 1.0, [-10, 10], True, "pass")])
            return CaptureResult(profile, b"\xff\xd8photo%d" % self.made, report)
        report = CheckReport(profile, "test", [CheckResult("mouth_closed", 0.3, 0.1, False, "fail")])
        return CaptureResult(profile, b"bad", report)


@pytest.fixture
def rig():
    clock, cam, live, maker = Clock(), FakeCamera(), FakeLive(), FakeMaker()
    handed = []

    def hand_over(jpeg, profile, city):
        handed.append((jpeg, profile, city))
        return {"photo": "/x.jpg", "number": None}

    s = Session(CFG, cam, live, maker, hand_over, DOCS, lambda p: {"profile": p}, clock=clock)
    s.rig = (clock, cam, live, maker, handed)
    return s


def advance(s: Session, seconds: float, dt: float = 0.1) -> None:
    clock = s.rig[0]
    for _ in range(round(seconds / dt)):
        clock.t += dt
        s.step()


def to_guidance(s: Session, profile: str = "id_card", city: str = "") -> None:
    s.post("start")
    s.step()
    s.post("choose", profile=profile, city=city)
    s.step()
    s.post("consent")
    s.step()
    assert s.state is S.REQUIREMENTS
    s.post("accept")
    s.step()
    assert s.state is S.GUIDANCE


def to_review(s: Session) -> None:
    s.rig[2].ready = True
    advance(s, CFG.steady_s + 0.2)
    assert s.state is S.COUNTDOWN
    advance(s, CFG.countdown_s + 0.1)
    assert s.state is S.REVIEW


def test_happy_path_through_every_state_and_back_to_idle(rig):
    s = rig
    clock, cam, live, maker, handed = s.rig
    assert s.state is S.IDLE and s.hub.state["state"] == "idle"
    to_guidance(s)
    assert live.thresholds == {"profile": "id_card"}
    advance(s, 2.0)
    assert s.state is S.GUIDANCE and s.hub.state["guidance"]["prompt"] == "come_closer"
    live.ready = True
    advance(s, 0.5)
    assert s.state is S.GUIDANCE  # not steady long enough yet
    advance(s, 0.7)
    assert s.state is S.COUNTDOWN and 2.0 < s.hub.state["countdown"] <= 3.0
    advance(s, CFG.countdown_s + 0.1)
    assert s.state is S.REVIEW
    assert s.hub.photo == b"\xff\xd8photo1" and s.hub.state["photo"]["compliant"] is True
    assert s.hub.frame is not None  # the live picture next to the final one
    s.post("accept")
    s.step()
    s.step()
    assert s.state is S.DONE and handed == [(b"\xff\xd8photo1", "id_card", "")]
    assert s.hub.state["result"] == {"photo": "/x.jpg", "number": None}
    advance(s, CFG.done_s + 0.1)
    assert s.state is S.IDLE
    states = [h[1] for h in s.history]
    assert states == [
        "choose",
        "consent",
        "requirements",
        "guidance",
        "countdown",
        "capture",
        "review",
        "handover",
        "done",
        "idle",
    ]


def test_leaving_wipes_the_citizens_frames_and_photo(rig):
    s = rig
    to_guidance(s)
    to_review(s)
    photo = s.photo
    assert photo is not None and photo.jpeg
    s.post("cancel")
    s.step()
    assert s.state is S.IDLE
    assert s.photo is None and s.frame is None and s.still is None and s.profile is None
    assert photo.jpeg is None  # the bytes object is dropped, not just the reference
    assert s.hub.photo is None and s.hub.frame is None and s.hub.state["photo"] is None
    assert s.rig[2].stopped >= 1  # lights back to idle, tracking reset


@pytest.mark.parametrize(
    "state, seconds",
    [
        (S.CHOOSE, CFG.idle_timeout_s),
        (S.CONSENT, CFG.idle_timeout_s),
        (S.REQUIREMENTS, CFG.idle_timeout_s),
        (S.GUIDANCE, CFG.guidance_timeout_s),
        (S.COUNTDOWN, CFG.guidance_timeout_s),
        (S.REVIEW, CFG.idle_timeout_s),
        (S.DONE, CFG.done_s),
        (S.FAILSAFE, CFG.failsafe_s),
    ],
)
def test_every_state_times_out_to_idle(rig, state, seconds):
    s = rig
    clock, cam, live, maker, handed = s.rig
    s.post("start")
    s.step()
    if state is not S.CHOOSE:
        s.post("choose", profile="id_card")
        s.step()
    if state in (S.REQUIREMENTS, S.GUIDANCE, S.COUNTDOWN, S.REVIEW, S.DONE):
        s.post("consent")
        s.step()
    if state in (S.GUIDANCE, S.COUNTDOWN, S.REVIEW, S.DONE):
        s.post("accept")
        s.step()
    if state is S.COUNTDOWN:
        live.ready = True
        advance(s, CFG.steady_s + 0.2)
        live.ready = False  # flickering readiness: back and forth, but the session still ends
    if state in (S.REVIEW, S.DONE):
        to_review(s)
    if state is S.DONE:
        s.post("accept")
        advance(s, 0.2)
    if state is S.FAILSAFE:
        cam.fail = "gone"
        s.post("consent")
        s.post("accept")
        advance(s, 0.2)
    if state is S.COUNTDOWN:
        assert s.state in (S.COUNTDOWN, S.GUIDANCE)
        live.ready = True
    else:
        assert s.state is state
    entered = clock.t
    if state is S.COUNTDOWN:  # keep it cycling countdown <-> guidance: the overall limit still applies
        while s.state is not S.IDLE and clock.t - entered < seconds + 5:
            live.ready = not live.ready if s.state is S.COUNTDOWN else True
            advance(s, 0.5)
        assert s.state is S.IDLE and clock.t - entered <= seconds + 0.6
        return
    advance(s, seconds - 1.0)
    assert s.state is state
    advance(s, 1.2)
    assert s.state is S.IDLE
    assert s.history[-1][2] in ("timeout", "elapsed")


def test_countdown_survives_a_glitch_but_returns_to_guidance_when_the_pose_is_lost(rig):
    s = rig
    live = s.rig[2]
    to_guidance(s)
    live.ready = True
    advance(s, CFG.steady_s + 0.2)
    assert s.state is S.COUNTDOWN
    live.ready = False
    advance(s, 0.2)  # shorter than the grace
    live.ready = True
    advance(s, 0.2)
    assert s.state is S.COUNTDOWN
    live.ready = False
    advance(s, 0.6)
    assert s.state is S.GUIDANCE


def test_a_failed_photo_says_why_and_goes_back_to_guidance(rig):
    s = rig
    maker = s.rig[3]
    maker.compliant = False
    to_guidance(s)
    s.rig[2].ready = True
    advance(s, CFG.steady_s + 0.2 + CFG.countdown_s + 0.2)
    assert s.history[-1][1:] == ("guidance", "photo_bad") or ("guidance", "photo_bad") in [
        h[1:] for h in s.history
    ]
    assert s.hub.state["message"]["en"] == "Please close your mouth and keep a neutral expression"
    assert s.hub.photo is None


def test_failed_photos_do_not_extend_the_guidance_time(rig):
    s = rig
    s.rig[3].compliant = False
    to_guidance(s)
    s.rig[2].ready = True
    start = s.rig[0].t
    advance(s, CFG.guidance_timeout_s + 1.0)
    assert s.state is S.IDLE and s.history[-1][2] == "timeout"
    assert s.rig[0].t - start <= CFG.guidance_timeout_s + 1.0
    assert s.rig[3].made > 10  # it kept trying until then


def test_retakes_are_limited(rig):
    s = rig
    to_guidance(s)
    for left in (2, 1):
        to_review(s)
        assert s.hub.state["retakes_left"] == left
        s.rig[2].ready = False
        s.post("retake")
        s.step()
        assert s.state is S.GUIDANCE and s.photo is None and s.hub.photo is None
    to_review(s)
    assert s.hub.state["retakes_left"] == 0
    s.post("retake")
    s.step()
    assert s.state is S.REVIEW  # refused: accept or cancel only
    s.post("retake", source="button")
    s.step()
    assert s.state is S.REVIEW
    s.post("accept", source="button")
    s.step()
    s.step()
    assert s.state is S.DONE and len(s.rig[4]) == 1


def test_camera_failing_mid_session_apologises_returns_to_idle_and_the_service_goes_on(rig):
    s = rig
    clock, cam, live, maker, handed = s.rig
    to_guidance(s)
    advance(s, 0.5)
    cam.fail = "camera /dev/video0: stopped delivering frames"
    advance(s, 0.2)
    assert s.state is S.FAILSAFE
    assert s.hub.state["message"]["en"] == CAMERA_SORRY["en"]
    assert s.hub.state["message"]["detail"] == "camera /dev/video0: stopped delivering frames"
    advance(s, CFG.failsafe_s + 0.2)
    assert s.state is S.IDLE and s.hub.state["message"] is None
    cam.fail = None  # the camera is back: the next citizen gets a session
    to_guidance(s)
    to_review(s)
    assert s.state is S.REVIEW


def test_camera_is_reopened_after_a_failure_when_a_reopener_is_given(rig):
    s = rig
    broken = s.rig[1]
    fresh = FakeCamera()
    s.reopen_camera = lambda: fresh
    to_guidance(s)
    broken.fail = "unplugged"
    advance(s, 0.2)
    assert s.state is S.FAILSAFE
    advance(s, CFG.failsafe_s + 0.2)
    to_guidance(s)
    advance(s, 0.3)
    assert s.camera is fresh and fresh.n > 0 and s.state is S.GUIDANCE


def test_an_unexpected_error_goes_to_failsafe_without_raising(rig):
    s = rig
    s.rig[3].error = RuntimeError("segmenter exploded")
    to_guidance(s)
    s.rig[2].ready = True
    advance(s, CFG.steady_s + CFG.countdown_s + 0.5)  # step() must not raise
    assert s.state is S.FAILSAFE and s.hub.state["message"]["en"] == SORRY["en"]
    advance(s, CFG.failsafe_s + 0.1)
    assert s.state is S.IDLE


def test_buttons_mean_what_the_state_says(rig):
    s = rig
    s.post("retake", source="button")  # meaningless in idle: ignored
    s.step()
    assert s.state is S.IDLE
    s.post("accept", source="button")
    s.step()
    assert s.state is S.CHOOSE
    s.post("accept", source="button")  # default document
    s.step()
    assert s.state is S.CONSENT and s.profile == "id_card"
    s.post("cancel", source="button")  # declines the privacy notice
    s.step()
    assert s.state is S.IDLE


def test_choices_are_validated(rig):
    s = rig
    s.post("start")
    s.step()
    s.post("choose", profile="passport_of_mars")
    s.step()
    assert s.state is S.CHOOSE
    s.post("choose", profile="local", city="上海")  # this document is only issued in 杭州
    s.step()
    assert s.state is S.CHOOSE
    s.post("choose", profile="local", city="杭州")
    s.step()
    assert s.state is S.CONSENT and (s.profile, s.city) == ("local", "杭州")
    s.post("lang", lang="en")
    s.post("lang", lang="fr")
    s.step()
    assert s.hub.state["lang"] == "en"


def test_transition_table_is_complete():
    reachable = {S.IDLE} | set(TRANSITIONS.values())
    assert reachable | {S.FAILSAFE} == set(State)
    for state in State:
        assert any(src is state for src, _ in TRANSITIONS), f"{state} has no way out"
    for state, mapping in BUTTONS.items():
        for trigger in mapping.values():
            assert (state, trigger) in TRANSITIONS


@pytest.mark.parametrize("source", ["ui", "button"])
@pytest.mark.parametrize(
    "state, forward",
    [
        (S.CHOOSE, S.CONSENT),
        (S.CONSENT, S.REQUIREMENTS),
        (S.REQUIREMENTS, S.GUIDANCE),
        (S.REVIEW, S.HANDOVER),
        (S.DONE, S.IDLE),
    ],
)
def test_every_screen_with_a_way_forward_takes_accept(rig, state, forward, source):
    """DESIGN round 2: choose, consent, requirements, review and done take the Accept button and the
    UI event 'accept'."""
    s = rig
    s.post("start")
    s.step()
    if state is not S.CHOOSE:
        s.post("choose", profile="id_card")
        s.step()
    if state not in (S.CHOOSE, S.CONSENT):
        s.post("consent")
        s.step()
    if state in (S.REVIEW, S.DONE):
        s.post("accept")
        s.step()
        to_review(s)
    if state is S.DONE:
        s.post("accept")
        advance(s, 0.2)
    assert s.state is state
    s.post("accept", source=source)
    s._drain()  # one event, no frame work: the state it leads to is observed before it acts
    assert s.state is forward


def test_a_button_with_no_meaning_in_a_state_is_ignored_even_if_its_name_is_a_trigger(rig):
    s = rig
    to_guidance(s)
    s.post("accept", source="button")  # guidance has no way forward by hand
    s.post("steady", source="button")  # triggers are not buttons
    s.step()
    assert s.state is S.GUIDANCE


def test_a_choice_outside_the_choose_screen_changes_nothing(rig):
    s = rig
    to_guidance(s, profile="id_card")
    s.post("choose", profile="local", city="杭州")
    s.step()
    assert (s.state, s.profile, s.city) == (S.GUIDANCE, "id_card", "")


def test_specs_are_checked_when_a_state_is_added_wrongly():
    check_specs(SPECS)
    broken = dict(SPECS)
    broken[S.DONE] = StateSpec(go={"elapsed": S.IDLE}, buttons={"accept": "accept"})
    with pytest.raises(ValueError, match="done: button trigger 'accept' leads nowhere"):
        check_specs(broken)
    del broken[S.DONE]
    with pytest.raises(ValueError, match="no spec"):
        check_specs(broken)


def test_back_from_consent_and_requirements_keeps_the_choice(rig):
    s = rig
    s.post("start")
    s.post("choose", profile="local", city="杭州")
    s.post("consent")
    s.step()
    assert s.state is S.REQUIREMENTS and s.hub.state["profile"] == "local"
    s.post("back")
    s.step()
    assert s.state is S.CONSENT
    s.post("back")
    s.step()
    assert (s.state, s.profile, s.city) == (S.CHOOSE, "local", "杭州")


def test_the_choose_screen_starts_on_the_home_city_for_every_citizen(rig):
    s = rig
    s.post("start")
    s.step()
    assert (s.state, s.hub.state["city"], s.hub.state["profile"]) == (S.CHOOSE, "杭州", "id_card")
    s.post("select", profile="local")
    s.step()
    assert s.hub.state["profile"] == "local"
    s.post("select", city="上海")  # not a city of this terminal: nothing changes
    s.step()
    assert (s.profile, s.city) == ("local", "杭州")
    s.post("cancel")
    s.step()
    s.post("start")
    s.step()
    assert (s.profile, s.city) == ("id_card", "杭州")  # the previous citizen's choice is gone
    s.post("accept", source="button")  # the selection is what Accept confirms
    s.step()
    assert (s.state, s.profile, s.city) == (S.CONSENT, "id_card", "")


def test_a_document_the_city_does_not_serve_cannot_be_selected_or_chosen():
    docs = [
        {"id": "id_card", "zh": "身份证", "en": "ID", "cities": ["a", "b"], "city_names": {}},
        {"id": "licence", "zh": "驾驶证", "en": "Licence", "cities": ["a"], "city_names": {}},
    ]
    s = Session(CFG, FakeCamera(), FakeLive(), FakeMaker(), lambda *a: {}, docs, dict, clock=Clock())
    s.post("start")
    s.post("select", profile="licence")
    s.step()
    assert (s.city, s.profile) == ("a", "licence")
    s.post("select", city="b")  # the licence is not issued in b: nothing stays selected
    s.step()
    assert (s.city, s.profile) == ("b", None)
    s.post("select", profile="licence")
    s.post("choose", profile="licence")
    s.step()
    assert (s.state, s.profile) == (S.CHOOSE, None)


def test_a_tap_meant_for_a_screen_that_is_gone_is_dropped(rig):
    s = rig
    to_guidance(s)
    to_review(s)
    s.post("retake", on="review")
    s.post("cancel", on="review")  # the second tap of a double tap, sent before the screen changed
    s.step()
    assert s.state is S.GUIDANCE and s.retakes == 1
    s.post("cancel", on="guidance")
    s.step()
    assert s.state is S.IDLE


def test_timeouts_are_announced_and_more_time_restarts_them(rig):
    s = rig
    clock = s.rig[0]
    s.post("start")
    s.post("choose", profile="id_card")
    s.step()
    assert s.state is S.CONSENT and s.hub.state["warning"] is None
    advance(s, CFG.idle_timeout_s - CFG.warn_s + 0.2)
    w = s.hub.state["warning"]
    assert w is not None and CFG.warn_s - 1 < w["remaining_s"] <= CFG.warn_s
    s.post("more_time", on="consent")
    s.step()
    assert s.state is S.CONSENT and s.hub.state["warning"] is None
    advance(s, CFG.idle_timeout_s - 1.0)
    assert s.state is S.CONSENT and s.hub.state["warning"] is not None
    advance(s, 1.2)
    assert s.state is S.IDLE and s.hub.state["ended"]["en"].startswith("The last session ended")
    advance(s, CFG.ended_notice_s + 0.2)
    assert s.hub.state["ended"] is None  # said briefly
    assert clock.t > 0


def test_guidance_timeout_is_announced_and_the_idle_screen_says_why(rig):
    s = rig
    to_guidance(s)
    advance(s, CFG.guidance_timeout_s - CFG.warn_s + 0.2)
    assert s.state is S.GUIDANCE and s.hub.state["warning"] is not None
    s.post("more_time")
    advance(s, CFG.guidance_timeout_s - 1.0)
    assert s.state is S.GUIDANCE
    advance(s, 1.5)
    assert s.state is S.IDLE and "not taken in time" in s.hub.state["ended"]["en"]
    s.post("start")
    s.step()
    assert s.hub.state["ended"] is None


def test_guidance_stuck_on_one_prompt_gives_a_specific_hint_and_offers_staff(rig):
    s = rig
    live = s.rig[2]
    to_guidance(s)
    advance(s, CFG.stuck_hint_s - 1.0)
    assert s.hub.state["hint"] is None
    advance(s, 1.2)
    hint = s.hub.state["hint"]
    assert hint["prompt"] == "come_closer" and hint["arrow"] == "closer" and hint["staff"] is True
    assert "half a step forward" in hint["text"]["en"]
    s.post("call_staff")
    s.step()
    assert s.hub.state["hint"]["staff_called"] is True and s.status()["staff_called"] is True
    live.ready = True  # progress: the hint goes away
    advance(s, 0.2)
    assert s.hub.state["hint"] is None


@pytest.mark.parametrize(
    "prompt, values, arrow, word",
    [
        ("face_camera", {"yaw": 9.0}, "turn_right", "to your right"),
        ("face_camera", {"yaw": -9.0}, "turn_left", "to your left"),
        ("straighten_head", {"roll": 6.0}, "tilt_right", "left shoulder"),
        ("straighten_head", {"roll": -6.0}, "tilt_left", "right shoulder"),
        ("move_left", {}, "left", "to your left"),
        ("some_new_prompt", {}, "none", "staff"),
    ],
)
def test_hints_say_which_way_from_the_sign_of_the_measure(prompt, values, arrow, word):
    from kiosk.capture.session import stuck_hint
    from kiosk.text import text

    got_arrow, text_id = stuck_hint(prompt, values)
    assert got_arrow == arrow and word in text(text_id, "en")


def test_large_text_is_switched_on_the_idle_screen_and_ends_with_the_session(rig):
    s = rig
    assert s.hub.state["large_text"] is False
    s.post("large_text")
    s.step()
    assert s.hub.state["large_text"] is True
    to_guidance(s)
    assert s.hub.state["large_text"] is True  # it holds for the citizen's session
    s.post("cancel")
    s.step()
    assert s.state is S.IDLE and s.hub.state["large_text"] is False


def test_every_hint_and_requirement_has_its_words_in_both_languages():
    import tomllib

    from kiosk.capture.session import HINTS_FILE, REQUIREMENTS_FILE, requirements_for
    from kiosk.text import catalogue

    hints = tomllib.loads(HINTS_FILE.read_text(encoding="utf-8"))["prompt"]
    ids = {r["text"] for r in hints.values() if "text" in r}
    ids |= {r[k]["text"] for r in hints.values() for k in ("positive", "negative") if k in r}
    assert ids and ids <= set(catalogue()), ids - set(catalogue())
    assert set(hints) <= {k.removeprefix("prompt.") for k in catalogue() if k.startswith("prompt.")}
    reqs = tomllib.loads(REQUIREMENTS_FILE.read_text(encoding="utf-8"))["requirement"]
    assert all(f"ui.req.{r['id']}" in catalogue() for r in reqs)
    # the optional ones follow the profile's checks
    assert requirements_for({}) == ["hat", "earrings", "hair"]
    assert "glasses" in requirements_for({"glasses_glare_max": 0.005})
