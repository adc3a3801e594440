"""The fleet's side: every terminal's availability and state from the broker's retained messages, as
rows with the problems first (`kiosk fleet watch`). Read-only: a watcher subscribes, never publishes.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kiosk.monitor.client import MonitorError, make_client, parse_topic, subscription
from kiosk.monitor.state import clean, policy


@dataclass
class Terminal:
    hall: str
    station: str
    online: bool | None = None  # None: no availability seen yet
    changed_at: float | None = None  # when this watcher saw it go online/offline
    state: dict[str, Any] = field(default_factory=dict)
    last_event: dict[str, Any] | None = None

    def problems(self) -> list[str]:
        """What is wrong, worst first (policy.toml [problems])."""
        p = policy()["problems"]
        s = self.state
        out = []
        if self.online is False:
            out.append("offline")
        printer = s.get("printer") or {}
        if printer.get("fault"):
            out.append(f"printer {printer['fault']}")
        if printer.get("paper") in p["paper"]:
            out.append(f"paper {printer['paper']}")
        if s.get("camera_ok") is False:
            out.append("camera")
        if s.get("store") in ("error", "refused"):
            out.append(f"store {s['store']}")
        oldest = (s.get("outbox") or {}).get("oldest_s")
        if oldest is not None and oldest > p["backlog_oldest_s"]:
            out.append("backlog")
        if (s.get("update") or {}).get("last") in p["update_last"]:
            out.append(f"update {s['update']['last']}")
        disk = s.get("disk_free_mb")
        if disk is not None and disk < p["disk_free_mb"]:
            out.append("disk")
        return out

    def since(self) -> float | None:
        """Since when online/offline: what this watcher saw, or the last state's time for a terminal
        already offline when the watcher started (the retained will says no more)."""
        if self.online is False and self.changed_at is None:
            return self.state.get("at")
        return self.changed_at

    def row(self) -> dict[str, Any]:
        s = self.state
        return {
            "hall": self.hall,
            "station": self.station,
            "online": self.online,
            "since": self.since(),
            "problems": self.problems(),
            "paper": (s.get("printer") or {}).get("paper"),
            "printer_fault": (s.get("printer") or {}).get("fault"),
            "version": s.get("version"),
            "release": s.get("release"),
            "update": (s.get("update") or {}).get("phase"),
            "backlog": (s.get("outbox") or {}).get("backlog"),
            "backlog_oldest_s": (s.get("outbox") or {}).get("oldest_s"),
            "numbers_today": s.get("numbers_today"),
            "state_at": s.get("at"),
        }


class FleetView:
    """Terminals by (hall, station), fed with MQTT messages; thread-safe."""

    def __init__(self, hall: str | None = None) -> None:
        self.hall = hall
        self.terminals: dict[tuple[str, str], Terminal] = {}
        self.messages = 0
        self.last_message = time.monotonic()
        self.changed = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged the subscription (or refused)
        self.failure: list[str] = []  # why the broker refused, one line each
        self.live = False  # a message not from the retained store arrived: the retained ones are all in
        self._lock = threading.Lock()

    def feed(self, topic: str, payload: bytes, retained: bool = False) -> None:
        where = parse_topic(topic)
        if where is None or (self.hall and where[0] != self.hall):
            return
        hall, station, kind = where
        with self._lock:
            self.messages += 1
            self.last_message = time.monotonic()
            self.live = self.live or not retained
            t = self.terminals.get((hall, station))
            if t is None:
                t = self.terminals[(hall, station)] = Terminal(hall, station)
            if kind == "availability":
                online = payload == b"online"
                if t.online is not None and online != t.online or not retained:
                    t.changed_at = time.time()
                t.online = online
            elif kind == "state":
                try:
                    t.state = clean(json.loads(payload))  # a watcher trusts no field it does not know
                except (ValueError, UnicodeDecodeError):
                    return
            elif kind == "event":
                try:
                    t.last_event = json.loads(payload)
                except (ValueError, UnicodeDecodeError):
                    return
        self.changed.set()

    def rows(self) -> list[dict[str, Any]]:
        """Problems first (offline first among them), then by hall and station."""
        with self._lock:
            rows = [t.row() for t in self.terminals.values()]
        order = lambda r: (not r["problems"], r["online"] is not False, r["hall"], r["station"])  # noqa: E731
        return sorted(rows, key=order)


def _age(t: float | None, now: float) -> str:
    if t is None:
        return "-"
    s = max(0, int(now - t))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


COLUMNS = ("HALL", "STATION", "ONLINE", "SINCE", "PAPER", "PRINTER", "VERSION", "UPDATE", "BACKLOG",
           "PROBLEMS")


def render_table(rows: list[dict[str, Any]], now: float | None = None) -> str:
    """The live table's text: one line per terminal, problems first."""
    now = time.time() if now is None else now
    lines = [COLUMNS]
    for r in rows:
        online = "?" if r["online"] is None else ("online" if r["online"] else "OFFLINE")
        backlog = "-" if r["backlog"] is None else str(r["backlog"])
        if r["backlog_oldest_s"]:
            backlog += f" ({_age(now - r['backlog_oldest_s'], now)})"
        lines.append((
            r["hall"], r["station"], online, _age(r["since"], now), r["paper"] or "-",
            r["printer_fault"] or "ok", r["version"] or "-", r["update"] or "-", backlog,
            ", ".join(r["problems"]) or "-",
        ))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def connect_view(
    mc: Any, broker: str | None, hall: str | None, client_id: str, timeout: float = 10.0
) -> tuple[Any, FleetView]:
    """A watcher's client subscribed to the terminals' topics, feeding a FleetView (loop running).
    The first connection is made here, so that a refused connection or a failed TLS handshake is
    one MonitorError naming why; later losses are reconnected by paho's thread."""
    view = FleetView(hall)
    client, where = make_client(mc, client_id, broker)
    subscribed, failure = view.subscribed, view.failure

    def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            failure.append(str(reason))
            subscribed.set()
            return
        c.subscribe(subscription(hall), qos=1)

    def on_subscribe(_c: Any, _u: Any, _mid: Any, reasons: Any, _p: Any) -> None:
        if any(getattr(r, "is_failure", False) for r in reasons):
            failure.append("subscription refused (the ACL lets this user read kiosk/#?)")
        view.last_message = time.monotonic()
        subscribed.set()

    def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not subscribed.is_set():  # e.g. TLS 1.3: a refused client certificate shows up only now
            failure.append(f"the broker closed the connection ({reason}; a client certificate it refuses?)")
            subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_disconnect = on_disconnect
    client.on_message = lambda _c, _u, msg: view.feed(msg.topic, msg.payload, msg.retain)
    client.connect_timeout = timeout
    try:
        client.connect(where.host, where.port, keepalive=30)
    except ssl.SSLError as exc:
        raise MonitorError(f"TLS: {exc.reason or exc}") from None
    except OSError as exc:
        raise MonitorError(f"cannot connect: {exc.strerror or exc}") from None
    client.loop_start()
    return client, view


def snapshot(view: FleetView, timeout: float, quiet: float = 0.5) -> bool:
    """Wait for the retained messages after the subscription: until a live (not retained) message
    arrives -- the broker sends a subscription's retained messages before anything published later
    -- or none came for ``quiet`` seconds (a busy fleet is never quiet). False when the broker did
    not answer within ``timeout``."""
    end = time.monotonic() + timeout
    if not view.subscribed.wait(timeout):
        return False
    while time.monotonic() < end:
        if view.live or time.monotonic() - view.last_message >= quiet:
            return True
        time.sleep(0.02)
    return True
