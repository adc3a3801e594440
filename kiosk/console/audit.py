"""The audit trail of the console: who did what, when, and with what result.

``ConsoleAudit`` sends each entry to the service (``console.audit``, recorded by
``kiosk.maintenance.audit``); while the service does not answer (being restarted, say) entries
are spooled to a local file and forwarded, oldest first, with the next entry that gets through —
so nothing a technician did goes unrecorded. The spool's folder is made (0700) when missing; a
spool that cannot be written is said, not ignored; a spool line torn by a power cut is skipped and
its loss forwarded as an entry of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.durable import append_line, make_dirs, read_json_lines, write_atomic
from kiosk.service_api import ApiError

SPOOL_NAME = "console-audit-spool.jsonl"
MAX_FIELD = 300  # characters kept of a command line or a result


def clip(text: str, limit: int = MAX_FIELD) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def detail_of(command: str, result: str, at: float | None = None) -> str:
    return json.dumps({"command": clip(command), "result": clip(result), "at": at}, ensure_ascii=False)


class ConsoleAudit:
    """Console side: one entry per login, logout and command, sent to the service."""

    def __init__(
        self, client: Any, spool_dir: Path | None, warn: Callable[[str], None] | None = None
    ) -> None:
        self.client = client
        self.spool = Path(spool_dir) / SPOOL_NAME if spool_dir is not None else None
        self.warn = warn  # told when an entry could not be kept (the technician, the journal)

    def record(self, action: str, command: str, result: str) -> None:
        at = round(time.time(), 3)
        entry = {"action": action, "detail": detail_of(command, result, at)}
        try:
            spooled, damaged = self._pending()
            readable = True
        except OSError:  # left as it is (only appended to) for a later try
            spooled, damaged, readable = [], 0, False
        pending = spooled + [entry]
        if damaged:  # the loss itself is audited, before the entry that found it
            lost = f"{damaged} damaged line{'s' if damaged > 1 else ''} of the console's spool skipped"
            pending.insert(len(spooled), {"action": "spool", "detail": detail_of("", lost, at)})
        sent = 0
        for item in pending:
            try:
                self.client.call("console.audit", timeout=3.0, **item)
            except ApiError:
                break
            sent += 1
        rest = pending[sent:]
        if self.spool is None or (not rest and not readable):
            return
        if not rest:
            try:
                self.spool.unlink(missing_ok=True)
            except OSError as exc:
                why = exc.strerror or str(exc)
                self._warn(f"{self.spool} not removed after forwarding; sent again later ({why})")
            return
        try:
            if readable and (sent or len(rest) == 1 or damaged):  # rewritten: sent and torn lines go
                make_dirs(self.spool.parent)
                data = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in rest)
                write_atomic(self.spool, data.encode("utf-8"))  # owner-only, like the appends
            else:
                append_line(self.spool, json.dumps(entry, ensure_ascii=False))
        except OSError as exc:
            why = exc.strerror or str(exc)
            self._warn(f"audit entry not kept: service down and {self.spool} cannot be written ({why})")

    def _warn(self, text: str) -> None:
        if self.warn is not None:
            self.warn(text)

    def _pending(self) -> tuple[list[dict[str, Any]], int]:
        """The spooled entries, oldest first, and how many lines were unreadable (torn, not entries)."""
        if self.spool is None:
            return [], 0
        lines = read_json_lines(self.spool)
        out = []
        for item in lines.values:
            if isinstance(item, dict) and isinstance(item.get("action"), str):
                out.append({"action": item["action"], "detail": str(item.get("detail", ""))})
        return out, lines.damaged + len(lines.values) - len(out)
