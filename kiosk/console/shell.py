"""The console process: a serial line, a login gate, and a command loop over the service API.

One technician at a time on one line. The loop never blocks for long on the line: reads time
out every 0.1 s (idle logout, login delays), writes time out so a stalled terminal (flow
control, a half-pulled cable) only loses output. A line that disappears (USB adapter unplugged,
the pty's other end closed) logs the technician out and the console waits for it to come back.
"""

from __future__ import annotations

import math
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kiosk import __version__
from kiosk.config import ConsoleConfig, load_config
from kiosk.console.audit import ConsoleAudit
from kiosk.console.commands import COMMANDS, completions
from kiosk.console.guard import LoginGuard
from kiosk.console.lineedit import EndOfInput, Interrupt, Line, LineEditor, TooLong
from kiosk.console.pin import MIN_DIGITS, looks_like_pin, verify_pin
from kiosk.console.text import to_terminal
from kiosk.errors import InputError, KioskError
from kiosk.service_api import ApiError, ServiceDown, call, socket_path

MAX_LINE = 200
READ_CHUNK = 4096
PROMPT = "kiosk> "
PIN_PROMPT = "PIN: "


class Port(Protocol):
    in_waiting: int

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def close(self) -> None: ...


class ServiceClient:
    """The service's socket, with a default timeout per call."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def call(self, cmd: str, timeout: float | None = None, **args: Any) -> Any:
        return call(self.path, cmd, timeout=timeout or self.timeout, **args)


@dataclass
class Pending:
    """A question waiting for its answer line (confirmations, new PIN)."""

    command: str  # the command line it belongs to, for the audit
    prompt: str
    answer: Callable[[str], str | None]  # answer line -> result for the audit (None: another question)
    secret: bool = False


def with_baud(cfg: ConsoleConfig, baud: int) -> ConsoleConfig:
    """The configuration with another line speed (from the command line), checked like the file's."""
    from dataclasses import replace

    from kiosk.config import _BAUDS

    if baud not in _BAUDS:
        raise InputError(f"--baud: expected one of {', '.join(map(str, _BAUDS))}")
    return replace(cfg, baud=baud)


def open_serial(port: str, baud: int) -> Any:
    """8N1, no flow control; short read timeout so the loop stays responsive."""
    import serial  # pyserial; imported here so the rest of kiosk does not need it

    return serial.Serial(
        port,
        baudrate=baud,
        bytesize=8,
        parity="N",
        stopbits=1,
        timeout=0.1,
        write_timeout=2.0,
        xonxoff=False,
        rtscts=False,
        dsrdtr=False,
    )


def _line_errors() -> tuple[type[BaseException], ...]:
    try:
        import serial

        return (serial.SerialException, OSError)
    except ImportError:
        return (OSError,)


