"""Text -> WAV with espeak-ng (a subprocess, ``-w FILE``), offline.

Mandarin is fed to the ``cmn-latn-pinyin`` voice as tone-numbered pinyin (pypinyin): espeak-ng's
default ``cmn`` voice mis-reads Chinese characters (it spells many as English), the pinyin voice
reads the syllables with their tones. Without espeak-ng (or pypinyin, for zh) the renderer says so
in ``reason`` and renders nothing: the voice is then off, the terminal is not.

pypinyin's dictionaries take ~55 MB once imported, for as long as the process lives. The service
never imports it: the renderer converts in a short-lived child (``python -m kiosk.voice.pinyin_worker``,
one per batch of texts), and only on a cache miss; whether pypinyin is there and its version (part
of the cache key) come from its package metadata.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from kiosk.errors import KioskError
from kiosk.voice.policy import Policy

ENGINE = "espeak-ng"
RENDER_REV = "2"  # bump when the way text is prepared for the engine changes: every cache entry is redone
PINYIN_FILE = Path(__file__).with_name("pinyin.toml")
# full-width punctuation -> what espeak-ng pauses on (brackets: a pause, not a spoken "bracket")
_PUNCT = str.maketrans(
    {"，": ",", "。": ".", "！": "!", "？": "?", "、": ",", "；": ",", "：": ",", "…": "."}
    | {"（": ",", "）": ","}
)
_SYLLABLE = re.compile(r"[a-z]+[1-5]")
_NUMERALS = set("零〇一二三四五六七八九十百千万第")


class RenderError(KioskError):
    """espeak-ng failed on a text (the message is its first line of stderr)."""


def pinyin_available() -> bool:
    """Whether pypinyin can be imported, without importing it (its dictionaries are ~55 MB)."""
    try:
        return importlib.util.find_spec("pypinyin") is not None
    except (ImportError, ValueError):
        return False


def pinyin_version() -> str:
    """pypinyin's version from its package metadata (the same string as its ``__version__``)."""
    try:
        return importlib.metadata.version("pypinyin")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


PINYIN_TIMEOUT_S = 120.0
_MEMO_MAX = 512  # texts converted and remembered (the catalogue's Mandarin entries are fewer)


def pinyin_in_child(texts: list[str]) -> list[str]:
    """``to_pinyin`` of each text, computed in a child Python so pypinyin's dictionaries never load
    into the caller (the service). RenderError with the child's last line when it fails."""
    if not texts:
        return []
    here = str(Path(__file__).resolve().parents[2])  # the directory holding the kiosk package
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kiosk.voice.pinyin_worker"],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=env,
            timeout=PINYIN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RenderError("voice: the pinyin conversion took too long") from None
    except OSError as exc:
        raise RenderError(f"voice: cannot start the pinyin conversion: {exc}") from None
    try:
        out = json.loads(done.stdout) if done.returncode == 0 else None
    except json.JSONDecodeError:
        out = None
    if not isinstance(out, list) or len(out) != len(texts) or not all(isinstance(x, str) for x in out):
        line = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise RenderError(f"voice: the pinyin conversion failed: {line}")
    return out


@lru_cache(maxsize=1)
def _phrases() -> dict[str, list[str]]:
    """pinyin.toml: phrases pypinyin gets wrong -> their syllables, longest first."""
    data = tomllib.loads(PINYIN_FILE.read_text(encoding="utf-8"))["phrases"]
    return {k: v.split() for k, v in sorted(data.items(), key=lambda kv: -len(kv[0]))}


def _tokens(text: str) -> list[tuple[str | None, str]]:
    """(Chinese character, its syllable) in order; (None, other text) for what is not Chinese."""
    from pypinyin import Style, lazy_pinyin

    out: list[tuple[str | None, str]] = []
    plain = ""

    def flush() -> None:
        han = iter(c for c in plain if "\u4e00" <= c <= "\u9fff")
        for item in lazy_pinyin(plain, style=Style.TONE3, neutral_tone_with_five=True):
            out.append((next(han, None), item) if _SYLLABLE.fullmatch(item) else (None, item))

    i = 0
    while i < len(text):
        phrase = next((p for p in _phrases() if text.startswith(p, i)), None)
        if phrase is None:
            plain += text[i]
            i += 1
            continue
        flush()
        plain = ""
        out += list(zip(phrase, _phrases()[phrase], strict=True))
        i += len(phrase)
    flush()
    return out


def _sandhi(tokens: list[tuple[str | None, str]]) -> list[str]:
    """一 and 不 change tone before another syllable (不动 bu2 dong4, 一人 yi4 ren2, 一次 yi2 ci4);
    espeak-ng itself applies the third-tone sandhi. 一 as a numeral (第一, 十一, alone) keeps yi1."""
    out = [s for _, s in tokens]
    for k, (char, _) in enumerate(tokens[:-1]):
        nxt_char, nxt = tokens[k + 1]
        if nxt_char is None or char not in ("一", "不"):
            continue
        tone = int(nxt[-1])
        if char == "不" and tone == 4:
            out[k] = "bu2"
        elif char == "一" and (k == 0 or tokens[k - 1][0] not in _NUMERALS) and tone != 5:
            out[k] = "yi2" if tone == 4 else "yi4"
    return out


