"""The technician's commands: parse the words, call the service, print the reply.

Each command returns a short result for the audit log (or None while a confirmation is
pending). The work happens in the service (``kiosk.maintenance``); nothing here opens a
device, the store or a photo. Only `config` works while the service is down: it edits the
technician's file itself, with the same checks (``kiosk.config_edit``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kiosk import config_edit
from kiosk.config import ConsoleConfig, load_config
from kiosk.console.pin import hash_pin, valid_pin_format
from kiosk.console.text import render
from kiosk.errors import InputError, KioskError
from kiosk.service_api import ApiError, ServiceDown


class CommandHost(Protocol):
    """What a command uses of its console (kiosk.console.shell.Console is one): named here, so the
    commands need not import the shell that runs them (that was an import cycle)."""

    cfg: ConsoleConfig
    state_dir: Path | None
    config_file: Path | None  # the technician's file: `config` edits it while the service is down

    def say(self, text: str) -> None: ...

    def ask(
        self, command: str, prompt: str, answer: Callable[[str], str | None], secret: bool = False
    ) -> None: ...

    def call(self, cmd: str, timeout: float | None = None, **args: Any) -> Any: ...

    def logout(self, how: str) -> None: ...


Run = Callable[[CommandHost, list[str]], "str | None"]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    run: Run
    subs: tuple[str, ...] = ()


def _show(c: CommandHost, value: Any) -> None:
    c.say("\n".join(render(value)))


def _sub(args: list[str], allowed: tuple[str, ...], default: str, usage: str) -> tuple[str, list[str]]:
    sub = args[0].lower() if args else default
    if sub not in allowed:
        raise InputError(f"usage: {usage}")
    return sub, args[1:]


def _count(text: str, name: str, lo: int, hi: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise InputError(f"{name} must be a whole number") from None
    if not lo <= n <= hi:
        raise InputError(f"{name} must be between {lo} and {hi}")
    return n


def _outcome(value: Any) -> str:
    """A reply summarised in one line for the audit."""
    if isinstance(value, dict):
        for key in ("result", "summary", "state", "status"):
            if key in value and not isinstance(value[key], (dict, list)):
                return f"ok: {value[key]}"
    return "ok"


def _simple(service_cmd: str, timeout: float | None = None) -> Run:
    def run(c: CommandHost, args: list[str]) -> str:
        if args:
            raise InputError("this command takes no arguments")
        value = c.call(service_cmd, timeout=timeout)
        _show(c, value)
        return _outcome(value)

    return run


# --- commands --------------------------------------------------------------------------------------


def cmd_help(c: CommandHost, args: list[str]) -> str:
    if args:
        cmd = COMMANDS.get(args[0].lower())
        if cmd is None:
            raise InputError(f"no command {args[0]!r}")
        c.say(f"{cmd.usage}\n  {cmd.help}")
        return "ok"
    lines = ["commands (help COMMAND for details):"]
    for name, cmd in COMMANDS.items():
        if name != cmd.name:  # an alias
            continue
        lines.append(f"  {cmd.name:<10} {cmd.help}")
    c.say("\n".join(lines))
    return "ok"


def cmd_status(c: CommandHost, args: list[str]) -> str:
    if args:
        raise InputError("usage: status")
    try:
        value = c.call("status")
    except ApiError as exc:
        if "unknown command" not in str(exc):
            raise
        value = c.call("console.status")
    _show(c, value)
    return _outcome(value)


def cmd_lights(c: CommandHost, args: list[str]) -> str:
    sub, rest = _sub(args, ("status", "test", "set", "off"), "status", LIGHTS_USAGE)
    kw: dict[str, Any] = {"action": sub}
    if sub == "set":
        if len(rest) != 2:
            raise InputError(f"usage: {LIGHTS_USAGE}")
        kw["left"] = _count(rest[0], "LEFT", 0, 100)
        kw["right"] = _count(rest[1], "RIGHT", 0, 100)
    elif rest:
        raise InputError(f"usage: {LIGHTS_USAGE}")
    value = c.call("console.lights", timeout=30.0, **kw)
    _show(c, value)
    return _outcome(value)


def _part(name: str, usage: str) -> Run:
    def run(c: CommandHost, args: list[str]) -> str:
        sub, rest = _sub(args, ("status", "test"), "status", usage)
        if rest:
            raise InputError(f"usage: {usage}")
        value = c.call(f"console.{name}", timeout=30.0, action=sub)
        _show(c, value)
        return _outcome(value)

    return run


def cmd_receipt(c: CommandHost, args: list[str]) -> str:
    if len(args) != 2 or args[0].lower() != "reprint":
        raise InputError("usage: receipt reprint NUMBER")
    number = args[1]
    if not (1 <= len(number) <= 40 and number.isascii() and number.isalnum()):
        raise InputError("NUMBER: letters and digits, as printed on the slip")
    value = c.call("console.receipt_reprint", timeout=30.0, number=number)
    _show(c, value)
    return _outcome(value)


def cmd_store(c: CommandHost, args: list[str]) -> str | None:
    if [a.lower() for a in args] != ["acknowledge-loss"]:
        raise InputError(f"usage: {STORE_USAGE}")
    what = "accept that the store lost its records (numbers continue past the last ones handed out)"
    _confirm(c, "store acknowledge-loss", what, lambda: c.call("console.store_acknowledge_loss"))
    return None


def cmd_queue(c: CommandHost, args: list[str]) -> str:
    sub, rest = _sub(args, ("list", "retry"), "list", "queue [list | retry [ID]]")
    kw: dict[str, Any] = {"action": sub}
    if sub == "retry" and rest:
        kw["id"] = _count(rest[0], "ID", 1, 2**62)
        rest = rest[1:]
    if rest:
        raise InputError("usage: queue [list | retry [ID]]")
    value = c.call("console.queue", **kw)
    _show(c, value)
    return _outcome(value)


def cmd_config(c: CommandHost, args: list[str]) -> str:
    sub, rest = _sub(args, ("get", "set"), "get", CONFIG_USAGE)
    if sub == "get":
        if len(rest) > 1:
            raise InputError(f"usage: {CONFIG_USAGE}")
        key = rest[0] if rest else ""
        try:
            value = c.call("console.config_get", key=key)
        except ServiceDown:
            value = config_edit.get(load_config(_config_file(c), c.state_dir), key)
        _show(c, value)
        return "ok"
    if len(rest) < 2:
        raise InputError(f"usage: {CONFIG_USAGE}")
    key, text = rest[0], " ".join(rest[1:])
    try:
        value = c.call("console.config_set", key=key, value=text)
    except ServiceDown:
        # A configuration that stops the service from starting must be repairable from here: the
        # console runs as the same user and applies the same checks under the same lock.
        written = config_edit.set_value(_config_file(c), key, text)
        value = {
            "result": "the service is not running: written directly; takes effect when it starts",
            "key": key,
            "value": str(written),
        }
    _show(c, value)
    return f"ok: {key} = {value.get('value') if isinstance(value, dict) else value}"


def _config_file(c: CommandHost) -> Any:
    if c.config_file is None:
        raise KioskError("the service is not running and this console has no configuration file")
    return c.config_file


def cmd_pin(c: CommandHost, args: list[str]) -> str | None:
    if args:
        raise InputError("usage: pin")

    def second(first: str) -> Callable[[str], str]:
        def done(again: str) -> str:
            if again != first:
                c.say("the PINs differ; nothing changed")
                return "refused: PINs differ"
            value = c.call("console.pin_set", pin_hash=hash_pin(first))
            _show(c, value)
            return "ok: PIN changed"

        return done

    def first(text: str) -> str | None:
        if not valid_pin_format(text):
            c.say("a PIN is 6 to 16 digits; nothing changed")
            return "refused: bad PIN format"
        c.ask("pin", "new PIN again: ", second(text), secret=True)
        return None

    c.ask("pin", "new PIN (6-16 digits): ", first, secret=True)
    return None


def cmd_logs(c: CommandHost, args: list[str]) -> str:
    if len(args) > 1:
        raise InputError("usage: logs [N]")
    n = _count(args[0], "N", 1, 500) if args else 20
    value = c.call("console.logs", n=n)
    lines = value.get("lines", []) if isinstance(value, dict) else []
    c.say("\n".join(str(x) for x in lines) if lines else "(no log lines)")
    return f"ok: {len(lines)} lines"


def cmd_audit(c: CommandHost, args: list[str]) -> str:
    if len(args) > 1:
        raise InputError("usage: audit [N]")
    n = _count(args[0], "N", 1, 200) if args else 10
    value = c.call("console.audit_tail", n=n)
    _show(c, value)
    return "ok"


def cmd_update(c: CommandHost, args: list[str]) -> str | None:
    sub, rest = _sub(args, ("status", "apply", "rollback"), "status", UPDATE_USAGE)
    if sub == "status":
        if rest:
            raise InputError(f"usage: {UPDATE_USAGE}")
        value = c.call("console.update", action="status")
        _show(c, value)
        return _outcome(value)
    if sub == "apply" and len(rest) != 1 or sub == "rollback" and rest:
        raise InputError(f"usage: {UPDATE_USAGE}")
    kw: dict[str, Any] = {"action": sub}
    if rest:
        kw["bundle"] = rest[0]
    line = "update " + " ".join([sub, *rest])
    _confirm(c, line, f"{sub} the software now", lambda: c.call("console.update", timeout=600.0, **kw))
    return None


def cmd_service(c: CommandHost, args: list[str]) -> str | None:
    if [a.lower() for a in args] != ["restart"]:
        raise InputError("usage: service restart")

    def restart() -> Any:
        try:
            return c.call("console.service_restart", timeout=10.0)
        except ApiError as exc:
            if not c.cfg.restart_command:
                raise
            return {"result": _run_restart_command(c.cfg.restart_command, str(exc))}

    _confirm(c, "service restart", "restart the kiosk service", restart)
    return None


def _run_restart_command(command: str, why: str) -> str:
    """The service does not answer: restart it from outside (console.restart_command)."""
    import shlex
    import subprocess

    try:
        proc = subprocess.run(shlex.split(command), capture_output=True, timeout=60, check=False)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise KioskError(f"service not answering ({why}); restart command failed: {exc}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise KioskError(f"restart command exited {proc.returncode}: {err[-1] if err else ''}")
    return "restarted with the restart command (the service did not answer)"


def _power(action: str) -> Run:
    def run(c: CommandHost, args: list[str]) -> str | None:
        flags = [a.lower() for a in args]
        if flags not in ([], ["--force"]):
            raise InputError(f"usage: {action} [--force]")
        force = bool(flags)
        what = f"{action} the terminal" + (" even during a citizen's session" if force else "")
        _confirm(
            c,
            " ".join([action, *flags]),
            what,
            lambda: c.call("console.power", timeout=10.0, action=action, force=force),
        )
        return None

    return run


def _confirm(c: CommandHost, line: str, what: str, act: Callable[[], Any]) -> None:
    def answer(text: str) -> str:
        if text.strip().lower() != "yes":
            c.say("cancelled")
            return "cancelled"
        value = act()
        _show(c, value)
        return _outcome(value)

    c.ask(line, f"{what}? type yes to confirm: ", answer)


def cmd_logout(c: CommandHost, args: list[str]) -> None:
    c.logout("logout")
    return None


LIGHTS_USAGE = "lights [status | test | set LEFT RIGHT | off]"
CONFIG_USAGE = "config get [KEY] | config set KEY VALUE"
UPDATE_USAGE = "update [status | apply BUNDLE | rollback]"
STORE_USAGE = "store acknowledge-loss"

COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("help", "help [COMMAND]", "list the commands, or explain one", cmd_help),
        Command(
            "status", "status", "version, uptime, session, camera, lights, printer, disk, queue", cmd_status
        ),
        Command(
            "selftest",
            "selftest",
            "grab a frame, cycle the LEDs, query the printer, print a test slip",
            _simple("console.selftest", timeout=120.0),
        ),
        Command(
            "lights",
            LIGHTS_USAGE,
            "LED state, a test cycle, set left/right in percent, or off",
            cmd_lights,
            ("status", "test", "set", "off"),
        ),
        Command(
            "camera",
            "camera [status | test]",
            "camera state, or grab a frame and measure it (no image)",
            _part("camera", "camera [status | test]"),
            ("status", "test"),
        ),
        Command(
            "printer",
            "printer [status | test]",
            "paper, cover and errors, or print a test slip",
            _part("printer", "printer [status | test]"),
            ("status", "test"),
        ),
        Command(
            "receipt",
            "receipt reprint NUMBER",
            "print the slip of an issued number again (audited)",
            cmd_receipt,
            ("reprint",),
        ),
        Command(
            "store",
            STORE_USAGE,
            "after a lost or replaced database: let numbers be issued again (audited)",
            cmd_store,
            ("acknowledge-loss",),
        ),
        Command(
            "queue",
            "queue [list | retry [ID]]",
            "the upload queue, or retry now",
            cmd_queue,
            ("list", "retry"),
        ),
        Command(
            "config",
            CONFIG_USAGE,
            "show a setting (all without KEY) or change one (validated)",
            cmd_config,
            ("get", "set"),
        ),
        Command("pin", "pin", "change the technician PIN", cmd_pin),
        Command("logs", "logs [N]", "the last N lines of the service log (default 20)", cmd_logs),
        Command("counters", "counters", "sessions, photos, slips, faults", _simple("console.counters")),
        Command("audit", "audit [N]", "the last N audit entries (default 10)", cmd_audit),
        Command(
            "update",
            UPDATE_USAGE,
            "software version and slots, install a bundle, or go back",
            cmd_update,
            ("status", "apply", "rollback"),
        ),
        Command("service", "service restart", "restart the kiosk service", cmd_service, ("restart",)),
        Command(
            "reboot",
            "reboot [--force]",
            "restart the terminal (refused during a session)",
            _power("reboot"),
            ("--force",),
        ),
        Command(
            "shutdown",
            "shutdown [--force]",
            "power the terminal off (refused during a session)",
            _power("shutdown"),
            ("--force",),
        ),
        Command("logout", "logout", "end the technician session", cmd_logout),
    ]
}
COMMANDS["exit"] = COMMANDS["quit"] = COMMANDS["logout"]


def completions(text: str) -> list[str]:
    """Tab completion: command names, then the first word after a command."""
    words = text.split(" ")
    if len(words) == 1:
        return [n for n in COMMANDS if n.startswith(words[0].lower())]
    if len(words) == 2:
        cmd = COMMANDS.get(words[0].lower())
        if cmd is None:
            return []
        return [f"{words[0]} {s}" for s in cmd.subs if s.startswith(words[1].lower())]
    return []