class Console:
    """Login, prompt, commands. Fed with bytes; writes to the current port."""

    def __init__(
        self,
        cfg: ConsoleConfig,
        client: ServiceClient,
        state_dir: Path | None,
        clock: Callable[[], float] = time.monotonic,
        reload: Callable[[], ConsoleConfig] | None = None,
        config_file: Path | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.log = log  # the console's own log (stderr, the journal under systemd)
        self.state_dir = state_dir
        self.config_file = config_file  # base file: `config` edits its local file while the service is down
        self.reload = reload  # re-reads the configuration: a PIN changed with `pin` works at once
        self.client = client
        self.clock = clock
        self.commands = COMMANDS
        self.guard = LoginGuard(cfg, state_dir, log=log)
        self.audit = ConsoleAudit(client, state_dir, warn=self._audit_warning)
        self.editor = LineEditor(max_len=MAX_LINE, completer=completions)
        self.port: Any = None
        self.lost: BaseException | None = None  # the write that found the line gone
        self.logged_in = False
        self.pending: Pending | None = None
        self.last_input = clock()
        self.waiting_prompt = False  # the PIN prompt is due once the login delay is over

    # --- output -----------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Never raises: a stalled line loses the output, a vanished one is noted for the loop."""
        if self.port is None or self.lost is not None or not data:
            return
        try:
            self.port.write(data)
        except Exception as exc:
            if not _is_write_timeout(exc):
                self.lost = exc

    def say(self, text: str) -> None:
        self.write(to_terminal(text))

    def _audit_warning(self, text: str) -> None:
        """An audit entry that could not be kept: the technician and the log are told."""
        self.say(text)
        if self.log is not None:
            self.log(text)

    def _flush_echo(self) -> None:
        self.write(self.editor.take_output())

    def prompt(self) -> None:
        if self.pending is not None:
            self.editor.reset(self.pending.prompt, secret=self.pending.secret)
        elif self.logged_in:
            self.editor.reset(PROMPT, secret=False)
        else:
            wait = self.guard.wait_s()
            if wait > 0:
                self.waiting_prompt = True
                return
            self.editor.reset(PIN_PROMPT, secret=True)
        self.waiting_prompt = False
        self.write(self.editor.prompt.encode("utf-8"))

    # --- the line ---------------------------------------------------------------------------------

    def attach(self, port: Any) -> None:
        self.port = port
        self.lost = None
        self.last_input = self.clock()
        self.editor.reset()
        self.say(f"\nkiosk {__version__} maintenance console")
        if self.guard.locked:
            self.say(f"locked after failed logins; try again in {_secs(self.guard.wait_s())} s")
        self.prompt()

    def detach(self, reason: str) -> None:
        if self.logged_in:
            self.audit.record("logout", "", reason)
        self.logged_in = False
        self.pending = None
        self.port = None
        self.editor.reset()

    def feed(self, data: bytes) -> None:
        self.last_input = self.clock()
        waiting = not self.logged_in and self.waiting_prompt
        events = self.editor.feed(data)
        if waiting:  # typed during a login delay: not an attempt, not echoed
            self.editor.take_output()
            if any(isinstance(e, Line) for e in events):
                self.say(f"wait {_secs(self.guard.wait_s())} s")
            self.editor.reset()
            return
        for ev in events:
            self._flush_echo()
            self._event(ev)
            if self.port is None:
                return
        self._flush_echo()

    def tick(self) -> None:
        now = self.clock()
        if self.waiting_prompt and self.guard.wait_s() <= 0:
            self.prompt()
        if self.logged_in and now - self.last_input > self.cfg.idle_timeout_s:
            self.say(f"\nno input for {self.cfg.idle_timeout_s:.0f} s: logged out")
            self.audit.record("logout", "", "idle")
            self.logged_in = False
            self.pending = None
            self.prompt()

    def _event(self, ev: Any) -> None:
        if isinstance(ev, Interrupt):
            if self.pending is not None:
                self._answer_pending(None)
            self.prompt()
        elif isinstance(ev, TooLong):
            self.say(f"line too long (more than {ev.limit} characters): ignored")
            self.prompt()
        elif isinstance(ev, EndOfInput):
            if self.logged_in and self.pending is None:
                self.logout("logout (Ctrl-D)")
            self.prompt()  # after a logout: the PIN prompt, and what is typed next is hidden
        elif isinstance(ev, Line):
            if self.pending is not None:
                self._answer_pending(ev.text)
            elif self.logged_in:
                self.run_line(ev.text)
            else:
                self._login(ev.text)
            if self.port is not None and not self.waiting_prompt:
                self.prompt()

    # --- login ------------------------------------------------------------------------------------

    def _current_pin_hash(self) -> str:
        if self.reload is not None:
            try:
                return self.reload().pin_hash
            except KioskError:
                pass  # a configuration broken since the start: keep the PIN that was loaded
        return self.cfg.pin_hash

    def _login(self, pin: str) -> None:
        if not pin:
            return
        pin_hash = self._current_pin_hash()
        if not pin_hash:
            self.say("no technician PIN is configured (console.pin_hash); see `kiosk console --hash-pin`")
            return
        if self.guard.wait_s() > 0:
            self.say(f"wait {_secs(self.guard.wait_s())} s")
            return
        if not looks_like_pin(pin):  # noise on the line is not an attempt
            self.say("a PIN is 6 to 16 digits")
            return
        if verify_pin(pin, pin_hash):
            self.guard.success()
            self.logged_in = True
            self.audit.record("login", "", "ok")
            self.say(f"logged in; idle logout after {self.cfg.idle_timeout_s:.0f} s. Type `help`.")
            if len(pin) < MIN_DIGITS:
                self.say(f"NOTE: this PIN is shorter than {MIN_DIGITS} digits: change it now with `pin`")
            self._config_notice()
            return
        wait = self.guard.failure()
        if self.guard.locked_until:
            self.audit.record("login", "", f"wrong PIN; locked for {_secs(wait)} s")
            self.say(f"wrong PIN. Too many attempts: locked for {_secs(wait)} s")
        else:
            self.audit.record("login", "", f"wrong PIN ({self.guard.failures} of {self.cfg.max_attempts})")
            self.say(f"wrong PIN; wait {_secs(wait)} s")

    def _config_notice(self) -> None:
        """A service that did not start, or started without the technician's latest changes, is
        the first thing the technician needs to know (and can fix with `config set`)."""
        try:
            state = self.call("console.config_state", timeout=3.0).get("config", "")
        except ServiceDown:
            state = "the service is not running"
            if self.config_file is not None:
                try:
                    fallback = load_config(self.config_file, self.state_dir).source.fallback
                except KioskError as exc:
                    fallback = str(exc)
                state += f"; configuration: {fallback}" if fallback else ""
        except (ApiError, AttributeError):
            return
        if state and state != "as written":
            self.say(f"NOTE: {state}")

    def logout(self, how: str) -> None:
        self.audit.record("logout", "", how)
        self.logged_in = False
        self.pending = None
        self.say("logged out")

    # --- commands ---------------------------------------------------------------------------------

    def run_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            words = shlex.split(line)
        except ValueError:
            self.say("error: unbalanced quotes")
            self.audit.record("command", line, "error: unbalanced quotes")
            return
        name = words[0].lower()
        cmd = self.commands.get(name)
        if cmd is None:
            self.say(f"unknown command {name!r}; type `help`")
            self.audit.record("command", line, "unknown command")
            return
        try:
            result = cmd.run(self, words[1:])
        except KioskError as exc:
            self.say(f"error: {exc}")
            self.audit.record("command", line, f"error: {exc}")
            return
        except Exception as exc:  # a bug in a command must not end the console
            self.say(f"error: internal error in {name}: {type(exc).__name__}")
            self.audit.record("command", line, f"internal error: {type(exc).__name__}: {exc}")
            return
        if result is not None:  # None: a question is pending, audited when answered
            self.audit.record("command", line, result)

    def ask(
        self, command: str, prompt: str, answer: Callable[[str], str | None], secret: bool = False
    ) -> None:
        self.pending = Pending(command, prompt, answer, secret)

    def _answer_pending(self, text: str | None) -> None:
        pending, self.pending = self.pending, None
        assert pending is not None
        if text is None:
            self.audit.record("command", pending.command, "cancelled")
            return
        try:
            result = pending.answer(text)
        except KioskError as exc:
            self.say(f"error: {exc}")
            result = f"error: {exc}"
        if result is not None:
            self.audit.record("command", pending.command, result)

    def call(self, cmd: str, timeout: float | None = None, **args: Any) -> Any:
        return self.client.call(cmd, timeout=timeout, **args)

    # --- the loop ---------------------------------------------------------------------------------

    def serve(self, port: Any, stop: threading.Event) -> str:
        """Run on one open port until it fails or stop is set; returns why it ended."""
        errors = _line_errors()
        self.attach(port)
        try:
            while not stop.is_set() and self.lost is None:
                data = port.read(1)
                if data:
                    waiting = port.in_waiting
                    if waiting:
                        data += port.read(min(waiting, READ_CHUNK))
                    self.feed(data)
                self.tick()
        except errors as exc:
            self.lost = exc
        if self.lost is not None:
            why = f"line lost: {self.lost}"
            self.detach("line lost")
            return why
        self.detach("console stopped")
        return "stopped"


def _secs(wait: float) -> int:
    """Whole seconds to wait, rounded up: never tell someone to wait 0 s while they must wait."""
    return math.ceil(wait - 1e-6)


def _is_write_timeout(exc: BaseException) -> bool:
    try:
        import serial

        return isinstance(exc, serial.SerialTimeoutException)
    except ImportError:
        return False


def run_console(
    cfg: ConsoleConfig,
    state_dir: Path,
    port: str | None = None,
    stop: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
    opener: Callable[[str, int], Any] = open_serial,
    reload: Callable[[], ConsoleConfig] | None = None,
    handle_signals: bool = False,
    config_file: Path | None = None,
) -> None:
    """Open the port, serve it, reopen it when it comes back; until stop is set (or, with
    handle_signals, SIGTERM/SIGHUP from systemd: the technician is logged out and audited first)."""
    stop = stop or threading.Event()
    if handle_signals:
        import signal

        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())
    device = port or cfg.port
    console = Console(
        cfg,
        ServiceClient(socket_path(state_dir)),
        state_dir,
        reload=reload,
        config_file=config_file,
        log=log,
    )
    errors = _line_errors()
    last_error = ""
    while not stop.is_set():
        try:
            handle = opener(device, cfg.baud)
        except errors as exc:
            msg = f"cannot open {device}: {exc}"
            if log and msg != last_error:
                log(msg)
            last_error = msg
            stop.wait(0.5)
            continue
        last_error = ""
        try:
            why = console.serve(handle, stop)
        finally:
            try:
                handle.close()
            except errors:
                pass
        if log and why != "stopped":
            log(why)
