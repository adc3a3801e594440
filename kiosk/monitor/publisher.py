"""The terminal's side: availability (with the broker's last will), state and events, published off
the session's thread.

The session thread only ever calls ``poke`` or ``session_changed``: a counter and an Event, never
the network, a lock held by the network or the store. A worker thread reads the snapshot the
service hands over, publishes the state when it changed (and at least every ``state_every_s``),
and derives events from the change. paho's own thread keeps the connection, reconnecting with a
doubling back-off; after every (re)connect the state is published again. While the broker is away,
events wait in a bounded queue (the oldest dropped and counted) and only the newest state is kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
import zoneinfo
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk.monitor.client import OFFLINE, ONLINE, Topics, make_client
from kiosk.monitor.state import clean, essence, event_kinds, events, outcome

log = logging.getLogger("kiosk.monitor")

THERMAL = Path("/sys/class/thermal")
ANNOUNCED_NAME = "monitor-update-announced"  # the last update outcome announced (survives restarts)
QOS = 1


def cpu_temperature(root: Path = THERMAL) -> float | None:
    """The CPU's temperature in °C from the kernel's thermal zones; None where there are none."""
    try:
        zones = sorted(root.glob("thermal_zone*"))
    except OSError:
        return None
    best = None
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip().lower()
            value = int((zone / "temp").read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
        if best is None or "cpu" in kind or "pkg" in kind or "soc" in kind:
            best = value
            if "cpu" in kind:
                break
    return best


class Monitor:
    """One terminal's publisher; ``start`` and ``stop`` are the service's, the rest is its own."""

    def __init__(
        self,
        mc: Any,
        station: str,
        snapshot: Callable[[], Mapping[str, Any]],
        *,
        version: str,
        state_dir: Path | None = None,
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self.mc = mc
        self.topics = Topics(mc.hall, station)
        self.snapshot = snapshot
        self.version = version
        self.state_dir = state_dir
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.started = time.monotonic()
        self._events: deque[bytes] = deque()
        self._state: bytes | None = None  # the newest state not yet handed to the broker
        self.dropped = 0
        self.reconnects = 0
        self.published = {"state": 0, "event": 0}
        self.last_state: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._poked = False
        self._republish = False
        self.connected = threading.Event()
        self._tally: dict[str, int] = {}
        self._tally_day = self._today()
        self._announced = self._load_announced()
        self.client, self.broker = make_client(mc, client_id=f"{mc.hall}/{station}")  # the ACL's %c
        self.client.will_set(self.topics.availability, OFFLINE, qos=QOS, retain=True)
        # a terminal configured to be missed quickly (small keepalive) also comes back quickly
        self.client.reconnect_delay_set(min_delay=1, max_delay=max(2, min(60, 4 * mc.keepalive_s)))
        self.client.max_queued_messages_set(max(16, mc.queue_max))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._worker = threading.Thread(target=self._run, name="monitor", daemon=True)

    # --- called by the service -------------------------------------------------------------------

    def start(self) -> Monitor:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.mc.keepalive_s)
        self.client.loop_start()  # paho's thread: connects, and reconnects with back-off
        self._worker.start()
        return self

    def poke(self) -> None:
        """Something may have changed: read the state now (O(1), any thread)."""
        self._poked = True
        self._wake.set()

    def session_changed(self, old: Any, new: Any) -> None:
        """A session listener (old, new state): count the session's outcome when it returns to idle."""
        if str(new) == "idle" and str(old) != "idle":
            day = self._today()
            with self._lock:
                if day != self._tally_day:
                    self._tally, self._tally_day = {}, day
                key = outcome(str(old))
                self._tally[key] = self._tally.get(key, 0) + 1
        self.poke()

    def event(self, kind: str, **fields: Any) -> None:
        """An event the service saw itself (a store error, say); only the kinds of policy.toml."""
        if kind in event_kinds():
            self._enqueue({"kind": kind, **{k: v for k, v in fields.items() if k in ("value", "version")}})
            self._wake.set()

    def status(self) -> dict[str, Any]:
        """For the service's `status`: where it reports and how it goes (no personal data)."""
        return {
            "broker": f"{'mqtts' if self.broker.tls else 'mqtt'}://{self.broker.host}:{self.broker.port}",
            "topic": self.topics.base,
            "connected": self.connected.is_set(),
            "queued": len(self._events) + (self._state is not None),
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "published": dict(self.published),
        }

    def stop(self, timeout: float = 2.0) -> None:
        """Say offline (retained) when connected, then disconnect; never waits longer than ``timeout``."""
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout)
        if self.connected.is_set():
            with contextlib.suppress(Exception):
                info = self.client.publish(self.topics.availability, OFFLINE, qos=QOS, retain=True)
                info.wait_for_publish(timeout)
        with contextlib.suppress(Exception):
            self.client.disconnect()
        with contextlib.suppress(Exception):
            self.client.loop_stop()

    # --- paho's thread -----------------------------------------------------------------------------

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("monitor: broker refused the connection: %s", reason)
            return
        client.publish(self.topics.availability, ONLINE, qos=QOS, retain=True)
        self.connected.set()
        self._republish = True  # a fresh state, whatever was retained before
        self.poke()

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self.connected.is_set():
            self.reconnects += 1
            log.info("monitor: disconnected from the broker (%s); reconnecting", reason)
        self.connected.clear()

    # --- the worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        next_poll = 0.0
        last_sent = float("-inf")
        last_essence: dict[str, Any] | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            if self._poked or now >= next_poll:
                self._poked = False
                state = self._take_state()
                if state is not None:
                    for ev in events(self.last_state, state, self._announced):
                        self._enqueue(ev)
                        if ev["kind"].startswith("update_"):
                            self._remember_announced(state["update"]["last_at"])
                    changed = essence(state) != last_essence
                    if changed or self._republish or now - last_sent >= self.mc.state_every_s:
                        self._republish = False
                        last_essence, last_sent = essence(state), now
                        with self._lock:
                            self._state = json.dumps(state, separators=(",", ":")).encode()
                    self.last_state = state
                next_poll = now + self.mc.poll_s
            self._flush()
            self._wake.wait(max(0.05, min(next_poll - time.monotonic(), 1.0)))
            self._wake.clear()

    def _take_state(self) -> dict[str, Any] | None:
        try:
            snap = dict(self.snapshot())
        except Exception as exc:  # noqa: BLE001 - a failing snapshot must not end monitoring
            log.warning("monitor: snapshot failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
            return None
        day = self._today()
        with self._lock:
            if day != self._tally_day:
                self._tally, self._tally_day = {}, day
            tally = dict(self._tally)
        sessions = dict(snap.get("sessions_today") or {})
        for key, n in tally.items():
            sessions[key] = sessions.get(key, 0) + n
        snap.update(
            version=self.version,
            uptime_s=time.monotonic() - self.started,
            sessions_today=sessions,
            disk_free_mb=self._disk_free_mb(),
            cpu_temp_c=cpu_temperature(),
            monitor={"dropped": self.dropped, "reconnects": self.reconnects},
            at=time.time(),
        )
        return clean(snap)

    def _enqueue(self, ev: dict[str, Any]) -> None:
        payload = json.dumps({**ev, "at": int(time.time())}, separators=(",", ":")).encode()
        with self._lock:
            if len(self._events) >= self.mc.queue_max:
                self._events.popleft()
                self.dropped += 1
            self._events.append(payload)

    def _flush(self) -> None:
        """Hand what waits to paho while connected; what paho cannot take now stays queued here."""
        import paho.mqtt.client as mqtt

        while self.connected.is_set():
            with self._lock:
                if self._events:
                    topic, payload, retain, kind = self.topics.event, self._events[0], False, "event"
                elif self._state is not None:
                    topic, payload, retain, kind = self.topics.state, self._state, True, "state"
                else:
                    return
            info = self.client.publish(topic, payload, qos=QOS, retain=retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # not connected after all, or paho's queue is full: try again later
            with self._lock:
                if kind == "event":
                    self._events.popleft()
                elif self._state is payload:
                    self._state = None
            self.published[kind] += 1

    def _today(self) -> str:
        return datetime.now(self.tz).date().isoformat()

    def _disk_free_mb(self) -> int | None:
        try:
            return shutil.disk_usage(self.state_dir or "/").free // 2**20
        except OSError:
            return None

    def _load_announced(self) -> int | None:
        if self.state_dir is None:
            return None
        try:
            return int((self.state_dir / ANNOUNCED_NAME).read_text().strip())
        except (OSError, ValueError):
            return None

    def _remember_announced(self, at: int | None) -> None:
        self._announced = at
        if self.state_dir is None or at is None:
            return
        path = self.state_dir / ANNOUNCED_NAME
        with contextlib.suppress(OSError):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(str(at))
            os.replace(tmp, path)
