"""Spoken prompts (kiosk.voice): real espeak-ng renders, the real cache on disk, the real speaker
rules on the session's (simulated) clock, and `kiosk demo --voice` end to end. Mandarin is checked
against espeak-ng itself: the WAV the citizen heard is the cmn-latn-pinyin voice reading the
catalogue's text as tone-numbered pinyin, not the cmn voice mis-reading the characters."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import ConfigError, VoiceConfig, load_config
from kiosk.text import catalogue, placeholders, text
from kiosk.voice import build_voice
from kiosk.voice.cache import WavCache, wav_seconds
from kiosk.voice.player import AplayPlayer, NullPlayer
from kiosk.voice.policy import VoicePolicyError, load_policy, parse
from kiosk.voice.render import Renderer, to_pinyin
from kiosk.voice.speaker import Say, Speaker

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(
    ESPEAK is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)
RMS_FLOOR = 300.0  # int16 RMS of speech at 80 % volume is in the thousands; silence is ~0
PHRASE = "请把头摆正，不要歪头"  # prompt.straighten_head


def samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


def same_sound(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to the volume scaling: same length, correlation ~1."""
    return len(a) == len(b) and float(np.corrcoef(a, b)[0, 1]) > 0.999


def espeak(args: list[str], out: Path) -> np.ndarray:
    subprocess.run([ESPEAK, *args[:-1], "-w", str(out), args[-1]], check=True, capture_output=True)
    return samples(out)


def phonemes(voice: str, said: str) -> str:
    done = subprocess.run([ESPEAK, "-q", "-x", "-v", voice, said], check=True, capture_output=True, text=True)
    return done.stdout


# --- the policy is data naming catalogue entries ----------------------------------------------------


def test_the_policy_names_catalogue_entries_and_holds_no_words():
    policy = load_policy()
    ids = policy.fixed_ids()
    assert {"prompt.perfect", "voice.count.3", "ui.choose", "ui.done"} <= set(ids)
    assert all(i in catalogue() for i in ids)
    assert not [i for i in ids if placeholders(catalogue()[i]["zh"])]  # said as they are: no {fields}
    assert policy.said_on("idle", "choose") == ("ui.choose",)
    assert policy.said_on("capture", "guidance") == ("session.photo_refused",)
    assert policy.said_on("countdown", "guidance") == ()
    assert policy.rate("zh", True) < policy.rate("zh", False) and policy.rate("en", True) < policy.rate(
        "en", False
    )
    words = (Path(__file__).parents[1] / "kiosk" / "voice" / "voice.toml").read_text(encoding="utf-8")
    body = "\n".join(line.split("#")[0] for line in words.splitlines())
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in body)  # no Chinese outside comments: no second copy


def test_a_policy_naming_a_missing_entry_fails_naming_it():
    import tomllib

    data = tomllib.loads((Path(__file__).parents[1] / "kiosk" / "voice" / "voice.toml").read_text())
    data["events"]["*>review"] = ["ui.no_such_entry"]
    with pytest.raises(VoicePolicyError, match=r"ui\.no_such_entry"):
        parse(data)
    data["events"]["*>review"] = ["ui.review"]
    data["rates"]["slow"]["zh"] = 5
    with pytest.raises(VoicePolicyError, match=r"rates\.slow\.zh"):
        parse(data)


# --- rendering -----------------------------------------------------------------------------------


def test_mandarin_goes_to_espeak_as_tone_numbered_pinyin():
    assert to_pinyin(PHRASE) == "qing3 ba3 tou2 bai3 zheng4, bu2 yao4 wai1 tou2"
    assert to_pinyin("很好，请保持") == "hen3 hao3, qing3 bao3 chi2"
    assert to_pinyin("三") == "san1"


@pytest.mark.parametrize(
    "zh, pinyin",
    [
        ("请降低一点身体", "qing3 jiang4 di1 yi4 dian3 shen1 ti3"),  # pypinyin alone: xiang2 (pinyin.toml)
        ("因长时间无操作", "yin1 chang2 shi2 jian1 wu2 cao1 zuo4"),  # pypinyin alone: zhang3
        ("请保持不动", "qing3 bao3 chi2 bu2 dong4"),  # 不 before tone 4
        ("只有您一人", "zhi3 you3 nin2 yi4 ren2"),  # 一 before tones 1-3
        ("上一次", "shang4 yi2 ci4"),  # 一 before tone 4
        ("第一次", "di4 yi1 ci4"),  # an ordinal keeps its tone
        ("头巾（宗教原因除外）和发卡", "tou2 jin1, zong1 jiao4 yuan2 yin1 chu2 wai4, he2 fa4 qia3"),
    ],
)
def test_pinyin_corrections_and_tone_changes(zh, pinyin):
    assert to_pinyin(zh) == pinyin


