"""`kiosk console`: the serial maintenance console a technician plugs into (kiosk.console)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kiosk.cli.common import add_command
from kiosk.config import Config, load_config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "console",
        "the serial maintenance console on a serial line (PIN, status, tests, logs)",
        [common],
        cmd_console,
    )
    p.add_argument("--port", help="serial device (default: console.port of the configuration)")
    p.add_argument("--baud", type=int, help="line speed (default: console.baud; always 8N1)")
    p.add_argument("--hash-pin", action="store_true", help="read a new PIN, print its config lines, and exit")


def cmd_console(args: argparse.Namespace, cfg: Config) -> int:
    import getpass

    from kiosk.console.pin import hash_pin
    from kiosk.console.shell import run_console, with_baud

    if args.hash_pin:
        pin = getpass.getpass("new PIN: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
        print(f'[console]\npin_hash = "{hash_pin(pin)}"')
        return 0
    ccfg = with_baud(cfg.console, args.baud) if args.baud else cfg.console

    def log(msg: str) -> None:
        print(f"kiosk console: {msg}", file=sys.stderr, flush=True)

    def reload() -> Any:
        return load_config(args.config, args.state_dir).console

    run_console(
        ccfg,
        cfg.state_dir,
        port=args.port,
        log=log,
        reload=reload,
        handle_signals=True,
        config_file=cfg.source.base,  # `config` works on it while the service is down
    )
    return 0
