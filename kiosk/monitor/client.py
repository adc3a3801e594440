"""Topics, the broker address and one way to open a paho-mqtt client for a terminal or a watcher.

TLS (``mqtts://``) checks the broker against ``ca_file`` (or the system's CAs) and presents the
terminal's client certificate when one is configured; a password is read from its file when the
client is made, never from the configuration itself.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError

ROOT = "kiosk"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
ONLINE, OFFLINE = b"online", b"offline"


class MonitorError(KioskError):
    """Monitoring cannot be set up (a bad broker address, an unreadable password or certificate)."""


@dataclass(frozen=True)
class Topics:
    """kiosk/<hall>/<station>/{availability,state,event}."""

    hall: str
    station: str

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.hall}/{self.station}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        return f"{self.base}/event"


def subscription(hall: str | None) -> str:
    """What a watcher subscribes to: every terminal, or one hall's."""
    return f"{ROOT}/{hall or '+'}/+/+"


def parse_topic(topic: str) -> tuple[str, str, str] | None:
    """(hall, station, kind) of a terminal's topic; None for anything else."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != ROOT or parts[3] not in ("availability", "state", "event"):
        return None
    return parts[1], parts[2], parts[3]


@dataclass(frozen=True)
class Broker:
    tls: bool
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Broker:
        u = urllib.parse.urlsplit(url)
        try:
            port = u.port
        except ValueError:
            port = -1
        if u.scheme not in DEFAULT_PORTS or not u.hostname or port == -1:
            raise MonitorError(f"broker: expected mqtt://HOST:PORT or mqtts://HOST:PORT, not {url!r}")
        return cls(u.scheme == "mqtts", u.hostname, port or DEFAULT_PORTS[u.scheme])


def make_client(mc: Any, client_id: str, broker: str | None = None) -> tuple[Any, Broker]:
    """A paho client (MQTT 3.1.1, clean session) with the [monitor] credentials; not yet connected."""
    import paho.mqtt.client as mqtt

    where = Broker.parse(broker or mc.broker)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True
    )
    if where.tls:
        try:
            client.tls_set(
                ca_certs=mc.ca_file or None, certfile=mc.client_cert or None, keyfile=mc.client_key or None
            )
        except (OSError, ValueError) as exc:
            raise MonitorError(f"monitor TLS: {getattr(exc, 'strerror', None) or exc}") from None
    if mc.username:
        try:
            password = Path(mc.password_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise MonitorError(f"monitor password_file: {getattr(exc, 'strerror', None) or exc}") from None
        client.username_pw_set(mc.username, password)
    client.reconnect_delay_set(min_delay=1, max_delay=60)  # paho doubles the wait up to a minute
    return client, where