def test_every_spoken_mandarin_entry_becomes_one_syllable_per_character():
    import re

    for id_ in load_policy().fixed_ids():
        zh = text(id_, "zh")
        said = to_pinyin(zh)
        assert re.fullmatch(r"[a-z]+[1-5]([,.!?]? [a-z]+[1-5])*[,.!?]?", said), (id_, said)
        assert len(said.split()) == sum("\u4e00" <= c <= "\u9fff" for c in zh), (id_, said)


@needs_espeak
def test_the_pinyin_voice_reads_mandarin_where_the_cmn_voice_misreads_the_characters():
    """espeak-ng -x: the cmn voice spells the characters partly as English ("(en)" switches); the
    pinyin voice gives one toned Mandarin syllable per character and never switches language."""
    assert (
        "cmn-latn-pinyin" in subprocess.run([ESPEAK, "--voices=cmn"], capture_output=True, text=True).stdout
    )
    wrong = phonemes("cmn", PHRASE)
    right = phonemes("cmn-latn-pinyin", to_pinyin(PHRASE))
    assert "(en)" in wrong
    assert "(en)" not in right
    syllables = [s for s in right.replace("\n", " ").split("_|") if s.strip()]
    assert len(syllables) == 9 and all(any(c.isdigit() for c in s) for s in syllables)  # each with its tone
    renderer = Renderer(load_policy())
    assert renderer.engine_input(PHRASE, "zh") == to_pinyin(PHRASE)
    assert renderer.command(PHRASE, "zh", False, Path("x.wav"))[1:3] == ["-v", "cmn-latn-pinyin"]


@needs_espeak
def test_the_cache_renders_once_and_a_new_engine_renders_anew(tmp_path):
    policy = load_policy()
    ids = ["prompt.perfect", "voice.count.3", "ui.done"]
    first = WavCache(tmp_path / "cache", Renderer(policy))
    assert first.prepare(ids, ["zh", "en"], slow_too=False) is not None and first.wait(120)
    assert (first.rendered, first.hits) == (6, 0)
    files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.wav")}
    assert len(files) == 6 and all(".zh." in n or ".en." in n for n in files)
    again = WavCache(tmp_path / "cache", Renderer(policy))  # the next start
    again.prepare(ids, ["zh", "en"], slow_too=False)
    assert again.wait(120) and (again.rendered, again.hits) == (0, 6)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.wav")} == files
    upgraded = Renderer(policy)
    upgraded.version = "eSpeak NG text-to-speech: 9.99"  # another espeak-ng: the key changes
    newer = WavCache(tmp_path / "cache", upgraded)
    newer.prepare(ids, ["zh", "en"], slow_too=False)
    assert newer.wait(120) and newer.rendered == 6
    assert not set(files) & {p.name for p in (tmp_path / "cache").glob("*.wav")}  # stale files removed


@needs_espeak
def test_large_text_speaks_slower(tmp_path):
    cache = WavCache(tmp_path, Renderer(load_policy()))
    for lang in ("zh", "en"):
        normal, slow = (
            cache.get("prompt.face_camera", lang, False),
            cache.get("prompt.face_camera", lang, True),
        )
        assert normal is not None and slow is not None and normal != slow
        assert wav_seconds(slow) > 1.25 * wav_seconds(normal)


# --- the speaker's rules on a simulated clock ---------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def guidance(prompt: str | None, lang: str = "zh", **more: object) -> dict:
    return {"state": "guidance", "lang": lang, "guidance": {"prompt": prompt} if prompt else None, **more}


