"""The `kiosk` command: one module per command group, each declaring its subcommands beside its handler.

Every command honours --config/KIOSK_CONFIG and --state-dir/KIOSK_STATE_DIR, before or after the
subcommand. Expected failures print one line on stderr and exit non-zero (2 for unusable input,
usage errors included); never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from kiosk import __version__
from kiosk.cli import analyze, console, demo, fleet, photo, platform, receipt, run, store, update
from kiosk.cli.common import Parser, common_options, stdout_closed
from kiosk.config import load_config
from kiosk.errors import KioskError

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
kiosk runs a self-service ID-photo terminal: it guides a citizen in front of the camera to a
compliant document photo (ID card, social-security card, driving licence, exit-entry permit),
obtains the image number and prints the receipt slip. Technicians service it over a serial
console; the fleet updates it with signed releases.

Try it on any machine: `kiosk demo` runs a whole session on simulated hardware."""

EPILOG = """\
Every command takes --config FILE ($KIOSK_CONFIG) and --state-dir DIR ($KIOSK_STATE_DIR), before
or after its name; `kiosk COMMAND --help` tells more. Bad input is one line on stderr and exit 2."""

#: Command groups in the order `kiosk --help` lists them: the citizen's job first, service tools last.
GROUPS = (demo, run, analyze, photo, receipt, platform, store, console, update, fleet)


def build_parser() -> Parser:
    common = common_options()
    parser = Parser(
        prog="kiosk",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for group in GROUPS:
        group.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, load the configuration, run the handler; KioskError becomes one line and its exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command they were given to, which --help to read
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    for name in ("config", "state_dir"):  # SUPPRESS leaves them unset when not given anywhere
        if not hasattr(args, name):
            setattr(args, name, None)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        cfg = load_config(args.config, args.state_dir)
        return args.handler(args, cfg)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the output was lost: never report success for it (a verdict says its own)
        stdout_closed()
        return 1
    except OSError as exc:  # a path the user gave cannot be read or written: bad input, one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kiosk: {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2 if exc.filename else 1


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)command ARGS chose, e.g. `kiosk receipt issue`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                return _command_parser(chosen, args)
    return parser
