"""Spoken prompts, zh and en, offline: espeak-ng renders the catalogue's entries to WAV once (cached
in the state directory), ALSA plays them (``aplay``), and the speaker decides what to say from the
session's transitions and published state.

``render`` text -> WAV · ``cache`` WAVs made once, keyed by (id, lang, rate, engine, text) ·
``player`` aplay or nothing · ``speaker`` what and when · ``output`` the worker that plays ·
``policy`` voice.toml. ``build_voice`` assembles them; without espeak-ng it returns a voice that
is off and says why in one log line, so the terminal runs on silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kiosk.voice.cache import WavCache
from kiosk.voice.output import Output
from kiosk.voice.player import Player, open_player
from kiosk.voice.policy import Policy, load_policy
from kiosk.voice.render import Renderer
from kiosk.voice.speaker import Say, Speaker

log = logging.getLogger("kiosk.voice")

__all__ = ["Say", "Speaker", "Voice", "build_voice"]


class Voice:
    """The station's voice: feed it transitions and published states; it never blocks the caller."""

    def __init__(
        self,
        policy: Policy,
        clock: Callable[[], float],
        cache: WavCache | None = None,
        player: Player | None = None,
        volume: float = 0.8,
        languages: tuple[str, ...] = (),
        reason: str = "",
    ):
        self.policy, self.cache, self.reason = policy, cache, reason
        self.enabled = cache is not None and bool(languages)
        self.languages = languages
        self.output = Output(cache, player, volume) if self.enabled and cache and player else None
        self.speaker = Speaker(policy, self.output.submit, clock, languages) if self.output else None

    def on_transition(self, old: str, new: str, snap: Mapping[str, Any]) -> None:
        if self.speaker is not None:
            self.speaker.on_transition(old, new, snap)

    def observe(self, snap: Mapping[str, Any]) -> None:
        if self.speaker is not None:
            self.speaker.observe(snap)

    def prepare(self) -> None:
        """Render every fixed entry ahead, on a background thread."""
        if self.cache is not None and self.enabled:
            self.cache.prepare(self.policy.fixed_ids(), self.languages)

    def export(self, directory: Path) -> list[dict[str, Any]]:
        """What the citizen heard, as WAVs in ``directory`` (the demo)."""
        if self.output is None:
            return []
        self.cache.wait() if self.cache is not None else None
        return self.output.export(directory)

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "reason": self.reason or None,
            "languages": list(self.languages),
            "engine": self.cache.renderer.version if self.cache is not None else None,
            "rendered": self.cache.rendered if self.cache is not None else 0,
            "cache_hits": self.cache.hits if self.cache is not None else 0,
        }

    def close(self) -> None:
        if self.output is not None:
            self.output.close()


def build_voice(
    cfg: Any,
    state_dir: Path,
    sim: bool,
    clock: Callable[[], float] = time.monotonic,
    player: Player | None = None,
    prepare: bool | None = None,
) -> Voice:
    """The voice for a station from ``[voice]`` (enabled, volume, languages, device). Off (with the
    reason, logged once) when disabled or when espeak-ng is missing; never raises for either.
    ``prepare`` renders every fixed entry ahead in the background; by default only when there is
    sound to play (in simulation nothing is rendered until the demo writes out what was heard)."""
    policy = load_policy()
    if not cfg.enabled:
        return Voice(policy, clock, reason="off in the configuration ([voice] enabled = false)")
    renderer = Renderer(policy)
    if not renderer.available:
        log.warning("voice off: %s", renderer.reason)
        return Voice(policy, clock, reason=renderer.reason)
    languages = tuple(lang for lang in cfg.languages if lang in renderer.languages)
    if renderer.reason:
        log.warning("voice: %s", renderer.reason)
    if not languages:
        return Voice(policy, clock, reason=renderer.reason or "no language to speak")
    cache = WavCache(Path(state_dir) / "cache" / "voice", renderer)
    sound = player if player is not None else open_player(sim, cfg.device)
    voice = Voice(
        policy,
        clock,
        cache=cache,
        player=sound,
        volume=cfg.volume / 100.0,
        languages=languages,
        reason=renderer.reason,
    )
    if prepare or (prepare is None and sound.name != "null"):
        voice.prepare()
    return voice
