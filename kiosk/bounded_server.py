"""Connection bounds shared by the two local servers (the service socket, the UI's HTTP server).

A thread per connection without a bound let idle or hostile clients take every thread and file
descriptor of the service (issue 13). This mix-in for a ``socketserver`` threading server serves
at most ``max_connections`` at once (a connection beyond that waits ``slot_wait_s`` for a slot, then
is closed) and gives every accepted socket a timeout, so an idle or stalled peer is dropped.
"""

from __future__ import annotations

import threading
from typing import Any


class BoundedConnections:
    """Mix in before a socketserver threading server: ``class S(BoundedConnections, ThreadingHTTPServer)``."""

    daemon_threads = True  # a connection's thread never holds the process open

    def __init__(
        self,
        *args: Any,
        max_connections: int,
        idle_timeout_s: float,
        slot_wait_s: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.slots = threading.BoundedSemaphore(max_connections)
        self.idle_timeout_s = idle_timeout_s
        self.slot_wait_s = slot_wait_s  # 0: a connection beyond the bound is closed at once
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        # a burst waits a moment for a slot (the next ones queue in the kernel's backlog, holding
        # no descriptor of ours); a flood that holds every slot is closed
        if self.slot_wait_s > 0:
            free = self.slots.acquire(timeout=self.slot_wait_s)
        else:
            free = self.slots.acquire(blocking=False)
        if not free:
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        try:
            request.settimeout(self.idle_timeout_s)  # per socket operation: idle or stalled is dropped
            super().process_request(request, client_address)  # type: ignore[misc]
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self.slots.release()
