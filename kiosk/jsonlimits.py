"""JSON from untrusted local clients (the UI's /event, the service socket), parsed within bounds.

Python's json parser recurses once per nesting level: a few kilobytes of ``[[[[…`` raise
RecursionError, which is not a ValueError and used to drop the connection with a traceback. The
nesting is measured on the raw text first, so a hostile body is one ValueError line like any other.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 16  # our requests are two or three levels deep
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (brackets inside strings do not count)."""
    stripped = _STRING.sub(b'""', raw)
    level = deepest = 0
    for ch in stripped.translate(None, b" \t\r\n\"0123456789.,:-+eEtrufalsn"):
        if ch in b"[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in b"]}":
            level -= 1
    return deepest


def loads(raw: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH, what: str = "request") -> Any:
    """``json.loads`` that refuses, with one ValueError line, a body too long or nested too deep."""
    if len(raw) > max_bytes:
        raise ValueError(f"{what} too large (over {max_bytes} bytes)")
    if depth(raw) > max_depth:
        raise ValueError(f"{what} nested too deeply (over {max_depth} levels)")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"{what} is not JSON") from None
