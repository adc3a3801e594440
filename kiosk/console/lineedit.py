"""A byte-fed line editor for a dumb serial terminal (picocom, minicom, screen, PuTTY).

Everything from the line is untrusted: bytes are decoded incrementally as UTF-8 (invalid
sequences dropped), control characters other than the editing keys are ignored, escape
sequences are parsed with a length cap, and a line longer than the limit is refused whole
instead of growing without bound. The editor never blocks: ``feed`` returns events and the
caller drains ``take_output()`` to echo.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

BELL = b"\x07"
MAX_ESCAPE = 16  # an escape sequence longer than this is noise, not a key


@dataclass(frozen=True)
class Line:
    """Enter was pressed on this text."""

    text: str


@dataclass(frozen=True)
class Interrupt:
    """Ctrl-C: the line was abandoned."""


@dataclass(frozen=True)
class TooLong:
    """Enter was pressed on a line that had overflowed; it was discarded."""

    limit: int


@dataclass(frozen=True)
class EndOfInput:
    """Ctrl-D on an empty line."""


Event = Line | Interrupt | TooLong | EndOfInput
Completer = Callable[[str], list[str]]


def char_width(ch: str) -> int:
    """Columns a character takes on the terminal (CJK wide characters take two)."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def is_printable(ch: str) -> bool:
    return ch != "\ufffd" and not unicodedata.category(ch).startswith("C")


class LineEditor:
    """Prompt-less line editing state; the owner writes the prompt and asks for redraws."""

    def __init__(
        self, max_len: int = 200, history_size: int = 50, completer: Completer | None = None
    ) -> None:
        self.max_len = max_len
        self.history_size = history_size
        self.completer = completer
        self.prompt = ""
        self.secret = False  # echo '*' and keep out of the history (PIN entry)
        self.history: list[str] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf: list[str] = []
        self._overflow = False
        self._escape: str | None = None
        self._last_cr = False
        self._hist_pos: int | None = None
        self._saved = ""
        self._out = bytearray()

    # --- owner interface --------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return "".join(self._buf)

    def take_output(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def reset(self, prompt: str | None = None, secret: bool | None = None) -> None:
        """Forget the partial line (no echo); optionally change prompt and echo mode."""
        self._buf, self._overflow, self._escape, self._hist_pos = [], False, None, None
        if prompt is not None:
            self.prompt = prompt
        if secret is not None:
            self.secret = secret

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for ch in self._decoder.decode(data):
            ev = self._char(ch)
            if ev is not None:
                events.append(ev)
        return events

    # --- one character ----------------------------------------------------------------------------

    def _char(self, ch: str) -> Event | None:
        if self._escape is not None:
            return self._escape_char(ch)
        was_cr, self._last_cr = self._last_cr, False
        if ch == "\r":
            self._last_cr = True
            return self._enter()
        if ch == "\n":
            return None if was_cr else self._enter()
        if ch == "\x1b":
            self._escape = ""
        elif ch == "\x03":
            self._out += b"^C\r\n"
            self.reset()
            return Interrupt()
        elif ch in ("\x08", "\x7f"):
            self._backspace()
        elif ch == "\x15":  # Ctrl-U: kill the line
            while self._buf:
                self._backspace()
            self._overflow = False
        elif ch == "\x04":
            if not self._buf:
                return EndOfInput()
        elif ch == "\t":
            self._complete()
        elif is_printable(ch):
            self._insert(ch)
        # anything else (NUL from a break, other controls, invalid UTF-8) is noise: ignored
        return None

    def _escape_char(self, ch: str) -> None:
        seq = self._escape + ch
        if seq in ("[", "O"):
            self._escape = seq
            return None
        if len(seq) >= 2 and 0x40 <= ord(ch) <= 0x7E:  # final byte of CSI / SS3
            self._escape = None
            key = seq[-1] if seq[1:-1] == "" else seq[1:]
            if key == "A":
                self._history_step(-1)
            elif key == "B":
                self._history_step(+1)
            elif key == "3~":  # Delete: no cursor movement here, so it erases like Backspace
                self._backspace()
            return None
        if not seq.startswith(("[", "O")) or not 0x20 <= ord(ch) <= 0x3F:
            self._escape = None  # not a sequence we know: drop it
            return None
        # an overlong sequence is swallowed up to its final byte, not typed as text
        self._escape = seq if len(seq) <= MAX_ESCAPE else "[?"
        return None

    def _insert(self, ch: str) -> None:
        if self._overflow or len(self._buf) >= self.max_len:
            if not self._overflow:
                self._out += BELL
            self._overflow = True
            return
        self._buf.append(ch)
        self._out += b"*" if self.secret else ch.encode("utf-8")

    def _backspace(self) -> None:
        if self._overflow:
            return
        if self._buf:
            ch = self._buf.pop()
            n = 1 if self.secret else char_width(ch)
            self._out += b"\b" * n + b" " * n + b"\b" * n

    def _erase_shown(self) -> None:
        for ch in self._buf:
            n = 1 if self.secret else char_width(ch)
            self._out += b"\b" * n + b" " * n + b"\b" * n

    def _replace(self, text: str) -> None:
        self._erase_shown()
        self._buf = list(text[: self.max_len])
        self._out += self.text.encode("utf-8")

    def _enter(self) -> Event:
        self._out += b"\r\n"
        text, overflow = self.text, self._overflow
        self.reset()
        if overflow:
            return TooLong(self.max_len)
        if text.strip() and not self.secret and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[: -self.history_size]
        return Line(text)

    def _history_step(self, step: int) -> None:
        if self.secret or not self.history or self._overflow:
            return
        if self._hist_pos is None:
            if step > 0:
                return
            self._saved = self.text
            pos = len(self.history) - 1
        else:
            pos = self._hist_pos + step
        if pos < 0:
            self._out += BELL
            return
        if pos >= len(self.history):
            self._hist_pos = None
            self._replace(self._saved)
            return
        self._hist_pos = pos
        self._replace(self.history[pos])

    def _complete(self) -> None:
        if self.secret or self.completer is None or self._overflow:
            return
        text = self.text
        options = sorted(set(self.completer(text)))
        if not options:
            self._out += BELL
            return
        if len(options) == 1:
            tail = options[0][len(text) :] + " " if options[0].startswith(text) else ""
            for ch in tail:
                self._insert(ch)
            return
        common = options[0]
        for o in options[1:]:
            while not o.startswith(common):
                common = common[:-1]
        if len(common) > len(text) and common.startswith(text):
            for ch in common[len(text) :]:
                self._insert(ch)
            return
        words = [o.rsplit(" ", 1)[-1] for o in options]
        self._out += b"\r\n" + _columns(words).encode("utf-8") + b"\r\n"
        self._out += (self.prompt + self.text).encode("utf-8")


def _columns(words: list[str], width: int = 80) -> str:
    col = max(len(w) for w in words) + 2
    per = max(1, width // col)
    rows = [words[i : i + per] for i in range(0, len(words), per)]
    return "\r\n".join("".join(w.ljust(col) for w in row).rstrip() for row in rows)
