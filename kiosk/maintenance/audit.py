"""Where the console's audit entries end up, service side: the store's audit table when the
service has a store, else ``console-audit.jsonl`` in the state dir."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from kiosk.durable import append_line
from kiosk.errors import KioskError

ACTOR = "console"
FALLBACK_NAME = "console-audit.jsonl"


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

    def tail(self, n: int) -> list[dict[str, Any]]:
        with self._lock:
            if self.store is not None and hasattr(self.store, "audit_log"):
                rows = list(self.store.audit_log())
            elif self.path is not None and self.path.exists():
                rows = [
                    json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line
                ]
            else:
                rows = []
        return rows[-n:] if n > 0 else []
