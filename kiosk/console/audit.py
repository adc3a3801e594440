"""The audit trail of the console: who did what, when, and with what result.

``ConsoleAudit`` sends each entry to the service (``console.audit``, recorded by
``kiosk.maintenance.audit``); while the service does not answer (being restarted, say) entries
are spooled to a local file and forwarded, oldest first, with the next entry that gets through —
so nothing a technician did goes unrecorded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kiosk.durable import append_line, write_atomic
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

    def __init__(self, client: Any, spool_dir: Path | None) -> None:
        self.client = client
        self.spool = Path(spool_dir) / SPOOL_NAME if spool_dir is not None else None

    def record(self, action: str, command: str, result: str) -> None:
        entry = {"action": action, "detail": detail_of(command, result, round(time.time(), 3))}
        pending = self._pending() + [entry]
        sent = 0
        for item in pending:
            try:
                self.client.call("console.audit", timeout=3.0, **item)
            except ApiError:
                break
            sent += 1
        rest = pending[sent:]
        if self.spool is None:
            return
        try:
            if not rest:
                self.spool.unlink(missing_ok=True)
            elif sent or len(rest) == 1:
                data = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in rest)
                write_atomic(self.spool, data.encode("utf-8"))  # owner-only, like the appends
            else:
                append_line(self.spool, json.dumps(entry, ensure_ascii=False))
        except OSError:
            pass  # nowhere to keep it; the console goes on

    def _pending(self) -> list[dict[str, Any]]:
        if self.spool is None or not self.spool.exists():
            return []
        out = []
        try:
            for line in self.spool.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(item, dict) and isinstance(item.get("action"), str):
                    out.append({"action": item["action"], "detail": str(item.get("detail", ""))})
        except (OSError, UnicodeDecodeError):
            return []
        return out