def to_pinyin(text: str) -> str:
    """Chinese text -> tone-numbered pinyin syllables (tone 5: neutral), punctuation as ASCII pauses:
    pypinyin, the corrections of pinyin.toml, and the tone changes of 一 and 不."""
    words = [w.translate(_PUNCT).strip() for w in _sandhi(_tokens(text))]
    out = " ".join(w for w in words if w)
    for mark in ",.!?":
        out = out.replace(" " + mark, mark)
    return " ".join(re.sub(r"([,.!?])[,.!?]+", r"\1", out).split())


@lru_cache(maxsize=8)
def _engine_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.split("Data at")[0].strip()


class Renderer:
    """One engine, one policy: ``render(text, lang, slow, out)`` writes a mono 16-bit WAV."""

    def __init__(self, policy: Policy, exe: str | None = None):
        self.policy = policy
        self.exe = exe or shutil.which(ENGINE)
        self._pinyin: dict[str, str] = {}  # Mandarin text -> its pinyin (bounded: _MEMO_MAX)
        self.reason = ""
        self.version = _engine_version(self.exe) if self.exe else ""
        if not self.exe:
            self.reason = f"{ENGINE} is not installed (Debian: apt-get install espeak-ng)"
        elif not self.version:
            self.reason = f"{self.exe} does not run"
        self.languages = tuple(lang for lang in policy.voices if lang != "zh" or pinyin_available())
        if self.exe and "zh" not in self.languages:
            self.reason = "pypinyin is not installed: Mandarin is not spoken"

    @property
    def available(self) -> bool:
        return bool(self.exe and self.version)

    def engine_id(self) -> str:
        """What the renders depend on besides the text: engine version, our preparation, pypinyin's."""
        parts = [self.version, f"rev{RENDER_REV}"]
        if pinyin_available():
            parts.append(f"pypinyin {pinyin_version()}")
        return "; ".join(parts)

    def convert(self, texts: Iterable[str]) -> None:
        """Convert the Mandarin texts not converted yet, in one child process (a batch of renders)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._pinyin))
        if not todo:
            return
        if len(self._pinyin) + len(todo) > _MEMO_MAX:
            self._pinyin.clear()
        self._pinyin.update(zip(todo, pinyin_in_child(todo), strict=True))

    def engine_input(self, text: str, lang: str) -> str:
        """What espeak-ng is given for ``text``: pinyin for Mandarin (converted in a child process,
        see ``convert``), the text itself otherwise."""
        if lang != "zh":
            return text
        self.convert([text])
        return self._pinyin[text]

    def command(self, text: str, lang: str, slow: bool, out: Path) -> list[str]:
        """The espeak-ng command line for one render (tests run it themselves to compare)."""
        rate = self.policy.rate(lang, slow)
        cmd = [self.exe or ENGINE, "-v", self.policy.voices[lang], "-s", str(rate)]
        cmd += ["-a", str(self.policy.amplitude)]
        if slow and self.policy.word_gap_slow:
            cmd += ["-g", str(self.policy.word_gap_slow)]
        return [*cmd, "-w", str(out), self.engine_input(text, lang)]

    def key(self, text: str, lang: str, slow: bool) -> str:
        """A digest of everything a render depends on (engine, voice, level, rate, the text)."""
        gap = self.policy.word_gap_slow if slow else 0
        blob = "\0".join([self.engine_id(), self.policy.voices[lang], str(self.policy.amplitude), str(gap),
                          str(self.policy.rate(lang, slow)), lang, text])
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def render(self, text: str, lang: str, slow: bool, out: Path) -> None:
        """Write the WAV to ``out`` (through a temporary file beside it: never a half-written WAV)."""
        if not self.available:
            raise RenderError(f"voice: {self.reason}")
        if lang not in self.languages:
            raise RenderError(f"voice: cannot speak {lang!r}: {self.reason or 'no voice'}")
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            done = subprocess.run(
                self.command(text, lang, slow, tmp), capture_output=True, text=True, timeout=60, check=False
            )
            if done.returncode != 0 or not tmp.exists() or tmp.stat().st_size <= 44:
                line = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
                raise RenderError(f"voice: {ENGINE} failed on {text[:30]!r}: {line}")
            os.replace(tmp, out)
        except subprocess.TimeoutExpired:
            raise RenderError(f"voice: {ENGINE} took too long on {text[:30]!r}") from None
        finally:
            tmp.unlink(missing_ok=True)