def test_a_prompt_is_said_when_it_appears_and_not_again_within_the_interval():
    policy = load_policy()
    clock, said = Clock(), []
    speaker = Speaker(policy, said.append, clock)
    for t, prompt in [
        (0.0, "come_closer"),
        (0.5, "come_closer"),
        (1.0, "move_left"),
        (2.0, "come_closer"),
        (3.0, "move_left"),
        (6.0, "come_closer"),
        (6.5, None),
        (7.0, "come_closer"),
    ]:
        clock.t = t
        speaker.observe(guidance(prompt))
    heard = [(s.t, s.ids[0]) for s in said]
    assert heard == [(0.0, "prompt.come_closer"), (1.0, "prompt.move_left"), (6.0, "prompt.come_closer")]
    assert policy.prompt.min_repeat_s == 5.0
    # still showing after repeat_while_shown_s: said again (a citizen who did not catch it)
    clock.t = 6.0 + policy.repeat_while_shown_s
    speaker.observe(guidance("come_closer"))
    assert said[-1].t == clock.t and said[-1].ids == ("prompt.come_closer",)
    # the screen switched to English: the prompt in English at once
    clock.t += 0.1
    speaker.observe(guidance("come_closer", lang="en"))
    assert (said[-1].lang, said[-1].ids) == ("en", ("prompt.come_closer",))


def test_countdown_numbers_events_and_large_text():
    clock, said = Clock(), []
    speaker = Speaker(load_policy(), said.append, clock)
    speaker.on_transition("idle", "choose", {"state": "choose", "lang": "zh", "large_text": True})
    assert said[-1] == Say(0.0, ("ui.choose",), "zh", True, True, "event")
    speaker.on_transition("requirements", "consent", {"state": "consent", "lang": "en"})
    assert said[-1].ids == ("ui.consent_title", "ui.consent_text") and not said[-1].slow
    said.clear()
    for t, left in [(10.0, 3.0), (10.5, 2.5), (11.0, 2.0), (11.9, 1.1), (12.0, 1.0), (12.99, 0.01)]:
        clock.t = t
        speaker.observe(
            {"state": "countdown", "lang": "zh", "countdown": left, "guidance": {"prompt": "perfect"}}
        )
    assert [(s.t, s.ids[0]) for s in said if s.why == "countdown"] == [
        (10.0, "voice.count.3"),
        (11.0, "voice.count.2"),
        (12.0, "voice.count.1"),
    ]
    # the countdown is lost and starts again: it counts again (no repeat interval for numbers)
    clock.t = 13.5
    speaker.on_transition("countdown", "guidance", guidance("hold_still"))
    speaker.on_transition("guidance", "countdown", {"state": "countdown"})
    speaker.observe({"state": "countdown", "lang": "zh", "countdown": 3.0, "guidance": {"prompt": "perfect"}})
    assert said[-1].ids == ("voice.count.3",)
    speaker.on_transition("handover", "done", {"state": "done", "lang": "zh"})
    assert said[-1].ids == ("ui.done", "ui.take_slip")


