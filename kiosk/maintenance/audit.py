"""Where the console's audit entries end up, service side: the store's audit table when the
service has a store, else ``console-audit.jsonl`` in the state dir (read back line by line: a
line torn by a power cut is counted as damaged, the others are shown)."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from kiosk.durable import append_line, read_json_lines
from kiosk.errors import KioskError

ACTOR = "console"
FALLBACK_NAME = "console-audit.jsonl"


class AuditTail(NamedTuple):
    """The newest entries, oldest first, and how many lines of the fallback log were unreadable."""

    rows: list[dict[str, Any]]
    damaged: int


def _entry(value: Any) -> dict[str, Any] | None:
    """A line of the fallback log as an entry, or None when it is not one (the time must be one
    the clock can show: `audit` formats it)."""
    if not isinstance(value, dict):
        return None
    at = value.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        return None
    try:
        time.localtime(at)
    except (OverflowError, OSError, ValueError):
        return None
    if not all(isinstance(value.get(k), str) for k in ("actor", "action", "detail")):
        return None
    return value


class AuditSink:
    """Records entries and reads the newest back (``audit`` on the console)."""

    def __init__(self, store: Any = None, state_dir: Path | None = None) -> None:
        self.store = store if store is not None and hasattr(store, "audit") else None
        self.path = Path(state_dir) / FALLBACK_NAME if state_dir is not None else None
        self._lock = threading.Lock()

    def record(self, actor: str, action: str, detail: str) -> None:
        with self._lock:
            if self.store is not None:
                self.store.audit(actor, action, detail)
            elif self.path is not None:
                entry = {"at": time.time(), "actor": actor, "action": action, "detail": detail}
                append_line(self.path, json.dumps(entry, ensure_ascii=False))
            else:
                raise KioskError("no audit log: the service has neither a store nor a state dir")

    def tail(self, n: int) -> AuditTail:
        damaged = 0
        with self._lock:
            if self.store is not None and hasattr(self.store, "audit_log"):
                rows = list(self.store.audit_log())
            elif self.path is not None:
                lines = read_json_lines(self.path)
                rows = [e for e in map(_entry, lines.values) if e is not None]
                damaged = lines.damaged + len(lines.values) - len(rows)
            else:
                rows = []
        return AuditTail(rows[-n:] if n > 0 else [], damaged)
