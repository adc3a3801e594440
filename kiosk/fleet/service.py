"""Restarting the service and judging its health after an update.

``SystemdControl`` is the terminal's: ``systemctl restart --no-block`` and polling the unit's
ActiveState (a Type=notify unit turns active only at READY=1), MainPID and NRestarts.
``CommandControl`` runs a configurable command itself with its own NOTIFY_SOCKET, standing in for
systemd where there is none (tests, a developer's machine).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Protocol

from kiosk.errors import KioskError


class ServiceControl(Protocol):
    def restart(self) -> None: ...

    def wait_ready(self, timeout: float) -> str | None:
        """None once the service reported READY, else why not (one line)."""

    def wait_stable(self, seconds: float) -> str | None:
        """None if the service stayed up for ``seconds``, else what happened."""


class SystemdControl:
    def __init__(self, unit: str = "kiosk.service", systemctl: str = "systemctl") -> None:
        self.unit = unit
        self.systemctl = systemctl
        self._pid: str | None = None
        self._restarts: str | None = None

    def _show(self) -> dict[str, str]:
        out = subprocess.run(
            [self.systemctl, "show", self.unit, "-p", "ActiveState,SubState,MainPID,NRestarts,Result"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.returncode != 0:
            raise KioskError(f"systemctl show {self.unit}: {out.stderr.strip() or out.returncode}")
        return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def restart(self) -> None:
        out = subprocess.run(
            [self.systemctl, "restart", "--no-block", self.unit], capture_output=True, text=True, timeout=60
        )
        if out.returncode != 0:
            raise KioskError(f"systemctl restart {self.unit}: {out.stderr.strip() or out.returncode}")

    def wait_ready(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self._show()
            if s.get("ActiveState") == "active" and s.get("MainPID", "0") != "0":
                self._pid, self._restarts = s["MainPID"], s.get("NRestarts")
                return None
            if s.get("ActiveState") == "failed":
                return f"{self.unit} failed ({s.get('Result')}) before READY"
            time.sleep(0.5)
        return f"no READY from {self.unit} within {timeout:g} s"

    def wait_stable(self, seconds: float) -> str | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            s = self._show()
            if s.get("ActiveState") != "active" or s.get("MainPID") != self._pid:
                return f"{self.unit} restarted or stopped during the stable period ({s.get('Result')})"
            if s.get("NRestarts") != self._restarts:
                return f"{self.unit} was restarted by systemd during the stable period"
            time.sleep(1.0)
        return None


def _gone(pid: int) -> bool:
    """The process has exited: reaped here if it is our child, or a zombie awaiting its parent."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True
    except (OSError, IndexError):
        return False


class CommandControl:
    """Runs ``command`` (with ``{root}`` substituted) as the service, with a private notify socket."""

    def __init__(self, command: str, root: Path) -> None:
        self.argv = [a.replace("{root}", str(root)) for a in shlex.split(command)]
        if not self.argv:
            raise KioskError("restart command is empty")
        self.run_dir = root / "run"
        self.pidfile = self.run_dir / "service.pid"
        self.sock_path = self.run_dir / "notify.sock"
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None

    def _stop_previous(self) -> None:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        for _ in range(100):
            if _gone(pid):
                return
            time.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def restart(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._stop_previous()
        if self._sock is not None:
            self._sock.close()
        self.sock_path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind(str(self.sock_path))
        env = dict(os.environ, NOTIFY_SOCKET=str(self.sock_path))
        # The service's output goes to run/service.log, not to our stdout: it outlives this command.
        try:
            with open(self.run_dir / "service.log", "ab") as log:
                self._proc = subprocess.Popen(
                    self.argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
        except OSError as exc:
            raise KioskError(f"restart command {self.argv[0]}: {exc.strerror or exc}") from None
        self.pidfile.write_text(str(self._proc.pid))

    def _messages(self, until: float) -> list[str] | None:
        assert self._sock is not None
        self._sock.settimeout(max(0.0, min(0.1, until - time.monotonic())) or 0.001)
        try:
            return self._sock.recv(4096).decode(errors="replace").split("\n")
        except TimeoutError:
            return None

    def wait_ready(self, timeout: float) -> str | None:
        assert self._proc is not None, "restart() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self._messages(deadline)
            if msg and "READY=1" in msg:
                return None
            if self._proc.poll() is not None:
                return f"service exited with status {self._proc.returncode} before READY"
        return f"no READY from the service within {timeout:g} s"

    def wait_stable(self, seconds: float) -> str | None:
        assert self._proc is not None, "restart() first"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self._messages(deadline)
            if msg and "WATCHDOG=trigger" in msg:
                return "service reported itself unhealthy (WATCHDOG=trigger)"
            if self._proc.poll() is not None:
                return f"service exited with status {self._proc.returncode} during the stable period"
        return None
