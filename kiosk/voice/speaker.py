"""Deciding what to say and when, from the session's transitions and its published state.

Runs on the session's thread and only decides: it hands a ``Say`` to its sink (the output's
queue) and returns at once. What it says is data (kiosk/voice/voice.toml): the current guidance
prompt when it appears (and again after a while if it is still showing), the countdown's numbers,
the entries named for transitions (start, consent, review, result) and for parts of the screen as
they appear (requirements, "Need more time?", a stuck-guidance hint, why the last session ended,
large text switched on). The same (entry, language) is not said again within its group's
``min_repeat_s``. Large text mode speaks slower.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kiosk.text import catalogue
from kiosk.voice.policy import Group, Policy, Shown


@lru_cache(maxsize=32)
def _by_text(prefix: str) -> dict[str, str]:
    """The entries under ``prefix`` by their zh text (what a screen part shows -> its id)."""
    return {e["zh"]: k for k, e in catalogue().items() if k.startswith(prefix)}


@dataclass(frozen=True)
class Say:
    """One utterance: entries said in order, in one language, at one speed."""

    t: float  # the session's clock when it was decided
    ids: tuple[str, ...]
    lang: str
    slow: bool
    interrupt: bool  # cut whatever is being said
    why: str  # prompt | countdown | event


class Speaker:
    def __init__(
        self,
        policy: Policy,
        sink: Callable[[Say], None],
        clock: Callable[[], float],
        languages: Sequence[str] = ("zh", "en"),
    ):
        self.policy, self.sink, self.clock = policy, sink, clock
        self.languages = tuple(languages)
        self._last: dict[tuple[str, str], float] = {}  # (id, lang) -> when it was last said
        self._prompt: tuple[str, str] | None = None  # the prompt showing (id, lang)
        self._count: int | None = None  # the countdown number last reached
        self._shown: dict[str, tuple[str, ...] | None] = {}  # what each shown part last said
        self._spoke = -math.inf  # when anything was last said
        self._counts = policy.countdown_ids()

    def _lang(self, snap: Mapping[str, Any]) -> str | None:
        """The language on the screen, if it is spoken; else the first spoken one (or none)."""
        lang = snap.get("lang", "zh")
        if lang in self.languages:
            return str(lang)
        return self.languages[0] if self.languages else None

    def _say(self, ids: Sequence[str], group: Group, why: str, snap: Mapping[str, Any]) -> bool:
        lang = self._lang(snap)
        if lang is None:
            return False
        now = self.clock()
        wait = group.min_repeat_s
        fresh = tuple(i for i in ids if wait <= 0 or now - self._last.get((i, lang), -math.inf) >= wait)
        if not fresh:
            return False
        for i in fresh:
            self._last[(i, lang)] = now
        self._spoke = now
        slow = bool(snap.get("large_text", False))
        self.sink(Say(now, fresh, lang, slow, group.interrupt, why))
        return True

    def on_transition(self, old: str, new: str, snap: Mapping[str, Any]) -> None:
        """After the session moved old -> new (``snap``: the state it published for ``new``)."""
        if new != "countdown":
            self._count = None
        if new not in self.policy.prompt_states:
            self._prompt = None
        ids = self.policy.said_on(old, new)
        if ids:
            self._say(ids, self.policy.event, "event", snap)

    def observe(self, snap: Mapping[str, Any]) -> None:
        """Each turn of the main loop, with the newest published state: prompts and countdown."""
        state = snap.get("state")
        self._observe_prompt(snap)  # before the countdown: a number due on the same turn is not cut
        for key, how in self.policy.shown.items():
            ids = self._shown_ids(how, snap.get(key))
            if ids != self._shown.get(key):
                self._shown[key] = ids
                if ids:
                    self._say(ids, self.policy.shown_group, "shown", snap)
        if state == "countdown" and snap.get("countdown") is not None:
            n = math.ceil(float(snap["countdown"]) - 1e-6)
            if n != self._count:
                self._count = n
                if n in self._counts:
                    self._say([self._counts[n]], self.policy.countdown, "countdown", snap)

    @staticmethod
    def _shown_ids(how: Shown, value: Any) -> tuple[str, ...] | None:
        """The entries that say a shown part (None when it is not showing or has no entry)."""
        if not value:
            return None
        ids = list(how.say)
        if how.each and isinstance(value, list):
            ids += [i for i in (how.each.format(item=item) for item in value) if i in catalogue()]
        if how.match:
            shown = value.get(how.field) if how.field and isinstance(value, dict) else value
            if isinstance(shown, dict):  # the {zh, en} on the screen -> its entry
                found = _by_text(how.match).get(str(shown.get("zh")))
                ids += [found] if found else []
        return tuple(ids) or None

    def _observe_prompt(self, snap: Mapping[str, Any]) -> None:
        if snap.get("state") not in self.policy.prompt_states:
            self._prompt = None
            return
        prompt = (snap.get("guidance") or {}).get("prompt")
        lang = self._lang(snap)
        if not prompt or lang is None:
            self._prompt = None
            return
        key, id_ = (str(prompt), lang), f"prompt.{prompt}"
        repeat = self.policy.repeat_while_shown_s
        quiet = self.clock() - self._spoke  # a prompt still showing is repeated into silence only
        again = key == self._prompt and repeat > 0 and quiet >= repeat
        if key != self._prompt or again:
            self._prompt = key
            self._say([id_], self.policy.prompt, "prompt", snap)
