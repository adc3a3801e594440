"""`kiosk run`: the terminal's service, what systemd starts on the device (kiosk.service)."""

from __future__ import annotations

import argparse

from kiosk.cli.common import add_command
from kiosk.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "run",
        "the terminal's service: camera, lights, buttons, session, touchscreen UI, service API",
        [common],
        cmd_run,
        "Serves the touchscreen UI on 127.0.0.1 and tells systemd READY/WATCHDOG (sd_notify).",
    )
    p.add_argument("--sim", action="store_true", help="simulated camera, LEDs, buttons and printer")
    p.add_argument("--port", type=int, help="UI port on 127.0.0.1 (default: config session.ui_port)")


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.service import run_service

    return run_service(cfg, sim=args.sim, port=args.port)
