"""From decisions to sound: a worker thread takes each ``Say``, gets its WAVs from the cache (a
render when one is missing) and plays them in order. The session's thread only enqueues; an
interrupting ``Say`` drops what is queued and cuts what is playing. Everything decided is also
kept (``heard``, the last HEARD_MAX parts: a terminal runs for weeks) so the demo can write out
what the citizen heard, on the session's clock."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.text import text
from kiosk.voice.cache import WavCache, wav_seconds
from kiosk.voice.player import Player, scaled_wav
from kiosk.voice.speaker import Say

log = logging.getLogger("kiosk.voice")

HEARD_MAX = 2000  # parts remembered for ``export``: a demo's sessions say a few dozen each


@dataclass(frozen=True)
class Part:
    t: float
    id: str
    lang: str
    slow: bool
    interrupt: bool  # the first part of an interrupting Say
    gen: int  # the interrupt generation it belongs to


class Output:
    def __init__(self, cache: WavCache, player: Player, volume: float):
        self.cache, self.player, self.volume = cache, player, volume
        self.heard: deque[Part] = deque(maxlen=HEARD_MAX)
        self._queue: deque[Part] = deque()
        self._cond = threading.Condition()
        self._gen = 0
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="voice-output", daemon=True)
        self._thread.start()

    def submit(self, say: Say) -> None:
        """Enqueue (from any thread, never blocking on sound)."""
        with self._cond:
            if say.interrupt:
                self._gen += 1  # before stop(): a sound about to start sees it and does not
                self._queue.clear()
            parts = [
                Part(say.t, id_, say.lang, say.slow, say.interrupt and k == 0, self._gen)
                for k, id_ in enumerate(say.ids)
            ]
            self._queue.extend(parts)
            self.heard.extend(parts)
            self._cond.notify_all()
        if say.interrupt:
            self.player.stop()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                part = self._queue.popleft()
                self._busy = True
            try:
                if self.player.name == "null":  # nothing would be played: no render either (simulation)
                    continue
                wav = self.cache.get(part.id, part.lang, part.slow)
                if wav is not None:
                    self.player.play(wav, self.volume, lambda gen=part.gen: gen == self._gen)
            except Exception as exc:  # noqa: BLE001 - the voice must never take the terminal down
                log.warning("voice: could not play %s: %s", part.id, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until everything queued has been played (or dropped)."""
        with self._cond:
            return self._cond.wait_for(lambda: (not self._queue and not self._busy) or self._closed, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        self.player.stop()

    def export(self, directory: Path) -> list[dict[str, Any]]:
        """Write what the citizen heard, in order, as ``directory/NNN-<id>-<lang>.wav`` (at the
        configured volume) and describe it: when it started on the session's clock, how long it is,
        and how much was heard before something newer cut in (parts never reached are left out)."""
        directory.mkdir(parents=True, exist_ok=True)
        out: list[dict[str, Any]] = []
        cut: list[float] = []  # for each part: when the next interrupting part cuts in (inf: never)
        nxt = float("inf")
        for part in reversed(self.heard):
            cut.append(nxt)
            nxt = part.t if part.interrupt else nxt
        cut.reverse()
        busy_until = -1.0
        timeline: list[tuple[Part, Path, float, float]] = []  # part, wav, start, seconds heard
        # the Mandarin still to render goes to pinyin in one child process, not one per WAV
        self.cache.convert_missing((p.id, p.lang, p.slow) for p in self.heard)
        for part, cut_at in zip(self.heard, cut, strict=True):
            start = max(part.t, busy_until) if not part.interrupt else part.t
            if start >= cut_at:
                continue  # queued behind something and dropped before it began: never heard, not rendered
            wav = self.cache.get(part.id, part.lang, part.slow)
            if wav is None:
                continue
            length = wav_seconds(wav)
            timeline.append((part, wav, start, min(length, cut_at - start)))
            busy_until = start + length
        for k, (part, wav, start, heard) in enumerate(timeline):
            name = f"{k:03d}-{part.id}-{part.lang}.wav"
            (directory / name).write_bytes(scaled_wav(wav, self.volume))
            out.append(
                {
                    "t": round(start, 2),
                    "id": part.id,
                    "lang": part.lang,
                    "wav": str(directory / name),
                    "text": text(part.id, part.lang),
                    "slow": part.slow,
                    "seconds": round(wav_seconds(wav), 2),
                    "heard_s": round(heard, 2),
                }
            )
        return out
