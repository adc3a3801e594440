"""What every command module shares: the common options, one way to declare a command, JSON output.

Kept free of heavy imports: `kiosk --help` loads every command module to build the parser.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from kiosk.config import Config
from kiosk.errors import InputError

Handler = Callable[[argparse.Namespace, Config], int]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("kiosk").strip()
        where = f"kiosk: {command}: " if command else "kiosk: "
        self.exit(2, f"{where}{message} (see `{self.prog} --help`)\n")


def common_options() -> Parser:
    """--config and --state-dir, accepted before or after the subcommand.

    SUPPRESS: a subcommand's copy of these options must not reset what was given before it."""
    common = Parser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="configuration file (TOML); default $KIOSK_CONFIG or /etc/kiosk",
    )
    common.add_argument(
        "--state-dir", default=argparse.SUPPRESS, help="store, photos and queue; default $KIOSK_STATE_DIR"
    )
    return common


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    summary: str,
    parents: list[argparse.ArgumentParser],
    handler: Handler | None = None,
    details: str = "",
) -> Parser:
    """A subcommand whose one-line summary shows in its group's --help and opens its own --help."""
    p = sub.add_parser(
        name,
        parents=parents,
        help=summary,
        description="\n\n".join([summary, *(textwrap.fill(line, 96) for line in details.splitlines())]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if handler is not None:
        p.set_defaults(handler=handler)
    return p


def add_json(p: argparse.ArgumentParser, what: str = "JSON output") -> None:
    p.add_argument("--json", action="store_true", help=what)


def emit(obj: Any) -> None:
    """One JSON document on stdout, flushed (a reader may be waiting for the line)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def stdout_closed() -> None:
    """The reader went away (`kiosk check x.jpg | true`): send the rest of the output to /dev/null, so
    that the exit status (the verdict) is what remains, without Python's complaint at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def output_path(path: str | None, what: str) -> Path | None:
    """A file the command will write, checked before any work or any commitment (a number, say):
    a name, not a directory, in a directory that exists and may be written; else the one-line error
    an OSError on it would give (``what``: the command, as in "kiosk: receipt: PATH: ...")."""
    import os

    if path is None:
        return None
    if not path.strip():
        raise InputError(f"{what}: an empty file name")
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what}: {path}: Is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{what}: {path}: No such file or directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InputError(f"{what}: {path}: Permission denied")
    return p


def existing(path: str) -> str:
    """PATH if it is a readable file; otherwise the one-line input error every command gives."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    return path