def test_the_speaker_follows_a_real_session():
    """The session state machine (with the fakes of tests/test_session.py for camera, live loop and
    photo engine) wired as the station wires it: transitions heard, the published state read each turn."""
    import dataclasses

    from kiosk.capture.session import Session, State
    from tests.test_session import CFG, DOCS, FakeCamera, FakeLive, FakeMaker, advance, to_guidance
    from tests.test_session import Clock as SessionClock

    clock, live = SessionClock(), FakeLive()
    cfg = dataclasses.replace(CFG, stuck_hint_s=20.0, warn_s=15.0)
    def no_thresholds(profile: str) -> dict:  # the requirements without a threshold only
        return {}

    hand_over = lambda *a: {"number": "1"}  # noqa: E731
    s = Session(cfg, FakeCamera(), live, FakeMaker(), hand_over, DOCS, no_thresholds, clock=clock)
    s.rig = (clock, None, live, None, [])
    said: list[Say] = []
    speaker = Speaker(load_policy(), said.append, clock)
    s.listeners.append(lambda old, new: speaker.on_transition(old.value, new.value, s.hub.state))
    session_step = s.step

    def step() -> None:
        session_step()
        speaker.observe(s.hub.state)

    s.step = step
    s.post("large_text")  # on the idle screen
    s.step()
    to_guidance(s)
    advance(s, 80.0)  # stuck on one prompt: the hint at 20 s, "Need more time?" 15 s before 90 s
    live.ready = True
    advance(s, 5.0)
    assert s.state is State.REVIEW
    s.post("accept")
    advance(s, 1.0)
    assert s.state is State.DONE
    t0 = 1000.0
    heard = [(round(x.t - t0), x.ids) for x in said]
    assert heard[:4] == [
        (0, ("ui.large_text",)),
        (0, ("ui.choose",)),
        (0, ("ui.consent_title", "ui.consent_text")),
        (0, ("ui.requirements_title", "ui.req.hat", "ui.req.earrings", "ui.req.hair")),
    ]
    assert all(x.slow and x.lang == "zh" for x in said)  # large text: the slow voice all along
    ids = [i for x in said for i in x.ids]
    hint, more = ids.index("session.hint.come_closer"), ids.index("ui.more_time_q")
    assert ids.index("prompt.come_closer") < hint < more < ids.index("prompt.perfect")
    assert [x.t - t0 for x in said if x.ids == ("session.hint.come_closer",)] == pytest.approx(
        [20.0], abs=0.2
    )
    repeats = [x.t for x in said if x.ids == ("prompt.come_closer",)]
    every = load_policy().repeat_while_shown_s  # repeated into silence, never sooner
    assert len(repeats) >= 5 and all(b - a >= every for a, b in zip(repeats, repeats[1:], strict=False))
    assert ids[-6:] == [
        "voice.count.3",
        "voice.count.2",
        "voice.count.1",
        "ui.review",
        "ui.done",
        "ui.take_slip",
    ]
    # the next citizen is too slow: the idle screen says why, and so does the voice (normal speed now)
    said.clear()
    advance(s, cfg.done_s + 0.5)
    to_guidance(s)
    advance(s, cfg.guidance_timeout_s + 1.0)
    assert s.state is State.IDLE
    assert said[-1].ids == ("session.ended.live_timeout",) and not said[-1].slow


# --- the output: never on the caller's thread, and aplay fed the scaled WAV -------------------------


class Recorder:
    """A player that keeps what it was given (and on which thread)."""

    name = "recorder"

    def __init__(self) -> None:
        self.played: list[tuple[str, str]] = []

    def play(self, wav: Path, volume: float, wanted=None) -> None:
        import threading

        if wanted is not None and not wanted():
            return
        self.played.append((wav.name, threading.current_thread().name))

    def stop(self) -> None:
        pass


@needs_espeak
def test_renders_and_playback_happen_off_the_session_thread(tmp_path):
    import threading

    rendered_on: list[str] = []

    class Watched(Renderer):
        def render(self, *args, **kwargs):
            rendered_on.append(threading.current_thread().name)
            return super().render(*args, **kwargs)

    clock, player = Clock(), Recorder()
    voice = build_voice(VoiceConfig(), tmp_path, sim=False, clock=clock, player=player, prepare=False)
    voice.cache.renderer = Watched(load_policy())
    voice.on_transition("idle", "choose", {"state": "choose", "lang": "zh"})
    assert rendered_on == []  # the caller only enqueued
    clock.t = 1.0
    voice.observe(guidance("come_closer"))
    assert voice.output.drain(60)
    assert rendered_on and threading.current_thread().name not in rendered_on
    assert {thread for _, thread in player.played} == {"voice-output"}
    assert player.played[-1][0].startswith("prompt.come_closer.zh.")
    voice.close()


