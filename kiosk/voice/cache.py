"""The rendered WAVs, made once and kept in the state directory's cache (``STATE/cache/voice``).

A file is named by its key: the entry id, the language, the rate and a digest of the engine's
version and the text. A changed text, rate or espeak-ng version makes a new file; an unchanged one
is never rendered again (``rendered`` / ``hits`` count it). ``prepare`` renders every fixed
entry ahead, on its own thread, at start; a request for a WAV not yet there renders it then (on
the caller's thread, which is never the session's: the player's worker asks).
"""

from __future__ import annotations

import logging
import re
import threading
import wave
from collections.abc import Iterable
from pathlib import Path

from kiosk.errors import KioskError
from kiosk.text import text
from kiosk.voice.render import Renderer

log = logging.getLogger("kiosk.voice")


def wav_seconds(path: Path) -> float:
    """The length of a WAV file in seconds."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


class WavCache:
    def __init__(self, root: Path, renderer: Renderer):
        self.root = Path(root)
        self.renderer = renderer
        self.rendered = 0  # renders done by this process
        self.hits = 0  # requests served by a file already there
        self.failed: dict[str, str] = {}  # name -> why it could not be rendered
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def path(self, id: str, lang: str, slow: bool) -> Path:
        """Where the WAV of (id, lang, rate) for the current text and engine is (rendered or not)."""
        rate = self.renderer.policy.rate(lang, slow)
        digest = self.renderer.key(text(id, lang), lang, slow)  # CatalogueError: no such entry
        return self.root / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', id)}.{lang}.{rate}.{digest}.wav"

    def get(self, id: str, lang: str, slow: bool) -> Path | None:
        """The WAV, rendered now if it is not in the cache; None when it cannot be (logged once)."""
        try:
            out = self.path(id, lang, slow)
        except KioskError as exc:
            log.warning("%s", exc)
            return None
        with self._lock:  # one render of a file at a time: prepare and the player may ask together
            if out.exists():
                self.hits += 1
                return out
            if out.name in self.failed:
                return None
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                self.renderer.render(text(id, lang), lang, slow, out)
            except (KioskError, OSError) as exc:  # a render failed, or an entry that cannot be said
                self.failed[out.name] = str(exc)
                log.warning("%s", exc)
                return None
            self.rendered += 1
            return out

    def prepare(self, ids: Iterable[str], langs: Iterable[str], slow_too: bool = True) -> threading.Thread:
        """Render every (id, lang, rate) ahead on a daemon thread; stale files of older keys are removed."""
        speeds = (False, True) if slow_too else (False,)
        jobs = [(i, lang, slow) for slow in speeds for lang in langs for i in ids]

        def run() -> None:
            self.convert_missing(jobs)
            keep = set()
            for id_, lang, slow in jobs:
                path = self.get(id_, lang, slow)
                if path is not None:
                    keep.add(path.name)
            if self.root.is_dir():
                for old in self.root.glob("*.wav"):
                    if old.name not in keep:
                        old.unlink(missing_ok=True)
            log.info("voice: %d WAVs ready (%d rendered, %d cached)", len(keep), self.rendered, self.hits)

        self._thread = threading.Thread(target=run, name="voice-prepare", daemon=True)
        self._thread.start()
        return self._thread

    def convert_missing(self, jobs: Iterable[tuple[str, str, bool]]) -> None:
        """The Mandarin texts still to render go to pinyin in one child process, not one per WAV."""
        if not self.renderer.available or "zh" not in self.renderer.languages:
            return  # nothing Mandarin will be rendered (render says why)
        texts = []
        for id_, lang, slow in jobs:
            try:
                if lang == "zh" and not self.path(id_, lang, slow).exists():
                    texts.append(text(id_, lang))
            except KioskError:
                continue  # get() logs it
        try:
            self.renderer.convert(texts)
        except KioskError as exc:  # each render tries again and says why
            log.warning("%s", exc)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for ``prepare``; True when it has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
