"""Turning service replies into terminal text: 80 columns, no control characters, CRLF.

Replies come from the service as JSON; what they contain (a log line, a printer's error string)
may hold escape sequences, so every character that is not printable is replaced before it
reaches the technician's terminal.
"""

from __future__ import annotations

from typing import Any

from kiosk.console.lineedit import char_width, is_printable

WIDTH = 80


def sanitize(text: str) -> str:
    return "".join(ch if is_printable(ch) or ch == "\n" else "?" for ch in text.replace("\t", "    "))


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """Wrap one line by display columns, at spaces where possible; continuation lines indented."""
    indent = " " * min(len(line) - len(line.lstrip(" ")) + 2, width // 2)
    out: list[str] = []
    while True:
        cols, cut, last_space = 0, len(line), -1
        for i, ch in enumerate(line):
            w = char_width(ch)
            if cols + w > width:
                cut = i
                break
            if ch == " " and i > len(indent):
                last_space = i
            cols += w
        if cut >= len(line):
            out.append(line.rstrip())
            return out
        if last_space > 0 and last_space > cut // 2:
            cut = last_space
        out.append(line[:cut].rstrip())
        line = indent + line[cut:].lstrip(" ")


def to_terminal(text: str, width: int = WIDTH) -> bytes:
    lines: list[str] = []
    for raw in sanitize(text).split("\n"):
        lines.extend(wrap(raw, width))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def render(value: Any, indent: int = 0) -> list[str]:
    """A reply as readable lines: mappings as 'key: value', lists one item per line."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.extend(render(v, indent + 2))
            else:
                lines.append(f"{pad}{k}: {scalar(v)}")
        return lines
    if isinstance(value, list):
        if not value:
            return [f"{pad}(none)"]
        lines = []
        for item in value:
            if isinstance(item, dict):
                lines.append(pad + "- " + ", ".join(f"{k}={scalar(v)}" for k, v in item.items()))
            else:
                lines.append(f"{pad}- {scalar(item)}")
        return lines
    return [pad + scalar(value)]


def scalar(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    if isinstance(v, (dict, list)):
        return "(none)" if not v else str(v)
    return str(v)
