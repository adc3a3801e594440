"""sd_notify spoken directly: one datagram per message to ``$NOTIFY_SOCKET`` (no libsystemd needed).

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op that returns False, so the same service
code runs on a laptop and under ``Type=notify``.
"""

from __future__ import annotations

import os
import socket

from kiosk.errors import KioskError


class NotifyError(KioskError):
    """The notify socket named in the environment is unusable."""


def _address(value: str) -> str | bytes:
    if value.startswith("@"):  # abstract namespace: a leading NUL byte instead of the '@'
        return b"\0" + value[1:].encode()
    if not value.startswith("/"):
        raise NotifyError(f"NOTIFY_SOCKET={value!r}: expected an absolute path or @abstract name")
    return value


def _field(key: str, value: object) -> str:
    text = str(value)
    if "\n" in text or "=" in key or "\n" in key:
        raise NotifyError(f"sd_notify field {key!r}: keys may not contain '=' and values no newline")
    return f"{key}={text}"


class Notifier:
    """Sends sd_notify state changes; construct once per process (reads the environment once).

    ``unset_environment`` removes NOTIFY_SOCKET/WATCHDOG_* so that child processes (Chromium, a
    printer helper) do not speak for the service by mistake.
    """

    def __init__(self, socket_path: str | None = None, *, unset_environment: bool = False) -> None:
        self.path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
        self._address = _address(self.path) if self.path else None
        self.watchdog_usec = watchdog_usec()
        if unset_environment:
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str, **named: object) -> bool:
        """Send one datagram with ``KEY=VALUE`` lines; returns False when not under systemd."""
        if self._address is None:
            return False
        lines = list(fields) + [_field(k, v) for k, v in named.items()]
        payload = "\n".join(lines).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.sendto(payload, self._address)
            except OSError as exc:
                raise NotifyError(f"sd_notify to {self.path}: {exc.strerror or exc}") from None
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up checks are done: systemd marks the unit active and starts the watchdog clock."""
        if status is None:
            return self.notify("READY=1", MAINPID=os.getpid())
        return self.notify("READY=1", MAINPID=os.getpid(), STATUS=status)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        """One keep-alive; call it only from the main loop (see ``kiosk.fleet.health.Watchdog``)."""
        return self.notify("WATCHDOG=1")

    def watchdog_trigger(self) -> bool:
        """Ask systemd to treat the service as hung right now (a failed health check)."""
        return self.notify("WATCHDOG=trigger")

    def reloading(self) -> bool:
        return self.notify("RELOADING=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", **({"STATUS": status} if status else {}))


def watchdog_usec() -> int | None:
    """The watchdog period systemd set for this process, or None when the watchdog is off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # meant for another process (we were forked or exec'd by the service)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value if value > 0 else None
