"""What is said and when, as data: kiosk/voice/voice.toml, read and checked once.

The file names catalogue entries (kiosk/text) and never holds words, so the screen and the voice
cannot drift apart; every id it names must exist, or loading fails with the entry named.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError
from kiosk.text import LANGS, catalogue

POLICY_FILE = Path(__file__).with_name("voice.toml")


class VoicePolicyError(KioskError):
    """voice.toml is malformed or names an entry the catalogue does not hold."""


@dataclass(frozen=True)
class Group:
    """One kind of utterance (prompt, countdown, events): how often and whether it cuts in."""

    min_repeat_s: float
    interrupt: bool


@dataclass(frozen=True)
class Shown:
    """How a part of the published state is said when it appears: fixed entries (``say``), one entry
    per listed item (``each``, with ``{item}``), or the entry under ``match`` whose text is shown."""

    say: tuple[str, ...] = ()
    each: str = ""
    match: str = ""
    field: str = ""  # the shown value's key that holds the text (for match), "" for the value itself

    def ids(self) -> list[str]:
        """Every entry this can say."""
        out = list(self.say)
        for prefix in (self.each.split("{item}")[0] if self.each else "", self.match):
            if prefix:
                out += [k for k in catalogue() if k.startswith(prefix)]
        return out


@dataclass(frozen=True)
class Policy:
    voices: dict[str, str]  # lang -> espeak-ng voice
    amplitude: int
    word_gap_slow: int
    rates: dict[str, dict[str, int]]  # "normal" | "slow" -> lang -> words per minute
    prompt_states: tuple[str, ...]
    prompt: Group
    repeat_while_shown_s: float
    countdown_id: str  # with {n}
    countdown: Group
    events: dict[str, tuple[str, ...]]  # "old>new" or "*>new" -> entry ids
    event: Group
    shown: dict[str, Shown]  # a key of the published state -> what is said when it appears
    shown_group: Group

    def rate(self, lang: str, slow: bool) -> int:
        return self.rates["slow" if slow else "normal"][lang]

    def said_on(self, old: str, new: str) -> tuple[str, ...]:
        """The entries said on the transition old -> new (the exact pair first, then any -> new)."""
        return self.events.get(f"{old}>{new}") or self.events.get(f"*>{new}") or ()

    def countdown_ids(self) -> dict[int, str]:
        """n -> entry id, for every n the catalogue has a number for."""
        out = {}
        for n in range(1, 31):
            id_ = self.countdown_id.format(n=n)
            if id_ in catalogue():
                out[n] = id_
        return out

    def fixed_ids(self) -> list[str]:
        """Every entry this policy can say: the prompts, the countdown's numbers, the events'."""
        ids = [k for k in catalogue() if k.startswith("prompt.")]
        ids += list(self.countdown_ids().values())
        for said in self.events.values():
            ids += list(said)
        for how in self.shown.values():
            ids += how.ids()
        return list(dict.fromkeys(ids))


def _group(data: dict[str, Any], name: str) -> Group:
    try:
        return Group(float(data.get("min_repeat_s", 0.0)), bool(data.get("interrupt", True)))
    except (TypeError, ValueError):
        raise VoicePolicyError(f"voice.toml [{name}]: min_repeat_s must be a number") from None


def _pop_group(table: dict[str, Any], name: str) -> Group:
    """A table's group settings, taken out of it (the rest of the table are its entries)."""
    return _group({k: table.pop(k) for k in ("min_repeat_s", "interrupt") if k in table}, name)


def _shown(key: str, how: Any) -> Shown:
    where = f"voice.toml shown.{key}"
    if not isinstance(how, dict) or not set(how) <= {"say", "each", "match", "field"}:
        raise VoicePolicyError(f"{where}: expected a table of say, each, match, field")
    shown = Shown(tuple(how.get("say", ())), str(how.get("each", "")), str(how.get("match", "")),
                  str(how.get("field", "")))
    for id_ in shown.say:
        if id_ not in catalogue():
            raise VoicePolicyError(f"{where}: no entry {id_!r} in the catalogue")
    if shown.each and "{item}" not in shown.each:
        raise VoicePolicyError(f"{where}.each: must contain {{item}}")
    if (shown.each or shown.match) and len(shown.ids()) == len(shown.say):
        raise VoicePolicyError(f"{where}: no entries under {shown.each or shown.match!r}")
    return shown


def parse(data: dict[str, Any]) -> Policy:
    """The parsed TOML -> Policy; VoicePolicyError names the first bad key."""
    try:
        render, rates, prompt, count, events = (
            data["render"], data["rates"], data["prompt"], data["countdown"], dict(data["events"])
        )
        voices = {lang: str(render["voice"][lang]) for lang in LANGS}
        table = {speed: {lang: int(rates[speed][lang]) for lang in LANGS} for speed in ("normal", "slow")}
    except (KeyError, TypeError, ValueError) as exc:
        raise VoicePolicyError(f"voice.toml: missing or bad key {exc}") from None
    for speed, by_lang in table.items():
        for lang, wpm in by_lang.items():
            if not 60 <= wpm <= 400:
                raise VoicePolicyError(f"voice.toml rates.{speed}.{lang}: {wpm} is not 60-400 words a minute")
    groups = {name: _group(data[name], name) for name in ("prompt", "countdown")}
    event_group = _pop_group(events, "events")
    said: dict[str, tuple[str, ...]] = {}
    for key, ids in events.items():
        if ">" not in key or not isinstance(ids, list):
            raise VoicePolicyError(f"voice.toml events.{key!r}: expected \"old>new\" = [entry ids]")
        for id_ in ids:
            if id_ not in catalogue():
                raise VoicePolicyError(f"voice.toml events.{key!r}: no entry {id_!r} in the catalogue")
        said[key] = tuple(ids)
    shown_data = dict(data.get("shown", {}))
    shown_group = _pop_group(shown_data, "shown")
    shown = {key: _shown(key, how) for key, how in shown_data.items()}
    policy = Policy(
        voices=voices,
        amplitude=int(render.get("amplitude", 100)),
        word_gap_slow=int(render.get("word_gap_slow", 0)),
        rates=table,
        prompt_states=tuple(prompt.get("states", ("guidance",))),
        prompt=groups["prompt"],
        repeat_while_shown_s=float(prompt.get("repeat_while_shown_s", 0.0)),
        countdown_id=str(count.get("id", "")),
        countdown=groups["countdown"],
        events=said,
        event=event_group,
        shown=shown,
        shown_group=shown_group,
    )
    if "{n}" not in policy.countdown_id:
        raise VoicePolicyError("voice.toml countdown.id: must contain {n}")
    if not 0 <= policy.amplitude <= 200:
        raise VoicePolicyError("voice.toml render.amplitude: must be 0-200")
    return policy


@lru_cache(maxsize=1)
def load_policy(path: Path = POLICY_FILE) -> Policy:
    """The shipped policy, read once."""
    try:
        return parse(tomllib.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise VoicePolicyError(f"{Path(path).name}: {exc}") from None