@needs_espeak
def test_aplay_gets_the_wav_at_the_configured_volume(tmp_path):
    """A stand-in aplay (a shell script) receives exactly what ALSA would: a WAV on stdin."""
    fake = tmp_path / "aplay"
    fake.write_text(f'#!/bin/sh\ncat > "{tmp_path}/played.wav"\necho "$@" > "{tmp_path}/args"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    cache = WavCache(tmp_path / "cache", Renderer(load_policy()))
    wav = cache.get("prompt.perfect", "zh", False)
    AplayPlayer(str(fake), device="plughw:1,0").play(wav, 0.5)
    assert (tmp_path / "args").read_text().split() == ["-q", "-D", "plughw:1,0", "-"]
    played, original = samples(tmp_path / "played.wav"), samples(wav)
    assert same_sound(played, original)
    assert rms(played) == pytest.approx(0.5 * rms(original), rel=0.01)
    (tmp_path / "args").unlink()
    AplayPlayer(str(fake)).play(wav, 0.5, wanted=lambda: False)  # cut while it was being prepared
    assert not (tmp_path / "args").exists()


@needs_espeak
def test_a_newer_utterance_cuts_the_one_playing(tmp_path):
    """The first sound is still playing (a stand-in aplay that holds on) when the next prompt comes:
    its aplay is ended and the new one is played; nothing queued behind the old one follows."""
    import time

    fake = tmp_path / "aplay"
    script = f'cat > "{tmp_path}/played-$$.wav"\necho $$ >> "{tmp_path}/order"\nexec sleep 30\n'
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    clock = Clock()
    aplay = AplayPlayer(str(fake))
    voice = build_voice(VoiceConfig(), tmp_path, sim=False, clock=clock, player=aplay, prepare=False)
    voice.on_transition("review", "done", {"state": "done", "lang": "zh"})  # ui.done, then ui.take_slip

    def started(n: int) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (tmp_path / "order").exists() and len((tmp_path / "order").read_text().split()) >= n:
                return True
            time.sleep(0.02)
        return False

    assert started(1)
    clock.t = 1.0
    voice.on_transition("idle", "choose", {"state": "choose", "lang": "zh"})  # interrupts
    assert started(2)
    voice.close()  # ends the second one
    assert voice.output.drain(30)
    pids = (tmp_path / "order").read_text().split()
    assert len(pids) == 2  # ui.take_slip, queued behind ui.done, was dropped
    first, second = (samples(tmp_path / f"played-{pid}.wav") for pid in pids)
    done = voice.cache.get("ui.done", "zh", False)
    choose = voice.cache.get("ui.choose", "zh", False)
    assert same_sound(first, samples(done)) and same_sound(second, samples(choose))


# --- off: by configuration, or without espeak-ng ------------------------------------------------------


def test_voice_off_in_the_configuration_says_nothing(tmp_path):
    conf = tmp_path / "kiosk.toml"
    conf.write_text('[voice]\nenabled = false\nvolume = 40\nlanguages = ["en"]\n')
    cfg = load_config(conf, tmp_path / "state")
    assert cfg.voice == VoiceConfig(enabled=False, volume=40, languages=("en",))
    clock = Clock()
    voice = build_voice(cfg.voice, tmp_path / "state", sim=True, clock=clock)
    voice.on_transition("idle", "choose", {"state": "choose", "lang": "zh"})
    voice.observe(guidance("come_closer"))
    assert not voice.enabled and voice.export(tmp_path / "out") == []
    assert "enabled = false" in voice.status()["reason"]
    assert not (tmp_path / "state" / "cache").exists()


@pytest.mark.parametrize(
    "body, key",
    [
        ("volume = 150", "voice.volume"),
        ('languages = ["fr"]', "voice.languages"),
        ('languages = "zh"', "voice.languages"),
    ],
)
def test_bad_voice_settings_name_the_key(tmp_path, body, key):
    conf = tmp_path / "kiosk.toml"
    conf.write_text(f"[voice]\n{body}\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(conf, tmp_path / "state")


def test_without_espeak_the_voice_is_off_with_one_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with caplog.at_level(logging.WARNING, logger="kiosk.voice"):
        voice = build_voice(VoiceConfig(), tmp_path, sim=True, clock=Clock())
    assert not voice.enabled and "espeak-ng is not installed" in voice.status()["reason"]
    assert [r.getMessage() for r in caplog.records] == [f"voice off: {voice.reason}"]
    voice.on_transition("idle", "choose", {"state": "choose", "lang": "zh"})  # no crash, nothing said
    assert voice.export(tmp_path / "out") == []


def test_the_null_player_plays_nothing():
    NullPlayer().play(Path("/nonexistent.wav"), 1.0)  # simulation: never touches the file


@pytest.mark.slow
def test_kiosk_run_speaks_through_its_station(start_service, tmp_path):
    """`kiosk run --sim`: the station's voice hears the real service's session; in simulation it
    plays nothing and so renders nothing."""
    import time

    svc = start_service()
    voice = svc.station.voice
    assert voice is not None and voice.enabled and voice.output.player.name == "null"
    svc.session.post("lang", lang="en")
    svc.session.post("start")
    deadline = time.monotonic() + 30
    while not any(p.id == "ui.choose" for p in voice.output.heard) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(p.id, p.lang) for p in voice.output.heard][:1] == [("ui.choose", "en")]
    assert voice.output.drain(10) and voice.status()["rendered"] == 0
    assert not list((tmp_path / "state" / "cache").glob("voice/*.wav"))


# --- kiosk demo --voice ------------------------------------------------------------------------------


def run_demo_json(capsys, out: Path, *extra: str) -> dict:
    from kiosk.cli import main

    code = main(
        ["demo", "--voice", "--json", "--out", str(out), "--state-dir", str(out.parent / "state"), *extra]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report.get("reason")
    return report


def check_heard(report: dict, lang: str, tmp: Path) -> None:
    """Every prompt shown was said when it appeared (or within the repeat interval before), in the
    language shown; each WAV is 0.3-6 s of sound, the voice's own reading of the catalogue text."""
    policy = load_policy()
    spoken = report["spoken"]
    assert report["voice"]["enabled"] is True and spoken
    prompts = [s for s in spoken if s["id"].startswith("prompt.")]
    for shown in report["prompts"]:
        said = [
            s
            for s in prompts
            if s["id"] == f"prompt.{shown['id']}"
            and s["lang"] == lang
            and shown["t"] - policy.prompt.min_repeat_s <= s["t"] <= shown["t"] + 0.05
        ]
        assert said, f"prompt {shown['id']} at {shown['t']} s was not said"
    last: dict[tuple[str, str], float] = {}
    for s in prompts:  # no repeat within the interval
        key = (s["id"], s["lang"])
        assert s["t"] - last.get(key, -1e9) >= policy.prompt.min_repeat_s, s
        last[key] = s["t"]
    voice = "cmn-latn-pinyin" if lang == "zh" else "en-us"
    assert policy.voices[lang] == voice
    for k, s in enumerate(spoken):
        wav = Path(s["wav"])
        assert wav.parent == Path(report["photo"]).parent / "voice" and wav.exists()
        assert s["lang"] == lang and s["text"] == text(s["id"], lang)
        x = samples(wav)
        if s["id"].startswith("prompt."):
            assert 0.3 <= len(x) / 22050 <= 6.0, s
        assert rms(x) > RMS_FLOOR, s  # not silent
        said = to_pinyin(s["text"]) if lang == "zh" else s["text"]
        args = ["-v", voice, "-s", str(policy.rate(lang, False)), "-a", str(policy.amplitude), said]
        assert same_sound(x, espeak(args, tmp / f"ref{k}.wav")), f"{s['id']}: not the {voice} reading"
        if lang == "zh" and s["id"].startswith(
            "prompt."
        ):  # the cmn voice reading characters is another sound
            cmn = espeak(
                ["-v", "cmn", "-s", str(policy.rate(lang, False)), "-a", str(policy.amplitude), s["text"]],
                tmp / f"cmn{k}.wav",
            )
            assert not same_sound(x, cmn)


@pytest.mark.slow
@needs_espeak
def test_demo_voice_writes_what_the_citizen_heard_and_reuses_the_cache(tmp_path, capsys):
    out = tmp_path / "demo"
    report = run_demo_json(capsys, out)
    check_heard(report, "zh", tmp_path)
    spoken = report["spoken"]
    ids = [s["id"] for s in spoken]
    assert ids[0] == "ui.choose" and ids[-2:] == ["ui.done", "ui.take_slip"]
    assert [i for i in ids if i.startswith("voice.count.")] == [
        "voice.count.3",
        "voice.count.2",
        "voice.count.1",
    ]
    assert all(0 <= s["heard_s"] <= s["seconds"] for s in spoken)
    assert report["voice"]["rendered"] == len(set(ids)) and report["voice"]["cache_hits"] >= 0
    cached = {p.name: p.stat().st_mtime_ns for p in (out / "state" / "cache" / "voice").glob("*.wav")}
    assert len(cached) == len(set(ids))
    # the second run: everything from the cache, nothing rendered
    again = run_demo_json(capsys, out)
    assert [s["id"] for s in again["spoken"]] == ids
    assert again["voice"]["rendered"] == 0 and again["voice"]["cache_hits"] >= len(set(ids))
    assert {p.name: p.stat().st_mtime_ns for p in (out / "state" / "cache" / "voice").glob("*.wav")} == cached


@pytest.mark.slow
@needs_espeak
def test_demo_voice_in_english_and_large_text(tmp_path, capsys):
    zh = run_demo_json(capsys, tmp_path / "zh")
    en = run_demo_json(capsys, tmp_path / "en", "--lang", "en")
    check_heard(en, "en", tmp_path)
    zh_wav = {s["id"]: Path(s["wav"]) for s in zh["spoken"]}
    for s in en["spoken"]:
        if s["id"] in zh_wav:  # the same entry: a different sound in each language
            assert not same_sound(samples(Path(s["wav"])), samples(zh_wav[s["id"]])), s["id"]
    slow = run_demo_json(capsys, tmp_path / "slow", "--large-text")
    assert all(s["slow"] for s in slow["spoken"])
    normal = {s["id"]: s["seconds"] for s in zh["spoken"]}
    assert all(s["seconds"] > 1.2 * normal[s["id"]] for s in slow["spoken"] if s["id"] in normal)


@pytest.mark.slow
def test_demo_without_espeak_still_succeeds_with_a_warning(tmp_path):
    """PATH without espeak-ng (only the venv's scripts): the demo runs, says why it is silent."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": str(bin_dir)}
    assert shutil.which("espeak-ng", path=env["PATH"]) is None
    done = subprocess.run(
        [
            str(bin_dir / "kiosk"),
            "demo",
            "--voice",
            "--json",
            "--out",
            str(tmp_path / "demo"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "done" and report["spoken"] == []
    assert report["voice"]["enabled"] is False and "espeak-ng" in report["voice"]["reason"]
    warnings = [line for line in done.stderr.splitlines() if "voice off" in line]
    assert len(warnings) == 1  # one line, however logging is formatted
    assert warnings[0].endswith("voice off: espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    assert "Traceback" not in done.stderr


# --- memory: pypinyin's dictionaries never load into the process that speaks ------------------------


_RENDER_ZH = r"""
import json, sys
from pathlib import Path
from kiosk.voice.cache import WavCache
from kiosk.voice.policy import load_policy
from kiosk.voice.render import Renderer

cache = WavCache(Path(sys.argv[1]), Renderer(load_policy()))
cache.prepare(["prompt.straighten_head", "ui.done"], ["zh"], slow_too=False)
assert cache.wait(300)
print(json.dumps({"rendered": cache.rendered, "failed": cache.failed,
                  "pypinyin_imported": any(m.split(".")[0] == "pypinyin" for m in sys.modules)}))
"""


@needs_espeak
def test_mandarin_renders_with_pypinyin_only_in_a_child_process(tmp_path):
    """pypinyin holds ~55 MB for as long as the process that imported it lives: the renderer's
    process (the service) never imports it, and the WAV is still the pinyin voice reading the
    catalogue's text as to_pinyin (run here, in the test's process) converts it."""
    cache = tmp_path / "cache"
    done = subprocess.run([sys.executable, "-c", _RENDER_ZH, str(cache)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out == {"rendered": 2, "failed": {}, "pypinyin_imported": False}
    renderer = Renderer(load_policy())
    wav = WavCache(cache, renderer).get("prompt.straighten_head", "zh", False)  # the child's render
    assert wav is not None
    cmd = renderer.command(PHRASE, "zh", False, tmp_path / "direct.wav")
    assert cmd[-1] == to_pinyin(PHRASE)
    assert same_sound(samples(wav), espeak([*cmd[1:-3], cmd[-1]], tmp_path / "direct.wav"))


def test_the_pinyin_worker_converts_and_refuses_bad_input_in_one_line():
    from kiosk.voice.render import pinyin_in_child

    assert pinyin_in_child([PHRASE, "三"]) == [to_pinyin(PHRASE), "san1"]
    for bad in ("not json", '{"a": 1}', "[1, 2]"):
        done = subprocess.run(
            [sys.executable, "-m", "kiosk.voice.pinyin_worker"], input=bad, capture_output=True, text=True
        )
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_voice_remembers_a_bounded_number_of_parts(tmp_path):
    """What was said is kept for the demo's export; on a terminal that runs for weeks, only the last."""
    from kiosk.voice.output import HEARD_MAX, Output

    out = Output(WavCache(tmp_path, Renderer(load_policy())), NullPlayer(), 0.8)
    try:
        for k in range(HEARD_MAX + 50):
            out.submit(Say(float(k), ("ui.done",), "en", False, False, "event"))
        assert len(out.heard) == HEARD_MAX and out.heard[-1].t == float(HEARD_MAX + 49)
    finally:
        out.close()
